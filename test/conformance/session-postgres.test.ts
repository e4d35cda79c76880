import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll } from 'vitest';
import { postgresStore } from '../../src/stores/postgres.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { describeSessionConformance } from './session-suite.js';

const skip = await engineSkipReason('postgres');
const url = ENGINE_URLS.postgres;
const table = `shoal_session_test_${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  if (skip) return;
  const admin = new pg.Pool({ connectionString: url, max: 1 });
  await admin.query(`DROP TABLE IF EXISTS "${table}", "${table}_locks"; DROP SEQUENCE IF EXISTS "${table}_fencing"`);
  await admin.end();
});

describeSessionConformance('postgres', (options) => postgresStore({ url, table, ...options }), skip);
