import { Hono } from 'hono';
import { createStore, defineSession, type SessionManager } from 'shoal';
import { type SessionVariables, session } from 'shoal/hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * shoal/hono outside @hono/node-server (Bun, Deno, workers, `app.request()` in tests): no node
 * request in the env, so the cookie and user agent come from the Fetch Request's headers.
 */
const SECRET = 'hono-fetch-secret-0123456789abcdefghijklmnop';
let sessions: SessionManager;
const app = new Hono<{ Variables: SessionVariables }>();

beforeAll(async () => {
  sessions = defineSession({
    store: await createStore('memory:'),
    secrets: [SECRET],
    cookie: { secure: false },
    sweep: { enabled: false },
  });
  app.use(session(sessions));
  app.post('/set', async (c) => {
    c.get('session').set('k', await c.req.text());
    return c.json({ ok: true });
  });
  app.get('/get', async (c) => c.json({ k: (await c.get('session').get('k')) ?? null }));
});

afterAll(async () => {
  await sessions?.close();
});

describe('shoal/hono through app.request(), with no node request behind it', () => {
  it('sets the cookie, reads it back, and records the user agent', async () => {
    const write = await app.request('/set', { method: 'POST', body: 'v1', headers: { 'user-agent': 'fetch-only/1' } });
    expect(write.status).toBe(200);
    const cookie = write.headers.getSetCookie()[0]?.split(';')[0] as string;
    expect(cookie).toMatch(/^shoal\.sid=/);
    const read = await app.request('/get', { headers: { cookie: `other=1; ${cookie}` } });
    expect(await read.json()).toEqual({ k: 'v1' });
    const id = sessions.idFromCookie(cookie).id as string;
    expect((await sessions.load(id))?.meta.client).toMatch(/^fetch-only\/1 · /);
  });
});
