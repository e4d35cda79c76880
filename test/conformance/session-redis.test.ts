import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisStore } from '../../src/stores/redis.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { describeSessionConformance } from './session-suite.js';

const skip = await engineSkipReason('redis');
const keyPrefix = `shoal-session-test-${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  if (skip) return;
  const raw = new Redis(ENGINE_URLS.redis, { maxRetriesPerRequest: 1 });
  await deleteKeys(raw, `${keyPrefix}*`, { count: 500 });
  await raw.quit();
});

describeSessionConformance('redis', (options) => redisStore({ url: ENGINE_URLS.redis, keyPrefix, ...options }), skip);
