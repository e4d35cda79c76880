import { createStore, type SessionStore, StoreUnavailableError } from 'shoal';

/** The switch a test turns its stores off with. */
export interface StoreOutage {
  down: boolean;
}

/** A memory store whose every call fails while `outage.down` is set, as a real driver's does while its backend is down. */
export async function storeDownWhen(outage: StoreOutage): Promise<SessionStore> {
  const real = await createStore('memory:');
  return new Proxy(real, {
    get(target, prop) {
      const member = Reflect.get(target, prop, target) as unknown;
      if (typeof member !== 'function') return member;
      return (...args: unknown[]) =>
        outage.down
          ? Promise.reject(new StoreUnavailableError(target.kind, 'connection refused (injected by the test)'))
          : (member as (...a: unknown[]) => unknown).apply(target, args);
    },
  }) as SessionStore;
}
