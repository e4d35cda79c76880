import type { Bus } from '../bus/contract.js';
import { busUrlFor } from '../bus/index.js';
import type { SessionManager } from '../session/manager.js';
import { createPublisher, type EventMap, type Publisher, publishSessionEnded } from './publisher.js';

export interface RealtimeOptions {
  bus: Bus;
  sessions: SessionManager;
}

export interface Realtime<E extends EventMap = EventMap> {
  /** `realtime.publisher.to({ user }).send(event, data)` reaches that user's sockets on every gateway. */
  readonly publisher: Publisher<E>;
  /** Stops announcing session ends. The bus and the session manager stay the caller's to close. */
  close(): Promise<void>;
}

/**
 * Realtime for a web node: a publisher, and the link that makes a session end
 * (logout, rotation on login, expiry) close that session's sockets on every
 * gateway — the web node that ended it tells the bus, every gateway listens.
 */
export function createRealtime<E extends EventMap = EventMap>(o: RealtimeOptions): Realtime<E> {
  const stop = o.sessions.onSessionRevoked(async (id, reason) => {
    await publishSessionEnded(o.bus, id, reason);
  });
  return {
    publisher: createPublisher<E>(o.bus),
    async close() {
      stop();
    },
  };
}

/**
 * SHOAL_BUS, else the store's URL when that backend is also a bus (sqlite, redis,
 * postgres), else the embedded default. Web nodes and gateways must resolve it
 * the same way, or publishers and gateways would talk past each other.
 */
export function busUrlFromEnv(env: NodeJS.ProcessEnv): string {
  return env.SHOAL_BUS || busUrlFor(env.SHOAL_STORE);
}
