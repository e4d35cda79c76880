import { performance } from 'node:perf_hooks';

/** One call waiting in a DeadlineQueue. */
export interface Deadline {
  /** The call answered, or its deadline passed: nothing more happens to it. */
  readonly done: boolean;
}

class Entry implements Deadline {
  done = false;
  next: Entry | null = null;
  constructor(
    readonly at: number,
    readonly expire: () => void,
  ) {}
}

/**
 * Deadlines for calls that all wait the same time (a store's `timeoutMs`), on one timer.
 *
 * A setTimeout/clearTimeout pair per call cost about 0.5 µs (a Timeout object, the timer list, the
 * loop clock read in C++), and a session request makes one or two store calls. Since every call
 * waits the same time, deadlines fall in the order calls are made: a queue whose oldest waiting
 * call arms the one timer. Once no call is waiting the timer is cleared, so an idle store holds no
 * timer and never keeps the process up.
 */
export class DeadlineQueue {
  #head: Entry | null = null;
  #tail: Entry | null = null;
  #waiting = 0;
  #timer: NodeJS.Timeout | null = null;
  readonly #ms: number;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /** Runs `expire` once the queue's time has passed, unless `settle` came first. */
  add(expire: () => void): Deadline {
    const entry = new Entry(performance.now() + this.#ms, expire);
    if (this.#tail) this.#tail.next = entry;
    else this.#head = entry;
    this.#tail = entry;
    this.#waiting++;
    if (this.#timer === null) this.#arm(this.#ms);
    return entry;
  }

  /** The call answered in time (or is given up): its `expire` will not run. */
  settle(deadline: Deadline): void {
    const entry = deadline as Entry;
    if (entry.done) return;
    entry.done = true;
    if (--this.#waiting > 0) {
      // Answers mostly come in the order calls were made: drop the settled ones at the front, so
      // entries die young instead of living on in the queue until the timer fires.
      let head = this.#head;
      while (head?.done) head = head.next;
      this.#head = head;
      return;
    }
    // Nothing waits: what is queued has all settled.
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#head = this.#tail = null;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(ms)));
  }

  /** Expires what is due, taking each entry off the queue first: an expire() may add or settle calls. */
  readonly #fire = (): void => {
    this.#timer = null;
    const now = performance.now();
    for (let entry = this.#head; entry && (entry.done || entry.at <= now); entry = this.#head) {
      this.#head = entry.next;
      if (this.#head === null) this.#tail = null;
      if (entry.done) continue;
      entry.done = true;
      this.#waiting--;
      entry.expire();
    }
    if (this.#head !== null && this.#timer === null) this.#arm(this.#head.at - now);
  };
}
