import { IncomingMessage } from 'node:http';
import { FrameworkPrototype } from './framework-prototype.js';

/**
 * A property a middleware gives Express's requests (`req.session`, `req.sessionID`), kept off the
 * request. Express moves every request onto its app's prototype, and in V8 a property added to an
 * object after that makes a map of its own for that one object (~15,000 instructions a property,
 * a large share of a session layer's own work). So the value is kept in a WeakMap, and the name
 * is an accessor on the request prototype Express shares between its apps (the one just above
 * IncomingMessage.prototype), put there once.
 *
 * A request the accessor cannot serve gets a plain property instead (keep() answers false): one
 * made straight from node's prototype (plain node:http), one that already has a property of that
 * name of its own, or whose prototype has one that something else defined. Assigning the name
 * (`req.session = …` by the app or another middleware) gives that request a property of its own,
 * as without the accessor.
 *
 * The value must not reach the request, or the entry keeps the whole request alive through the
 * young-generation collections (V8 visits a WeakMap's values strongly there).
 */
export class RequestSlot<V> {
  readonly #values = new WeakMap<object, V>();
  readonly #requests = new FrameworkPrototype(IncomingMessage.prototype);
  /** Request prototypes given the accessor. */
  readonly #withAccessor = new WeakSet<object>();
  /** The accessor's getter: the value kept for `this` request, as `read` answers it. */
  readonly #get: (this: object) => unknown;

  constructor(
    readonly name: string,
    /** What reading the property answers, given the value kept for the request. */
    read: (value: V, request: object) => unknown,
  ) {
    const values = this.#values;
    this.#get = function (this: object): unknown {
      const value = values.get(this);
      return value === undefined ? undefined : read(value, this);
    };
  }

  /** Keeps `value` as the request's; false when the request must be given a plain property instead. */
  keep(request: object, value: V): boolean {
    const shared = this.#requests.of(request);
    if (shared === undefined || Object.hasOwn(request, this.name)) return false;
    if (!this.#withAccessor.has(shared)) {
      if (Object.hasOwn(shared, this.name)) return false;
      const name = this.name;
      Object.defineProperty(shared, name, {
        get: this.#get,
        set(this: object, own: unknown) {
          Object.defineProperty(this, name, { value: own, writable: true, enumerable: true, configurable: true });
        },
        configurable: true,
      });
      this.#withAccessor.add(shared);
    }
    this.#values.set(request, value);
    return true;
  }
}
