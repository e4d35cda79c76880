import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBus } from '../../src/bus/index.js';
import { memoryBus } from '../../src/bus/memory.js';
import { ConfigError } from '../../src/core/errors.js';
import { describeBusConformance } from './bus-suite.js';

// Every connect is a new client of one namespace, as separate nodes of one process would be.
const namespace = `test-${randomUUID()}`;
describeBusConformance('memory', { connect: async (options) => memoryBus({ namespace, ...options }) });

describe('createBus', () => {
  it('opens the backend the URL names', async () => {
    const memory = await createBus('memory:', { namespace });
    expect(memory.kind).toBe('memory');
    await memory.close();
    const dir = mkdtempSync(join(tmpdir(), 'shoal-bus-create-'));
    try {
      const sqlite = await createBus(`sqlite:${join(dir, 'bus.db')}`);
      expect(sqlite.kind).toBe('sqlite');
      expect(sqlite.capabilities.shared).toBe(true);
      await sqlite.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown scheme with valid examples, never echoing the password', async () => {
    const err = await createBus('kafka://user:hunter2@host:9092').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('hunter2');
    expect((err as Error).message).toMatch(/sqlite:\.shoal\/shoal\.db.*redis:\/\/.*nats:\/\/.*amqp:\/\//);
  });
});
