import { memoryStore } from '../../src/stores/memory.js';
import { describeSessionConformance } from './session-suite.js';

// One process, one map: every "node" is a client of the same store.
const shared = memoryStore();
describeSessionConformance('memory', async () => shared);
