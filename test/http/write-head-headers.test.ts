import { createServer, type RequestListener } from 'node:http';
import express from 'express';
import { createStore, defineSession, type SessionManager, type SessionStore } from 'shoal';
import { session as expressSession } from 'shoal/express';
import { nodeSessions } from 'shoal/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';

/**
 * A handler that passes Set-Cookie or Cache-Control to res.writeHead(): node gives those headers
 * precedence over the ones set before, so without care the session's cookie would be replaced (the
 * browser loses its session) and its `Cache-Control: no-store` made cacheable.
 */
const SECRET = 'write-head-secret-0123456789abcdefghijklmnop';
let store: SessionStore;
let sessions: SessionManager;
const servers: Served[] = [];

/** Each path: what the handler passes to writeHead after writing to the session (or not, `?read`). */
const HEADS: Record<string, unknown[]> = {
  '/object': [
    200,
    { 'content-type': 'text/plain', 'Set-Cookie': 'theme=dark; Path=/', 'Cache-Control': 'public, max-age=60' },
  ],
  '/array': [200, ['content-type', 'text/plain', 'set-cookie', 'theme=dark; Path=/', 'cache-control', 'max-age=60']],
  '/message': [200, 'Fine', { 'set-cookie': ['theme=dark; Path=/', 'lang=en; Path=/'] }],
  '/plain': [200, { 'content-type': 'text/plain', 'x-kept': 'yes' }],
};

async function respond(
  url: string,
  write: (key: string, value: string) => void,
  res: { writeHead: (...a: unknown[]) => unknown; end: (b: string) => unknown },
) {
  const { pathname, searchParams } = new URL(url, 'http://local');
  if (!searchParams.has('read')) write('seen', pathname);
  await new Promise((r) => setImmediate(r));
  res.writeHead(...((HEADS[pathname] ?? [404]) as [number]));
  res.end('ok');
}

beforeAll(async () => {
  store = await createStore('memory:');
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
  const app = express();
  app.use(expressSession(sessions));
  app.use((req, res) => void respond(req.url, (k, v) => req.session.set(k, v), res as never));
  servers.push(await listen(createServer(app)));
  const node: RequestListener = nodeSessions(sessions).handle((req, res, s) =>
    respond(req.url ?? '/', (k, v) => s.set(k, v), res as never),
  );
  servers.push(await listen(createServer(node)));
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await sessions?.close();
});

describe.each([
  ['shoal/express', 0],
  ['shoal/node', 1],
])('%s: headers given to writeHead', (_name, index) => {
  const get = (path: string, cookie?: string) =>
    fetch(`${servers[index]?.url}${path}`, { headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(5000) });

  it.each(['/object', '/array'])(
    '%s: the session cookie and no-store stay, the handler cookie is added',
    async (path) => {
      const res = await get(path);
      expect(res.status).toBe(200);
      const cookies = res.headers.getSetCookie();
      expect(cookies).toHaveLength(2);
      expect(cookies.some((c) => c.startsWith('shoal.sid='))).toBe(true);
      expect(cookies).toContain('theme=dark; Path=/');
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.headers.get('content-type')).toBe('text/plain');
      // The cookie works: the next request reads what this one wrote.
      const session = cookies.find((c) => c.startsWith('shoal.sid='))?.split(';')[0] as string;
      const id = sessions.idFromCookie(session).id as string;
      expect((await sessions.load(id))?.attributes.seen).toBe(JSON.stringify(path));
    },
  );

  it('with a status message and several cookies', async () => {
    const res = await get('/message');
    expect(res.statusText).toBe('Fine');
    const cookies = res.headers.getSetCookie();
    expect(cookies.filter((c) => c.startsWith('shoal.sid='))).toHaveLength(1);
    expect(cookies).toEqual(expect.arrayContaining(['theme=dark; Path=/', 'lang=en; Path=/']));
  });

  it('a cleared cookie (a forged one, nothing written) is not replaced either', async () => {
    const res = await get('/object?read', 'shoal.sid=forged.value');
    const cookies = res.headers.getSetCookie();
    expect(cookies.some((c) => c.startsWith('shoal.sid=;') && /Max-Age=0/.test(c))).toBe(true);
    expect(cookies).toContain('theme=dark; Path=/');
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('without a session cookie to send, the handler headers pass as given', async () => {
    const first = await get('/plain');
    const cookie = first.headers.getSetCookie()[0]?.split(';')[0] as string;
    const res = await get('/object?read', cookie);
    expect(res.headers.getSetCookie()).toEqual(['theme=dark; Path=/']);
    expect(res.headers.get('cache-control')).toBe('public, max-age=60');
    expect((await get('/plain?read', cookie)).headers.get('x-kept')).toBe('yes');
  });
});
