import { createServer } from 'node:http';
import compression from 'compression';
import express from 'express';
import { createStore, defineSession, type SessionManager } from 'shoal';
import { session } from 'shoal/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * The session holds each response until its commit is done, and the compressor most Express apps
 * mount wraps the same response methods: mounted before the session or after it, every response
 * arrives whole and compressed, with the cookie, and only once the write is stored. The first
 * request of a process is in the test too: the hold is set up on it.
 */
const SECRET = 'compression-test-secret-0123456789abcdefghij';
const BODY = 'a line the compressor can shrink. '.repeat(200);
let sessions: SessionManager;
const apps: Record<string, Served> = {};

function appWith(order: 'compression first' | 'session first'): express.Express {
  const app = express();
  app.get('/before-session', (_req, res) => {
    res.send(BODY);
  });
  if (order === 'compression first') app.use(compression({ threshold: 0 }));
  app.use(session(sessions));
  if (order === 'session first') app.use(compression({ threshold: 0 }));
  app.get('/read', async (req, res) => {
    res.type('text').send(`${String(await req.session.get('n'))} ${BODY}`);
  });
  app.post('/write', (req, res) => {
    req.session.set('n', Number(req.query.n));
    res.type('text');
    res.write(BODY.slice(0, 100));
    setImmediate(() => res.end(BODY.slice(100)));
  });
  return app;
}

beforeAll(async () => {
  const store = await createStore('memory:');
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
  for (const order of ['compression first', 'session first'] as const) {
    apps[order] = await listen(createServer(appWith(order)));
  }
});

afterAll(async () => {
  for (const served of Object.values(apps)) await served.close();
  await sessions?.close();
});

describe.each(['compression first', 'session first'] as const)('express with compression, %s', (order) => {
  const get = (jar: CookieJar, path: string, init: RequestInit = {}) =>
    jar.fetch(`${apps[order]?.url}${path}`, {
      ...init,
      headers: { 'accept-encoding': 'gzip' },
      signal: AbortSignal.timeout(5000),
    });

  it('sends a write compressed and whole, with the cookie, once the write is stored', async () => {
    const jar = new CookieJar();
    for (let n = 1; n <= 3; n++) {
      const wrote = await get(jar, `/write?n=${n}`, { method: 'POST' });
      expect(wrote.headers.get('content-encoding')).toBe('gzip');
      expect(await wrote.text()).toBe(BODY);
      expect(jar.cookie).toMatch(/^shoal\.sid=/);
      // The next request reads what the response promised was stored.
      const read = await get(jar, '/read');
      expect(read.headers.get('content-encoding')).toBe('gzip');
      expect(await read.text()).toBe(`${n} ${BODY}`);
    }
  });

  it('leaves a route mounted before the session alone', async () => {
    const res = await get(new CookieJar(), '/before-session');
    expect(await res.text()).toBe(BODY);
    expect(res.headers.get('set-cookie')).toBeNull();
  });
});
