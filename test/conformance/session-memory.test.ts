import type { SessionStore } from '../../src/stores/contract.js';
import { memoryStore } from '../../src/stores/memory.js';
import { describeSessionConformance } from './session-suite.js';

// One process, one map per namespace: every "node" is a client of the same store.
const shared = new Map<string, SessionStore>();
describeSessionConformance('memory', async (options) => {
  const namespace = options?.namespace ?? 'session';
  const store = shared.get(namespace) ?? memoryStore();
  shared.set(namespace, store);
  // A client of the shared store: closing it, like closing one connection to a server, keeps the data
  // and the other clients working.
  const client: SessionStore = Object.create(store);
  client.close = async () => {};
  return client;
});
