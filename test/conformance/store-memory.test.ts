import { memoryStore } from '../../src/stores/memory.js';
import { describeStoreConformance } from './store-suite.js';

const shared = memoryStore();
/** Every "client" of the memory store is the one process-local store; closing a client leaves it open. */
const client = async () =>
  new Proxy(shared, { get: (store, key) => (key === 'close' ? async () => {} : Reflect.get(store, key, store)) });
describeStoreConformance('memory', { connect: client, connectOwn: async () => memoryStore() });
