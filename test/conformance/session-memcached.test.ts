import { randomUUID } from 'node:crypto';
import { memcachedStore } from '../../src/stores/memcached.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { describeSessionConformance } from './session-suite.js';

const skip = await engineSkipReason('memcached');
// A namespace per run: concurrent runs share the server; items age out by their own expiry.
const namespace = `session-test-${randomUUID()}`;

describeSessionConformance(
  'memcached',
  (options) =>
    memcachedStore({
      url: ENGINE_URLS.memcached,
      namespace: options?.namespace ? `${namespace}-${options.namespace}` : namespace,
    }),
  skip,
);
