import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppDefinition } from '../../src/app/define.js';
import { nodeConfigFromEnv } from '../../src/app/env.js';
import { runGatewayNode } from '../../src/cli/gateway-node.js';
import { CloseCode } from '../../src/protocol/index.js';
import { SessionManager } from '../../src/session/manager.js';
import { sqliteStore } from '../../src/stores/sqlite.js';
import { freePort } from '../helpers/processes.js';
import { connect } from './ws-client.js';

/**
 * `shoal gateway` takes its keep-alive rule from the app definition, and SHOAL_KEEP_SESSION_ALIVE
 * wins over it. Observed on a socket that only receives: under 'inbound' its session idles out
 * (4001); under 'open' it stays signed in past several idle timeouts.
 */
const ORIGIN = 'https://app.example.com';
const SECRET = 'keep-alive-config-secret-0123456789abcdef';
const IDLE_MS = 1200;
const dir = mkdtempSync(join(tmpdir(), 'shoal-keepalive-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const app: AppDefinition = {
  session: { idleTimeout: IDLE_MS },
  realtime: { keepSessionAlive: 'inbound' },
  web: () => () => {},
};

/** Opens a gateway node on a fresh database and one receive-only socket; reports how it ended after `waitMs`. */
async function quietSocket(extraEnv: Record<string, string>, waitMs: number) {
  const db = join(dir, `${extraEnv.SHOAL_KEEP_SESSION_ALIVE ?? 'app'}.db`);
  const store = await sqliteStore({ path: db });
  const sessions = new SessionManager({
    store,
    secrets: [SECRET],
    cookie: { secure: false },
    idleTimeout: IDLE_MS,
    sweep: { enabled: false },
  });
  const port = await freePort();
  const env = {
    SHOAL_ORIGINS: ORIGIN,
    SHOAL_STORE: `sqlite:${db}`,
    SHOAL_BUS: 'memory:',
    SHOAL_SECRETS: SECRET,
    SHOAL_COOKIE_SECURE: 'false',
    ...extraEnv,
  };
  const node = await runGatewayNode({
    app,
    config: nodeConfigFromEnv(env, 'gateway', 'gw-keepalive'),
    port,
    drainWindowMs: 0,
    logger: silentLogger,
  });
  try {
    const s = sessions.open(undefined);
    s.setUser('quiet');
    await s.commit();
    const cookie = `${sessions.cookieName}=${sessions.sign(s.id as string)}`;
    const c = await connect(`ws://127.0.0.1:${port}/ws`, { cookie, origin: ORIGIN });
    await c.waitFor((m) => m.type === 'hello');
    const ended = await Promise.race([c.closed, new Promise<null>((r) => setTimeout(() => r(null), waitMs))]);
    c.close();
    return ended;
  } finally {
    await node.drain();
    await sessions.close();
    await store.close();
  }
}

describe('keepSessionAlive for `shoal gateway`', () => {
  it("the app definition's 'inbound' lets a receive-only socket's session idle out: 4001", async () => {
    const ended = await quietSocket({}, IDLE_MS * 5);
    expect(ended?.code).toBe(CloseCode.SessionEnded);
  }, 30_000);

  it('SHOAL_KEEP_SESSION_ALIVE=open wins over the app definition: the socket stays signed in', async () => {
    const ended = await quietSocket({ SHOAL_KEEP_SESSION_ALIVE: 'open' }, IDLE_MS * 4);
    expect(ended).toBeNull();
  }, 30_000);
});
