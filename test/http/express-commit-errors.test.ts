import { createServer } from 'node:http';
import express from 'express';
import { ConfigError, defineSession, type SessionManager, StoreUnavailableError } from 'shoal';
import { session, sessionErrors } from 'shoal/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';
import { type StoreOutage, storeDownWhen } from '../helpers/switchable-store.js';

/**
 * A commit fails as the response leaves, past Express's error handlers: `session(sessions, { onError })`
 * is where an app hears of it, as `nodeSessions(…, { onError })` on plain node:http.
 */
const SECRET = 'commit-errors-secret-0123456789abcdefghijklmno';
let sessions: SessionManager;
let served: Served;
const outage: StoreOutage = { down: false };
const reported: unknown[] = [];

beforeAll(async () => {
  const store = await storeDownWhen(outage);
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
  const app = express();
  app.use(session(sessions, { onError: (err) => reported.push(err) }));
  app.post('/set', (req, res) => {
    req.session.set('color', 'blue');
    res.json({ ok: true });
  });
  app.get('/quiet', (_req, res) => {
    res.json({ ok: true });
  });
  app.use(sessionErrors());
  served = await listen(createServer(app));
});

afterAll(async () => {
  await served?.close();
  await sessions?.close();
});

describe('session(sessions, { onError }) on Express', () => {
  it('is told of each commit that failed, once, and the client gets the 503', async () => {
    outage.down = true;
    try {
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${served.url}/set`, { method: 'POST', signal: AbortSignal.timeout(5000) });
        expect(res.status).toBe(503);
      }
    } finally {
      outage.down = false;
    }
    expect(reported).toHaveLength(3);
    for (const err of reported) expect(err).toBeInstanceOf(StoreUnavailableError);
  });

  it('is not told of requests that committed or had nothing to commit', async () => {
    reported.length = 0;
    expect((await fetch(`${served.url}/set`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${served.url}/quiet`)).status).toBe(200);
    expect(reported).toEqual([]);
  });

  it('refuses an onError that is not a function, saying what to pass', () => {
    expect(() => session(sessions, { onError: 'log' as unknown as () => void })).toThrow(ConfigError);
    expect(() => session(sessions, { onError: 'log' as unknown as () => void })).toThrow(
      /takes a function called with the error of a failed commit.*got a string/,
    );
  });
});
