import { type ChildProcess, spawn } from 'node:child_process';
import type { Upstream } from './balancer.js';

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
  state: 'starting' | 'ready' | 'draining' | 'dead';
}

/**
 * Keeps the local cluster's node processes running: restarts one that crashed
 * (with backoff), polls /readyz to tell the balancer which nodes may get traffic.
 */
export class Supervisor {
  readonly members: Member[] = [];
  readonly #children = new Map<string, ChildProcess>();
  #stopping = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly specs: ChildSpec[],
    readonly onEvent: (event: string, member: Member, detail?: string) => void,
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
    this.#timer = setInterval(() => void this.#poll(), 500);
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
      [...this.#children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const force = setTimeout(() => child.kill('SIGKILL'), 35_000);
            child.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }

  #spawn(spec: ChildSpec, member: Member): void {
    const child = spawn(process.execPath, [...process.execArgv, ...spec.args], {
      env: spec.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#children.set(spec.name, child);
    member.pid = child.pid;
    member.state = 'starting';
    member.ready = false;
    let tail = '';
    const keep = (d: Buffer) => {
      tail = (tail + d.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.once('exit', (code, signal) => {
      member.ready = false;
      member.state = 'dead';
      member.pid = undefined;
      if (this.#stopping) return;
      this.onEvent('exited', member, `${signal ?? `code ${code}`}${code ? `\n${tail.trim()}` : ''}`);
      member.restarts++;
      const backoff = Math.min(10_000, 250 * 2 ** Math.min(member.restarts, 6));
      setTimeout(() => {
        if (!this.#stopping) {
          this.#spawn(spec, member);
          this.onEvent('restarted', member);
        }
      }, backoff).unref();
    });
  }

  async #poll(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        if (m.state === 'dead') return;
        let ready = false;
        let draining = false;
        try {
          const res = await fetch(`http://${m.host}:${m.port}/readyz`, { signal: AbortSignal.timeout(1000) });
          ready = res.ok;
          draining = !ready && ((await res.json()) as { problem?: string }).problem === 'draining';
        } catch {}
        const state = ready ? 'ready' : draining ? 'draining' : m.state === 'ready' ? 'starting' : m.state;
        if (state !== m.state || ready !== m.ready) {
          m.ready = ready;
          m.state = state;
          this.onEvent(state, m);
        }
      }),
    );
  }
}
