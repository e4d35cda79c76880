import type { Bus, BusMessage } from '../bus/contract.js';

/**
 * A message the gateway sends itself through the bus every period: when it stops
 * arriving, the bus subscription is not delivering and the gateway is not ready.
 */
export class Canary {
  readonly channel: string;
  #lastSeen = Date.now();
  #timer: NodeJS.Timeout | undefined;

  constructor(
    readonly bus: Bus,
    gateway: string,
    readonly everyMs: number,
  ) {
    this.channel = `_shoal:canary:${gateway}`;
  }

  async start(): Promise<void> {
    await this.bus.subscribe(this.channel);
    // Overdue counts from here: a start retried until the bus answered must not read as a silent canary.
    this.#lastSeen = Date.now();
    this.#timer = setInterval(() => {
      this.bus.publish(this.channel, { event: 'canary', data: String(Date.now()) }).catch(() => {});
    }, this.everyMs);
    this.#timer.unref();
  }

  /** True when the message was the canary (and is consumed). */
  seen(m: BusMessage): boolean {
    if (m.channel !== this.channel) return false;
    this.#lastSeen = Date.now();
    return true;
  }

  /** Throws when the canary is overdue. */
  check(): void {
    const age = Date.now() - this.#lastSeen;
    if (age > this.everyMs * 5)
      throw new Error(`canary not seen for ${age} ms: the bus subscription is not delivering`);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
