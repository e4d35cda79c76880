import type { ChildProcess } from 'node:child_process';
import { nodeArgsFor, ROOT, spawnTracked } from './nodes.js';

type Typed = { type: string };

/**
 * A helper process driven over IPC: `ask(command, replyType)` sends a command and resolves
 * with the first reply of that type. A reply `{ type: 'error', message }` rejects what is
 * pending, and so does the process exiting: a step never waits out its timeout for a dead peer.
 */
export class IpcChild<C extends object, R extends Typed> {
  readonly #waiters: Array<{ type: string; resolve: (r: R) => void; reject: (err: Error) => void }> = [];

  private constructor(readonly child: ChildProcess) {
    child.on('message', (r: R | { type: 'error'; message: string }) => {
      if (r.type === 'error' && 'message' in r) {
        for (const w of this.#waiters.splice(0)) w.reject(new Error(`${child.pid}: ${r.message}`));
        return;
      }
      const i = this.#waiters.findIndex((w) => w.type === r.type);
      if (i >= 0) this.#waiters.splice(i, 1)[0]?.resolve(r as R);
    });
    child.once('exit', (code, signal) => {
      for (const w of this.#waiters.splice(0))
        w.reject(new Error(`helper ${child.pid} exited (${code ?? signal}) while waiting for "${w.type}"`));
    });
  }

  /** Starts `script` (a path under the repository) and waits for its `{ type: 'started' }`. */
  static async start<C extends object, R extends Typed>(script: string, args: string[] = []): Promise<IpcChild<C, R>> {
    const child = spawnTracked(process.execPath, [...nodeArgsFor(script), ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const helper = new IpcChild<C, R>(child);
    await helper.wait('started', 30_000);
    return helper;
  }

  send(command: C): void {
    this.child.send(command);
  }

  wait<T extends R['type']>(type: T, timeoutMs: number): Promise<Extract<R, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`helper ${this.child.pid} did not answer "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        type,
        resolve: (r: R) => {
          clearTimeout(timer);
          resolve(r as Extract<R, { type: T }>);
        },
        reject: (err: Error) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#waiters.push(waiter);
    });
  }

  ask<T extends R['type']>(command: C, type: T, timeoutMs = 10_000): Promise<Extract<R, { type: T }>> {
    const answer = this.wait(type, timeoutMs);
    this.send(command);
    return answer;
  }

  /** Asks it to close (`closeCommand`, answered by `closed`), then kills it if it lingers. */
  async stop(closeCommand: C): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    await this.ask(closeCommand, 'closed' as R['type'], 5000).catch(() => {});
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  }
}
