import { randomUUID } from 'node:crypto';
import { memcachedStore } from '../../src/stores/memcached.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { describeStoreConformance } from './store-suite.js';

const skip = await engineSkipReason('memcached');
// A namespace per run: concurrent runs share the server; items age out by their own expiry.
const namespace = `test-${randomUUID()}`;

describeStoreConformance(
  'memcached',
  {
    connect: () => memcachedStore({ url: ENGINE_URLS.memcached, namespace }),
    connectDown: () => memcachedStore({ url: 'memcached://127.0.0.1:1', namespace, timeoutMs: 500 }),
  },
  skip,
);
