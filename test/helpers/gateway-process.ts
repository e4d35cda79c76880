import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { sqliteStore } from '../../src/stores/sqlite.js';
import { CLI, type NodeProcess, startNode } from './processes.js';

export interface GatewayProcess {
  gateway: NodeProcess;
  /** The gateway's own SQLite store, opened in this process too. */
  store: SessionStore;
  /** A web node's session manager on that store: what a test logs users in with. */
  sessions: SessionManager;
  /** A signed Cookie header for a new session of `user`, with the attributes given. */
  login(user: string, attributes?: Record<string, unknown>): Promise<{ id: string; cookie: string }>;
  /** Closes the store and the manager and removes the scratch directory; stopping the process is stopAll()'s. */
  close(): Promise<void>;
}

/**
 * A real gateway process (`shoal gateway` with the probe app) on a SQLite store in a scratch
 * directory and the memory bus, allowing `origin`, signing with `secret`; `env` adds settings.
 */
export async function startGatewayProcess(o: {
  name: string;
  origin: string;
  secret: string;
  env?: Record<string, string>;
}): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), `${o.name}-`));
  const db = join(dir, 'sessions.db');
  const store = await sqliteStore({ path: db });
  const sessions = new SessionManager({
    store,
    secrets: [o.secret],
    cookie: { secure: false },
    sweep: { enabled: false },
  });
  const close = async () => {
    await sessions.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const gateway = await startNode({
      name: o.name,
      script: CLI,
      args: ['gateway', '--app', 'examples/probe/shoal.app.ts'],
      env: {
        SHOAL_ORIGINS: o.origin,
        SHOAL_STORE: `sqlite:${db}`,
        SHOAL_BUS: 'memory:',
        SHOAL_SECRETS: o.secret,
        SHOAL_COOKIE_SECURE: 'false',
        ...o.env,
      },
    });
    return {
      gateway,
      store,
      sessions,
      async login(user, attributes = {}) {
        const s = sessions.open(undefined);
        s.setUser(user);
        for (const [key, value] of Object.entries(attributes)) s.set(key, value);
        await s.commit();
        const id = s.id as string;
        return { id, cookie: `${sessions.cookieName}=${sessions.sign(id)}` };
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
