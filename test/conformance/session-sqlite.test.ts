import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { sqliteStore } from '../../src/stores/sqlite.js';
import { describeSessionConformance } from './session-suite.js';

const dir = join(tmpdir(), `shoal-session-sqlite-${randomUUID()}`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Each connect opens its own connection to one file, as two processes on one machine would.
describeSessionConformance('sqlite', (options) => sqliteStore({ path: join(dir, 'shoal.db'), ...options }));
