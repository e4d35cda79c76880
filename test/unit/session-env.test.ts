import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { logLevelFromEnv, nodeConfigFromEnv, sessionOptionsFromEnv } from '../../src/app/env.js';
import { ConfigError } from '../../src/core/errors.js';
import { SessionManager } from '../../src/session/manager.js';
import { memoryStore } from '../../src/stores/memory.js';

const secret = () => randomBytes(32).toString('base64url');
const key = () => randomBytes(32).toString('base64');

describe('session settings from the environment (CLI nodes)', () => {
  const store = memoryStore();
  afterAll(() => store.close());
  // The sweeper is off, so a manager holds nothing that needs closing.
  const manager = (options: Partial<ConstructorParameters<typeof SessionManager>[0]>) =>
    new SessionManager({ store, secrets: [secret()], sweep: { enabled: false }, ...options });

  const env = {
    SHOAL_SECRETS: `${secret()},${secret()}`,
    SHOAL_ENCRYPTION_KEYS: key(),
    SHOAL_IDLE_TIMEOUT: '5m',
    SHOAL_ABSOLUTE_TIMEOUT: '2h',
    SHOAL_SWEEP_INTERVAL: '2s',
    SHOAL_SWEEP_LEASE: '45s',
    SHOAL_NODE_ID: 'web-7',
    SHOAL_MAX_SIZE: '1024',
  };

  it('turns every documented variable into the manager setting it names', async () => {
    const m = manager({ ...nodeConfigFromEnv(env, 'web').session, nodeId: nodeConfigFromEnv(env, 'web').nodeId });
    expect(m.config).toMatchObject({
      idleMs: 5 * 60_000,
      absoluteMs: 2 * 3_600_000,
      sweepIntervalMs: 2_000,
      sweepLeaseMs: 45_000,
      nodeId: 'web-7',
      maxSize: 1024,
    });
    expect(m.config.secrets).toHaveLength(2);
    // Encryption on: the stored value is not the JSON text.
    const s = m.open(undefined);
    s.set('k', 'plain');
    await s.commit();
    const stored = await store.load(s.id as string, Date.now());
    expect(stored?.attributes.k).not.toBe('"plain"');
    expect((await m.load(s.id as string))?.attributes.k).toBe('"plain"');
  });

  it('leaves the library alone: a manager built without them ignores process.env', () => {
    const saved = { ...process.env };
    Object.assign(process.env, env);
    try {
      expect(manager({}).config).toMatchObject({
        idleMs: 30 * 60_000,
        absoluteMs: 12 * 3_600_000,
        maxSize: 512 * 1024,
      });
      expect(manager({}).config.nodeId).not.toBe('web-7');
    } finally {
      for (const name of Object.keys(env)) if (!(name in saved)) delete process.env[name];
      Object.assign(process.env, saved);
    }
  });

  it('names SHOAL_MAX_SIZE when it is not a positive whole number', () => {
    expect(() => sessionOptionsFromEnv({ SHOAL_MAX_SIZE: '1.5' })).toThrow(ConfigError);
    expect(() => sessionOptionsFromEnv({ SHOAL_MAX_SIZE: 'big' })).toThrow(/SHOAL_MAX_SIZE/);
  });

  it('reads SHOAL_LOG_LEVEL, info when unset', () => {
    expect(logLevelFromEnv({ SHOAL_LOG_LEVEL: 'warn' })).toBe('warn');
    expect(logLevelFromEnv({})).toBe('info');
  });
});
