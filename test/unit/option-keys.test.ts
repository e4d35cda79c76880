/**
 * Plain JavaScript (and a spread in TypeScript) passes a misspelt option without a word, and the
 * setting it meant keeps its default. Every options object names its unknown keys, with the nearest
 * known one.
 */
import { ConfigError, createBus, createStore, defineApp, defineClientScope, defineSession } from 'shoal';
import { createGateway } from 'shoal/gateway';
import { describe, expect, it } from 'vitest';

const loosely = <A extends unknown[], R>(f: (...args: A) => R, ...args: unknown[]): R => f(...(args as A));
const web = () => () => {};
const secrets = ['a-test-secret-of-at-least-32-characters-0123456789'];

describe('unknown option keys', () => {
  it('defineApp refuses a misspelt session option and suggests the right one', () => {
    expect(() => loosely(defineApp, { session: { idleTimout: '5m' }, web })).toThrow(ConfigError);
    expect(() => loosely(defineApp, { session: { idleTimout: '5m' }, web })).toThrow(
      /^unknown option session\.idleTimout; did you mean idleTimeout\?$/,
    );
    expect(() => loosely(defineApp, { session: { cookie: { secur: false } }, web })).toThrow(
      /^unknown option session\.cookie\.secur; did you mean secure\?$/,
    );
  });

  it('defineApp refuses misspelt realtime options and top-level keys', () => {
    expect(() =>
      loosely(defineApp, { realtime: { authorise: () => true, origns: ['http://a.example'] }, web }),
    ).toThrow(
      /^unknown options realtime\.authorise \(did you mean authorize\?\), realtime\.origns \(did you mean origins\?\)$/,
    );
    expect(() => loosely(defineApp, { sesion: {}, web })).toThrow(/^unknown option sesion; did you mean session\?$/);
    expect(() => loosely(defineApp, { realtime: { tokens: { secrt: 'x' } }, web })).toThrow(
      /^unknown option realtime\.tokens\.secrt; did you mean secret\?$/,
    );
  });

  it('a session function of the app is checked when a node calls it', async () => {
    const app = loosely(defineApp, { session: () => ({ absoluteTimout: '1h', secrets }), web });
    const { createWebNode } = await import('shoal');
    const started = createWebNode(app, { nodeId: 'w', env: {}, store: 'memory:', bus: 'memory:' }).then(
      async (node) => {
        await node.close();
        throw new Error('the node started');
      },
    );
    await expect(started).rejects.toThrow(/^unknown option session\.absoluteTimout; did you mean absoluteTimeout\?$/);
  });

  it('defineSession and defineClientScope refuse unknown keys', async () => {
    const store = await createStore('memory:');
    try {
      expect(() => loosely(defineSession, { store, secrets, idleTimout: '5m' })).toThrow(
        /^unknown option idleTimout; did you mean idleTimeout\?$/,
      );
      expect(() => loosely(defineSession, { store, secrets, sweep: { intervall: '1s' } })).toThrow(
        /^unknown option sweep\.intervall; did you mean interval\?$/,
      );
      expect(() => loosely(defineClientScope, { store, secrets, absoluteTimout: '1d' })).toThrow(
        /^unknown option absoluteTimout; did you mean absoluteTimeout\?$/,
      );
    } finally {
      await store.close();
    }
  });

  it('createGateway refuses an unknown key before opening anything', async () => {
    await expect(loosely(createGateway, { bus: {}, sessions: {}, origin: ['http://a.example'] })).rejects.toThrow(
      /^unknown option origin; did you mean origins\?$/,
    );
  });
});

describe('numeric gateway options', () => {
  it('createGateway refuses a string or a non-positive number where a number goes, naming it', async () => {
    const bus = await createBus('memory:');
    const store = await createStore('memory:');
    const sessions = defineSession({ store, secrets, cookie: { secure: false } });
    const base = { bus, sessions, origins: ['http://a.example'] };
    try {
      await expect(loosely(createGateway, { ...base, heartbeatMs: '5' })).rejects.toThrow(
        /^createGateway\(\): heartbeatMs must be a number above 0 \(milliseconds\), got "5"$/,
      );
      await expect(loosely(createGateway, { ...base, presence: { ttlMs: 0 } })).rejects.toThrow(
        /^createGateway\(\): presence\.ttlMs must be a number above 0/,
      );
      await expect(loosely(createGateway, { ...base, rateLimit: Number.NaN })).rejects.toThrow(
        /^createGateway\(\): rateLimit must be a number above 0, got /,
      );
    } finally {
      await sessions.close();
      await store.close();
      await bus.close();
    }
  });
});
