/**
 * The prototype a framework puts between node's own class and the objects it serves (Express's
 * `request` and `response`, shared by all its apps and sub-apps), found from one object of it.
 * An app's objects all share their prototype, so the last answer is remembered, not walked again:
 * a prototype's own chain is not changed once objects are made from it.
 */
export class FrameworkPrototype {
  #lastOwn: object | null = null;
  #lastFound: object | undefined;

  constructor(
    /** node's prototype the framework's sits on (ServerResponse.prototype, IncomingMessage.prototype). */
    readonly base: object,
  ) {}

  /** The prototype just above `base` in `o`'s chain; undefined when `o` is made straight from base (or off it). */
  of(o: object): object | undefined {
    const own = Object.getPrototypeOf(o) as object | null;
    if (own === this.#lastOwn) return this.#lastFound;
    let below: object | undefined;
    let found: object | undefined;
    for (let p = own; p; p = Object.getPrototypeOf(p) as object | null) {
      if (p === this.base) {
        found = below;
        break;
      }
      below = p;
    }
    this.#lastOwn = own;
    this.#lastFound = found;
    return found;
  }
}
