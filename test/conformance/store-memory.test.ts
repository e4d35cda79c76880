import { memoryStore } from '../../src/stores/memory.js';
import { describeStoreConformance } from './store-suite.js';

const shared = memoryStore();
describeStoreConformance('memory', { connect: async () => shared, connectOwn: async () => memoryStore() });
