import { TokenKeeper } from './token-keeper.js';
import type { SubscribeOptions } from './types.js';

/**
 * Subscription tokens per channel (`subscribe(channel, handler, { token | getToken })`). Such a
 * channel is joined with a `sub` frame carrying its token, never from the connect URL (which has
 * no per-channel token): so only over WebSocket. When the gateway ends it with "token expired",
 * a channel with `getToken` is joined again with a fresh token from its cursor (nothing is lost).
 */
export class SubTokens {
  readonly #keepers = new Map<string, TokenKeeper>();

  set(channel: string, o: SubscribeOptions | undefined): void {
    if (o?.token !== undefined || o?.getToken) this.#keepers.set(channel, new TokenKeeper(o.token, o.getToken));
  }

  has(channel: string): boolean {
    return this.#keepers.has(channel);
  }

  delete(channel: string): void {
    this.#keepers.delete(channel);
  }

  /**
   * Calls `join` at once for a channel without a token; else with its token (the held one while
   * it has 5 s left, else a new one from getToken), or `failed` when getToken failed.
   */
  join(channel: string, join: (token?: string) => void, failed: (err: unknown) => void): void {
    const keeper = this.#keepers.get(channel);
    if (!keeper) join();
    else keeper.forConnect().then(join, failed);
  }

  /** After "token expired": forgets the expired token; true when getToken can bring a new one. */
  expired(channel: string): boolean {
    const k = this.#keepers.get(channel);
    k?.drop();
    return k?.renewable === true;
  }
}
