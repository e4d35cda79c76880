import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Histogram, type HistogramData } from './histogram.js';
import { nodeArgsFor, ROOT, spawnTracked } from './nodes.js';

export type Protocol = 'shoal' | 'socketio' | 'raw';

export interface ClientTarget {
  url: string;
  headers?: Record<string, string>;
}

export type FleetCommand =
  | { cmd: 'open'; protocol: Protocol; room: string; targets: ClientTarget[]; concurrency: number; timeoutMs: number }
  | { cmd: 'reset' }
  | { cmd: 'snapshot' }
  | { cmd: 'drop' }
  | { cmd: 'close' };

export type FleetReply =
  | { type: 'started' }
  | { type: 'opened'; ok: number; failed: number; errors: string[] }
  | { type: 'reset' }
  | { type: 'progress'; delivered: number }
  | { type: 'snapshot'; delivered: number; histogram: HistogramData; open: number; closedUnexpectedly: number }
  | { type: 'dropped' }
  | { type: 'closed' };

const SCRIPT = join(ROOT, 'bench', 'lib', 'ws-clients.ts');

interface Waiter {
  type: FleetReply['type'];
  resolve: (r: FleetReply) => void;
  reject: (err: Error) => void;
}

interface Member {
  child: ChildProcess;
  delivered: number;
  waiters: Waiter[];
}

export interface FleetSnapshot {
  delivered: number;
  histogram: Histogram;
  open: number;
  closedUnexpectedly: number;
}

/**
 * Several client processes (bench/lib/ws-clients.ts) that together hold the sockets of a
 * realtime scenario: the load generators must not share an event loop with each other or
 * with any server. `delivered` is the live total of payloads received (for flow control).
 */
export class Fleet {
  readonly #members: Member[] = [];
  #onProgress: (() => void) | undefined;

  private constructor(readonly pids: number[]) {}

  static async start(processes: number): Promise<Fleet> {
    const members: Member[] = [];
    const started: Array<Promise<FleetReply>> = [];
    for (let i = 0; i < processes; i++) {
      const child = spawnTracked(process.execPath, nodeArgsFor(SCRIPT), {
        cwd: ROOT,
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const m: Member = { child, delivered: 0, waiters: [] };
      // A process that dies mid-run must fail the step waiting on it, not leave it waiting out its timeout.
      child.once('exit', (code, signal) => {
        for (const w of m.waiters.splice(0))
          w.reject(new Error(`client process ${child.pid} exited (${code ?? signal}) while waiting for "${w.type}"`));
      });
      members.push(m);
      started.push(waitFor(m, 'started', 30_000));
    }
    const fleet = new Fleet(members.map((m) => m.child.pid ?? -1));
    for (const m of members) {
      m.child.on('message', (r: FleetReply) => {
        if (r.type === 'progress') {
          m.delivered = r.delivered;
          fleet.#onProgress?.();
        }
        const i = m.waiters.findIndex((w) => w.type === r.type);
        if (i >= 0) m.waiters.splice(i, 1)[0]?.resolve(r);
      });
    }
    fleet.#members.push(...members);
    await Promise.all(started);
    return fleet;
  }

  get delivered(): number {
    let n = 0;
    for (const m of this.#members) n += m.delivered;
    return n;
  }

  /** Resolves at the next progress report of any client process (or after `ms`). */
  progress(ms = 50): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#onProgress = done;
    });
  }

  /**
   * Opens `targets.length` sockets, dealt round-robin to the processes; each resolves once it
   * is in the room. Returns how many made it and the first errors.
   */
  async open(
    protocol: Protocol,
    room: string,
    targets: ClientTarget[],
    o: { concurrency?: number; timeoutMs?: number } = {},
  ): Promise<{ ok: number; failed: number; errors: string[] }> {
    const shares: ClientTarget[][] = this.#members.map(() => []);
    targets.forEach((t, i) => {
      shares[i % shares.length]?.push(t);
    });
    const replies = await Promise.all(
      this.#members.map((m, i) =>
        this.#ask(
          m,
          {
            cmd: 'open',
            protocol,
            room,
            targets: shares[i] ?? [],
            concurrency: o.concurrency ?? 50,
            timeoutMs: o.timeoutMs ?? 20_000,
          },
          'opened',
          120_000,
        ),
      ),
    );
    let ok = 0;
    let failed = 0;
    const errors: string[] = [];
    for (const r of replies) {
      if (r.type !== 'opened') continue;
      ok += r.ok;
      failed += r.failed;
      errors.push(...r.errors);
    }
    return { ok, failed, errors: errors.slice(0, 5) };
  }

  async resetLatency(): Promise<void> {
    await Promise.all(this.#members.map((m) => this.#ask(m, { cmd: 'reset' }, 'reset', 10_000)));
  }

  async snapshot(): Promise<FleetSnapshot> {
    const replies = await Promise.all(this.#members.map((m) => this.#ask(m, { cmd: 'snapshot' }, 'snapshot', 10_000)));
    const histogram = new Histogram();
    let delivered = 0;
    let open = 0;
    let closedUnexpectedly = 0;
    for (const r of replies) {
      if (r.type !== 'snapshot') continue;
      histogram.add(r.histogram);
      delivered += r.delivered;
      open += r.open;
      closedUnexpectedly += r.closedUnexpectedly;
    }
    return { delivered, histogram, open, closedUnexpectedly };
  }

  /** Closes every socket (the servers see them go) and zeroes the counters; the processes stay for the next system. */
  async drop(): Promise<void> {
    await Promise.all(
      this.#members.map(async (m) => {
        await this.#ask(m, { cmd: 'drop' }, 'dropped', 30_000);
        m.delivered = 0;
      }),
    );
  }

  /** Waits until `total` payloads have arrived, or `timeoutMs` passed; resolves to the count. */
  async drain(total: number, timeoutMs: number): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (this.delivered < total && Date.now() < deadline) await this.progress(100);
    return this.delivered;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#members.map(async (m) => {
        if (m.child.exitCode !== null || !m.child.connected) return;
        const exited = new Promise<void>((resolve) => m.child.once('exit', () => resolve()));
        await this.#ask(m, { cmd: 'close' }, 'closed', 5000).catch(() => {});
        const timer = setTimeout(() => m.child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  #ask(m: Member, cmd: FleetCommand, type: FleetReply['type'], timeoutMs: number): Promise<FleetReply> {
    const answer = waitFor(m, type, timeoutMs);
    m.child.send(cmd);
    return answer;
  }
}

function waitFor(m: Member, type: FleetReply['type'], timeoutMs: number): Promise<FleetReply> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      const i = m.waiters.indexOf(waiter);
      if (i >= 0) m.waiters.splice(i, 1);
      reject(new Error(`client process ${m.child.pid} did not answer "${type}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const waiter: Waiter = {
      type,
      resolve: (r) => {
        clearTimeout(timer);
        resolve(r);
      },
      reject: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    };
    if (m.child.exitCode !== null || m.child.signalCode !== null) {
      clearTimeout(timer);
      reject(new Error(`client process ${m.child.pid} has exited`));
      return;
    }
    m.waiters.push(waiter);
  });
}
