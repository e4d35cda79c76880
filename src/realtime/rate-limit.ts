/** A token bucket: `rate` per second, bursts up to twice that. */
export class RateLimit {
  #tokens: number;
  #refilled = Date.now();

  constructor(readonly rate: number) {
    this.#tokens = rate * 2;
  }

  /** Takes one token; false when there was none. */
  take(now = Date.now()): boolean {
    this.#tokens = Math.min(this.rate * 2, this.#tokens + ((now - this.#refilled) / 1000) * this.rate);
    this.#refilled = now;
    // A refused take costs nothing: a client that backs off gets its rate back on time.
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
