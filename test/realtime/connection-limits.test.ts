import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type AppDefinition, nodeConfigFromEnv, silentLogger } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryBus } from '../../src/bus/memory.js';
import { runGatewayNode } from '../../src/cli/gateway-node.js';
import { ConfigError } from '../../src/core/errors.js';
import { CloseCode } from '../../src/protocol/index.js';
import { ConnectionLimits, limitFromEnv } from '../../src/realtime/connection-limits.js';
import { createGateway } from '../../src/realtime/gateway.js';
import { SessionManager } from '../../src/session/manager.js';
import { memoryStore } from '../../src/stores/memory.js';
import { sqliteStore } from '../../src/stores/sqlite.js';
import { freePort } from '../helpers/processes.js';
import { connect, handshakeStatus } from './ws-client.js';

/** How the limits are configured and counted; their behaviour on live sockets is in gateway.test.ts. */
const ORIGIN = 'https://app.example.com';
const SECRET = 'limits-test-secret-0123456789abcdefghijkl';
const dir = mkdtempSync(join(tmpdir(), 'shoal-limits-'));

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ConnectionLimits', () => {
  it('counts per session and per user, and forgets ids whose count is back to 0', () => {
    const limits = new ConnectionLimits(2, 3);
    limits.add('s1', 'u');
    limits.add('s1', 'u');
    expect(limits.exceeded('s1', 'u')).toBe('session');
    expect(limits.exceeded('s2', 'u')).toBeNull();
    limits.add('s2', 'u');
    expect(limits.exceeded('s2', 'u')).toBe('user');
    expect(limits.exceeded('s2', 'other')).toBeNull();
    expect(limits.exceeded('s3', null)).toBeNull(); // anonymous: no user to count
    limits.remove('s1', 'u');
    expect(limits.exceeded('s1', 'u')).toBeNull();
    limits.remove('s1', 'u');
    limits.remove('s2', 'u');
    expect(limits.tracked()).toEqual({ sessions: 0, users: 0 });
  });
});

describe('configuration', () => {
  it.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'createGateway refuses a limit of %s with a ConfigError that names the option',
    async (bad) => {
      const sessions = new SessionManager({ store: memoryStore(), secrets: [SECRET], sweep: { enabled: false } });
      const bus = memoryBus({ namespace: `limits-${Math.random()}` });
      try {
        const perSession = createGateway({ bus, sessions, origins: [ORIGIN], maxConnectionsPerSession: bad });
        await expect(perSession).rejects.toThrow(ConfigError);
        await expect(perSession).rejects.toThrow(/maxConnectionsPerSession must be a whole number/);
        const perUser = createGateway({ bus, sessions, origins: [ORIGIN], maxConnectionsPerUser: bad });
        await expect(perUser).rejects.toThrow(/maxConnectionsPerUser must be a whole number/);
      } finally {
        await bus.close();
      }
    },
  );

  it('reads limits from the environment: unset or empty → default, a whole number ≥ 1 → it, anything else → ConfigError', () => {
    expect(limitFromEnv('X', undefined)).toBeUndefined();
    expect(limitFromEnv('X', '')).toBeUndefined();
    expect(limitFromEnv('X', ' 7 ')).toBe(7);
    for (const bad of ['0', '-3', '1.5', '1e3', 'abc', '12abc', '99999999999999999999']) {
      expect(() => limitFromEnv('SHOAL_MAX_CONNECTIONS_PER_USER', bad)).toThrow(ConfigError);
      expect(() => limitFromEnv('SHOAL_MAX_CONNECTIONS_PER_USER', bad)).toThrow(
        /SHOAL_MAX_CONNECTIONS_PER_USER=.* is not a valid connection limit/,
      );
    }
  });

  const app: AppDefinition = { web: () => () => {} };

  it('`shoal gateway` refuses an invalid SHOAL_MAX_CONNECTIONS_PER_SESSION before opening any backend', async () => {
    const env = { SHOAL_ORIGINS: ORIGIN, SHOAL_STORE: 'memory:', SHOAL_MAX_CONNECTIONS_PER_SESSION: '0' };
    const started = runGatewayNode({
      app,
      config: nodeConfigFromEnv(env, 'gateway', 'gw-bad'),
      port: 0,
      logger: silentLogger,
    });
    await expect(started).rejects.toThrow(/SHOAL_MAX_CONNECTIONS_PER_SESSION="0" is not a valid connection limit/);
  });

  it('`shoal gateway` applies SHOAL_MAX_CONNECTIONS_PER_SESSION and _PER_USER', async () => {
    const db = join(dir, 'sessions.db');
    const store = await sqliteStore({ path: db });
    const sessions = new SessionManager({
      store,
      secrets: [SECRET],
      cookie: { secure: false },
      sweep: { enabled: false },
    });
    const mint = async (user: string) => {
      const s = sessions.open(undefined);
      s.setUser(user);
      await s.commit();
      return `${sessions.cookieName}=${sessions.sign(s.id as string)}`;
    };
    const port = await freePort();
    const node = await runGatewayNode({
      app,
      config: nodeConfigFromEnv(
        {
          SHOAL_ORIGINS: ORIGIN,
          SHOAL_STORE: `sqlite:${db}`,
          SHOAL_BUS: 'memory:',
          SHOAL_SECRETS: SECRET,
          SHOAL_COOKIE_SECURE: 'false',
          SHOAL_MAX_CONNECTIONS_PER_SESSION: '1',
          SHOAL_MAX_CONNECTIONS_PER_USER: '2',
        },
        'gateway',
        'gw-limits',
      ),
      port,
      drainWindowMs: 0,
      logger: silentLogger,
    });
    const url = `ws://127.0.0.1:${port}/ws`;
    const open: Array<{ close(): void }> = [];
    try {
      const first = await mint('ann');
      const c1 = await connect(url, { cookie: first, origin: ORIGIN });
      open.push(c1);
      await c1.waitFor((m) => m.type === 'hello');
      expect(await handshakeStatus(url, { cookie: first, origin: ORIGIN })).toBe(CloseCode.TooManyConnections);
      const second = await mint('ann');
      const c2 = await connect(url, { cookie: second, origin: ORIGIN });
      open.push(c2);
      await c2.waitFor((m) => m.type === 'hello');
      // A third session of the same user: the user limit (2) is reached.
      expect(await handshakeStatus(url, { cookie: await mint('ann'), origin: ORIGIN })).toBe(
        CloseCode.TooManyConnections,
      );
      expect(await handshakeStatus(url, { cookie: await mint('bea'), origin: ORIGIN })).toBe(101);
    } finally {
      for (const c of open) c.close();
      await node.drain();
      await sessions.close();
      await store.close();
    }
  });
});
