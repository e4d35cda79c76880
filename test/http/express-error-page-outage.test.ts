import { createServer } from 'node:http';
import express from 'express';
import { defineSession, type SessionManager } from 'shoal';
import { session, sessionErrors } from 'shoal/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';
import { type StoreOutage, storeDownWhen } from '../helpers/switchable-store.js';

/**
 * A route that wrote to the session and then failed with a client error: Express's own error page
 * answers 404, and the commit under it finds the store down. The client must get a plain 503 (status
 * line included), not "503 Not Found". (A server error would commit nothing, so never reach the store.)
 */
const SECRET = 'error-page-secret-0123456789abcdefghijklmnop';
let sessions: SessionManager;
let served: Served;
const outage: StoreOutage = { down: false };

beforeAll(async () => {
  const store = await storeDownWhen(outage);
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
  const app = express();
  app.use(session(sessions));
  app.post('/fail', (req) => {
    req.session.set('half', 'done');
    throw Object.assign(new Error('no such thing'), { status: 404 });
  });
  app.use(sessionErrors());
  served = await listen(createServer(app));
});

afterAll(async () => {
  await served?.close();
  await sessions?.close();
});

describe("Express's error page over a store outage", () => {
  it('answers 503 Service Unavailable with the JSON body', async () => {
    outage.down = true;
    try {
      const res = await fetch(`${served.url}/fail`, { method: 'POST', signal: AbortSignal.timeout(5000) });
      expect(res.status).toBe(503);
      expect(res.statusText).toBe('Service Unavailable');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(((await res.json()) as { error: string }).error).toBe('ERR_SHOAL_STORE_UNAVAILABLE');
    } finally {
      outage.down = false;
    }
  });
});
