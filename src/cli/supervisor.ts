import { type ChildProcess, spawn } from 'node:child_process';
import type { Readable } from 'node:stream';
import { EXIT_CONFIG } from './args.js';
import type { Upstream } from './balancer.js';
import { LineSplitter, type OutputStream } from './node-output.js';

export interface ChildSpec {
  name: string;
  role: 'web' | 'gateway';
  port: number;
  args: string[];
  env: NodeJS.ProcessEnv;
}

export interface Member extends Upstream {
  role: 'web' | 'gateway';
  pid: number | undefined;
  restarts: number;
  /** not-ready: it was ready and lost it (its store stopped answering, say); starting: not ready yet since its start. */
  state: 'starting' | 'ready' | 'not-ready' | 'draining' | 'dead';
}

/** How long a node may run without being ready before the supervisor says why it is not. */
const SLOW_START_MS = 15_000;
/** How often every node's /readyz is asked: the balancer's pool follows the answers. */
export const READINESS_POLL_MS = 500;

/** How much of a node's latest output is kept to say why it failed. */
const TAIL_CHARS = 4000;

/**
 * How long after a node exits its output may still be arriving: its exit is handled once its stdout
 * and stderr are read to the end, or after this, should a process it started hold them open.
 */
const OUTPUT_GRACE_MS = 1000;

/** Why a node could not start: its exit code and the lines of its stderr that say so. */
export interface StartFailure {
  member: Member;
  code: number | null;
  signal: NodeJS.Signals | null;
  cause: string;
}

export interface SupervisorOptions {
  /** Called once when a node cannot start; the supervisor restarts nothing after it. */
  onFailure?(failure: StartFailure): void;
  /** Exits before a node was first ready that count as "cannot start" (default 3). */
  startAttempts?: number;
  /**
   * Called with the lines a node writes, as they complete (a partial last line once the stream ends).
   * Without it the output is only kept for the failure reports; with it, an exit's report does not
   * repeat the output's tail, which was just handed on.
   */
  onOutput?(member: Member, stream: OutputStream, lines: string[]): void;
}

/**
 * Keeps the local cluster's node processes running: restarts one that crashed
 * (with backoff), polls /readyz to tell the balancer which nodes may get traffic: an answer
 * counts only when it carries the pid of the process spawned for that node.
 * A node that never got ready is not restarted for ever: a configuration error (exit 78)
 * gives up at once, any other exit after `startAttempts` tries.
 */
export class Supervisor {
  readonly members: Member[] = [];
  readonly #children = new Map<string, ChildProcess>();
  /** Per node, its current process's exit, resolved once its output is read too. */
  readonly #exits = new Map<string, Promise<void>>();
  /** Names of the nodes that were ready at least once: from then on an exit is a crash. */
  readonly #wasReady = new Set<string>();
  readonly #failedStarts = new Map<string, number>();
  readonly #spawnedAt = new Map<string, number>();
  readonly #unreadySince = new Map<string, number>();
  readonly #slowReported = new Map<string, string>();
  #stopping = false;
  #failed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly specs: ChildSpec[],
    readonly onEvent: (event: string, member: Member, detail?: string) => void,
    readonly options: SupervisorOptions = {},
  ) {}

  start(): void {
    for (const spec of this.specs) {
      const member: Member = {
        name: spec.name,
        role: spec.role,
        host: '127.0.0.1',
        port: spec.port,
        ready: false,
        pid: undefined,
        restarts: 0,
        state: 'starting',
      };
      this.members.push(member);
      this.#spawn(spec, member);
    }
    this.#timer = setInterval(() => void this.#poll(), READINESS_POLL_MS);
  }

  /** Sends a signal to one node (the dashboard's kill buttons use it). */
  signal(name: string, signal: NodeJS.Signals): boolean {
    const child = this.#children.get(name);
    return child ? child.kill(signal) : false;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearInterval(this.#timer);
    await Promise.all(
      [...this.#children].map(([name, child]) => {
        if (child.exitCode === null && child.signalCode === null) {
          const force = setTimeout(() => child.kill('SIGKILL'), 35_000);
          child.once('exit', () => clearTimeout(force));
          child.kill('SIGTERM');
        }
        return this.#exits.get(name);
      }),
    );
  }

  #spawn(spec: ChildSpec, member: Member): void {
    const child = spawn(process.execPath, [...process.execArgv, ...spec.args], {
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.set(spec.name, child);
    this.#spawnedAt.set(spec.name, Date.now());
    this.#slowReported.delete(spec.name);
    member.pid = child.pid;
    member.state = 'starting';
    member.ready = false;
    let tail = '';
    let errors = '';
    const forward = this.options.onOutput;
    /** Reads one stream: keeps its tail, hands its lines on; returns what hands on its partial last line. */
    const read = (stream: Readable | null, name: OutputStream) => {
      if (!stream) return () => {};
      stream.setEncoding('utf8'); // decodes a character split across chunks whole
      const lines = new LineSplitter();
      const hand = (complete: string[]) => {
        if (complete.length > 0) forward?.(member, name, complete);
      };
      stream.on('data', (text: string) => {
        tail = (tail + text).slice(-TAIL_CHARS);
        if (name === 'stderr') errors = (errors + text).slice(-TAIL_CHARS);
        if (forward) hand(lines.push(text));
      });
      const end = () => hand(lines.end());
      stream.once('end', end);
      return end;
    };
    const endStdout = read(child.stdout, 'stdout');
    const endStderr = read(child.stderr, 'stderr');
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        member.ready = false;
        member.state = 'dead';
        member.pid = undefined;
        // Its last lines may still be in the pipes: they come before what is said about its exit.
        const settle = () => {
          clearTimeout(grace);
          child.off('close', settle);
          endStdout();
          endStderr();
          resolve();
          this.#exited(spec, member, code, signal, tail, errors);
        };
        const grace = setTimeout(settle, OUTPUT_GRACE_MS);
        child.once('close', settle);
      });
    });
    this.#exits.set(spec.name, exited);
  }

  /** A node's process has exited and its output is read: a failure to start, or a crash to restart. */
  #exited(
    spec: ChildSpec,
    member: Member,
    code: number | null,
    signal: NodeJS.Signals | null,
    tail: string,
    errors: string,
  ): void {
    if (this.#stopping || this.#failed) return;
    // A signal is someone's doing (the dashboard's kill buttons, the OOM killer), not the node's.
    if (code === EXIT_CONFIG || (signal === null && !this.#wasReady.has(spec.name))) {
      const failedStarts = (this.#failedStarts.get(spec.name) ?? 0) + 1;
      this.#failedStarts.set(spec.name, failedStarts);
      if (code === EXIT_CONFIG || failedStarts >= (this.options.startAttempts ?? 3)) {
        this.#failed = true;
        this.options.onFailure?.({ member, code, signal, cause: causeOf(errors || tail) });
        return;
      }
    }
    // The output's tail says why, unless every line of it was just printed.
    const why = code && !this.options.onOutput ? `\n${tail.trim()}` : '';
    this.onEvent('exited', member, `${signal ?? `code ${code}`}${why}`);
    member.restarts++;
    const backoff = Math.min(10_000, 250 * 2 ** Math.min(member.restarts, 6));
    setTimeout(() => {
      if (!this.#stopping && !this.#failed) {
        this.#spawn(spec, member);
        this.onEvent('restarted', member);
      }
    }, backoff).unref();
  }

  /**
   * A node that runs but is not ready (its store does not answer, say) is not restarted: it may
   * get there. After SLOW_START_MS its /readyz problem is reported, and again whenever it changes,
   * with how long it has been unready: since its start, or since it lost readiness.
   */
  #reportUnready(m: Member, problem: string | undefined): void {
    if (problem === undefined || (m.state !== 'starting' && m.state !== 'not-ready')) return;
    const since = (m.state === 'starting' ? this.#spawnedAt : this.#unreadySince).get(m.name) ?? Date.now();
    const seconds = Math.round((Date.now() - since) / 1000);
    if (Date.now() - since < SLOW_START_MS || this.#slowReported.get(m.name) === problem) return;
    this.#slowReported.set(m.name, problem);
    this.onEvent(
      m.state === 'starting' ? `not ready ${seconds} s after its start` : `not ready for ${seconds} s`,
      m,
      problem,
    );
  }

  async #poll(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        if (m.state === 'dead') return;
        let ready = false;
        let problem: string | undefined;
        const pid = m.pid; // the process this poll asks about, should it be restarted meanwhile
        try {
          const res = await fetch(`http://${m.host}:${m.port}/readyz`, { signal: AbortSignal.timeout(1000) });
          const body = (await res.json().catch(() => ({}))) as { pid?: unknown; problem?: string };
          // Until the node listens (or when it cannot), whatever else holds its port answers: another
          // cluster's node of the same name, any server. Only the process spawned here speaks for it.
          if (body.pid !== pid) {
            problem = `another process answers on port ${m.port}`;
          } else {
            ready = res.ok;
            if (!ready) problem = body.problem;
          }
        } catch {}
        const draining = problem === 'draining';
        const lost = m.state === 'ready' || m.state === 'not-ready';
        const state = ready ? 'ready' : draining ? 'draining' : lost ? 'not-ready' : m.state;
        if (ready) this.#wasReady.add(m.name);
        if (state === 'not-ready' && m.state !== 'not-ready') {
          this.#unreadySince.set(m.name, Date.now());
          this.#slowReported.delete(m.name);
        }
        if (state !== m.state || ready !== m.ready) {
          m.ready = ready;
          m.state = state;
          this.onEvent(state, m, state === 'not-ready' ? problem : undefined);
        }
        this.#reportUnready(m, ready || draining ? undefined : problem);
      }),
    );
  }
}

/**
 * The line a node's stderr names its failure with: the CLI prints "shoal: <message>" for errors a
 * user can fix; anything else (a stack) is given as its first lines.
 */
export function causeOf(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(Boolean);
  const own = lines.filter((l) => l.startsWith('shoal: ')).at(-1);
  if (own) return own.slice('shoal: '.length);
  return lines.slice(0, 6).join('\n') || 'it printed nothing';
}
