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
    /** Dropped once the call is over: it holds the caller's promise, and through it the answer. */
    public expire: (() => void) | null,
  ) {}
}

/**
 * Deadlines for calls that all wait the same time (a store's `timeoutMs`), on one timer.
 *
 * A setTimeout/clearTimeout pair per call cost about 1 µs (a Timeout object, the timer list, the loop
 * clock read in C++; `bench/store-call-overhead.ts`), and a session request makes one or two store
 * calls. Since every call waits the same time, deadlines fall in the order calls are made: a queue
 * whose oldest waiting call arms the one timer. The timer is left armed when the queue empties (the
 * next call would arm it again at once) and is unref'd: what keeps a process up while a call waits is
 * the connection the call waits on, not its deadline.
 */
export class DeadlineQueue {
  #head: Entry | null = null;
  #tail: Entry | null = null;
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
    if (this.#timer === null) this.#arm(this.#ms);
    return entry;
  }

  /** The call answered in time (or is given up): its `expire` will not run. */
  settle(deadline: Deadline): void {
    const entry = deadline as Entry;
    entry.done = true;
    entry.expire = null;
    // Answers mostly come in the order calls were made: drop the settled ones at the front, so
    // entries die young instead of living on in the queue until the timer fires.
    let head = this.#head;
    while (head?.done) head = unlink(head);
    this.#head = head;
    if (head === null) this.#tail = null;
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(ms))).unref();
  }

  /** Expires what is due, taking each entry off the queue first: an expire() may add or settle calls. */
  readonly #fire = (): void => {
    this.#timer = null;
    const now = performance.now();
    for (let entry = this.#head; entry && (entry.done || entry.at <= now); entry = this.#head) {
      this.#head = unlink(entry);
      if (this.#head === null) this.#tail = null;
      if (entry.done) continue;
      const expire = entry.expire;
      entry.done = true;
      entry.expire = null;
      expire?.();
    }
    if (this.#head !== null && this.#timer === null) this.#arm(this.#head.at - now);
  };
}

/**
 * Takes an entry off the front and returns the next. The link is cut: an entry the collector has
 * already promoted (a slow call) would otherwise keep every later entry, their promises and answers
 * alive through it until the next full collection, dead or not.
 */
function unlink(entry: Entry): Entry | null {
  const next = entry.next;
  entry.next = null;
  return next;
}
