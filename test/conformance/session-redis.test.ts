import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisStore } from '../../src/stores/redis.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { describeSessionConformance } from './session-suite.js';

const skip = await engineSkipReason('redis');
const keyPrefix = `shoal-session-test-${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  if (skip) return;
  // Test-only cleanup: the store itself never scans the keyspace.
  const raw = new Redis(ENGINE_URLS.redis, { maxRetriesPerRequest: 1 });
  let cursor = '0';
  for (let i = 0; i < 1000; i++) {
    const [next, keys] = await raw.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
    if (keys.length > 0) await raw.del(...keys);
    cursor = next;
    if (cursor === '0') break;
  }
  await raw.quit();
});

describeSessionConformance('redis', (options) => redisStore({ url: ENGINE_URLS.redis, keyPrefix, ...options }), skip);
