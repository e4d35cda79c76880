import type { EventEmitter } from 'node:events';

/**
 * A call that was never sent: the connection was not ready, and its next attempt to connect failed
 * (or it was closed). Nothing of the call reached Redis.
 */
export class NotSentError extends Error {
  override name = 'NotSentError';
}

/** A call waiting for the connection: `send` once it is ready, `fail` once an attempt to connect failed. */
export interface ReadyWaiter {
  send(): void;
  fail(err: Error): void;
}

/**
 * Where calls made while a Redis connection is not ready wait for it, instead of in ioredis's offline
 * queue. A queued command goes out when the connection comes back, even after its caller's deadline
 * passed and the caller was told the call failed: a session write answered 503 would land seconds later,
 * over writes made and answered since. A waiter is sent once the connection is ready, failed as soon as
 * an attempt to connect fails, and taken back by a caller whose deadline passes first, so it is never sent
 * at all.
 *
 * An attempt whose error `waitsForMore` accepts fails nobody yet: the next one will say more (the
 * sentinels' "no such master" first comes without the names they know, which are asked for meanwhile).
 */
export class ReadyGate {
  /** Waiters that have seen no failed attempt yet, and those that have seen one their error let wait. */
  #fresh = new Set<ReadyWaiter>();
  #retried = new Set<ReadyWaiter>();
  readonly #client: EventEmitter;
  readonly #waitsForMore: (err: Error) => boolean;
  readonly #ready = (): void => {
    for (const waiter of this.#take(this.#fresh, this.#retried)) waiter.send();
  };
  readonly #failed = (err: Error): void => {
    if (this.#waitsForMore(err)) {
      notSent(this.#take(this.#retried), err);
      this.#retried = this.#fresh;
      this.#fresh = new Set();
      return;
    }
    notSent(this.#take(this.#fresh, this.#retried), err);
  };
  readonly #ended = (): void => notSent(this.#take(this.#fresh, this.#retried), new Error('the connection was closed'));

  constructor(client: EventEmitter, waitsForMore: (err: Error) => boolean = () => false) {
    this.#client = client;
    this.#waitsForMore = waitsForMore;
    client.on('ready', this.#ready);
    client.on('error', this.#failed);
    client.on('end', this.#ended);
  }

  wait(waiter: ReadyWaiter): void {
    this.#fresh.add(waiter);
  }

  /** The caller gave up (its deadline passed): the waiter is neither sent nor failed. */
  cancel(waiter: ReadyWaiter): void {
    this.#fresh.delete(waiter);
    this.#retried.delete(waiter);
  }

  /** Stops listening to the connection (a client the store was given outlives it); waiters fail. */
  close(): void {
    this.#client.off('ready', this.#ready);
    this.#client.off('error', this.#failed);
    this.#client.off('end', this.#ended);
    this.#ended();
  }

  /** The waiters of these sets, taken off first: sending one may make further calls wait. */
  #take(...sets: Set<ReadyWaiter>[]): ReadyWaiter[] {
    const waiters: ReadyWaiter[] = [];
    for (const set of sets) {
      waiters.push(...set);
      set.clear();
    }
    return waiters;
  }
}

function notSent(waiters: ReadyWaiter[], err: Error): void {
  if (waiters.length === 0) return;
  const error = new NotSentError(`not sent: ${err.message}`, { cause: err });
  for (const waiter of waiters) waiter.fail(error);
}

/**
 * Sends now on a ready connection, or once it is ready: rejects with NotSentError, and never sends,
 * when an attempt to connect fails first or `deadline` (epoch ms) passes first. For calls off the
 * hot path; the session store keeps its own single-promise version (stores/redis.ts).
 */
export function sendWhenReady<T>(
  gate: ReadyGate,
  client: { readonly status: string },
  deadline: number,
  send: () => Promise<T>,
): Promise<T> {
  if (client.status === 'ready') return send();
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => {
        gate.cancel(waiter);
        reject(new NotSentError(`not connected within the deadline, so not sent (the connection is ${client.status})`));
      },
      Math.max(0, deadline - Date.now()),
    );
    const waiter: ReadyWaiter = {
      send: () => {
        clearTimeout(timer);
        send().then(resolve, reject);
      },
      fail: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    };
    gate.wait(waiter);
  });
}
