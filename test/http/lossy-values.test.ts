import { createServer } from 'node:http';
import express from 'express';
import { createStore, defineSession, type SessionManager } from 'shoal';
import { session as dropIn } from 'shoal/express-session';
import { nodeSessions } from 'shoal/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';

/**
 * A value JSON would store as something else (NaN as null, a Map as {}) is refused by set() and
 * update() before it replaces what the session holds, as a function or a BigInt is. The
 * express-session drop-in keeps express-session's behaviour: such a property is stored as JSON has it.
 */
const SECRET = 'lossy-values-secret-0123456789abcdefghijkl';
const LOSSY: Record<string, () => unknown> = {
  nan: () => Number.NaN,
  infinity: () => Number.POSITIVE_INFINITY,
  map: () => new Map([['a', 1]]),
  set: () => new Set([1]),
  buffer: () => Buffer.from('abc'),
};
let sessions: SessionManager;
const servers: Served[] = [];

beforeAll(async () => {
  sessions = defineSession({
    store: await createStore('memory:'),
    secrets: [SECRET],
    cookie: { secure: false },
    sweep: { enabled: false },
  });
  const { handle } = nodeSessions(sessions);
  servers.push(
    await listen(
      createServer(
        handle(async (req, res, session) => {
          const url = new URL(req.url ?? '/', 'http://x');
          const make = LOSSY[url.searchParams.get('kind') ?? ''];
          let error: string | undefined;
          try {
            if (url.pathname === '/seed') session.set('n', 5);
            if (url.pathname === '/set' && make) session.set('n', make());
            if (url.pathname === '/update' && make) await session.update('n', () => make() as number);
          } catch (err) {
            error = `${(err as Error).name}: ${(err as Error).message}`;
          }
          const body = JSON.stringify({ n: await session.get('n'), error });
          res.writeHead(200, { 'content-type': 'application/json' }).end(body);
        }),
      ),
    ),
  );
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await sessions?.close();
});

async function call(base: string, path: string, cookie?: string) {
  const res = await fetch(`${base}${path}`, { headers: cookie ? { cookie } : {}, signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { n?: unknown; error?: string };
  return { status: res.status, body, cookie: res.headers.get('set-cookie')?.split(';')[0] ?? cookie };
}

describe('set() and update() with a value JSON cannot keep', () => {
  for (const kind of Object.keys(LOSSY)) {
    for (const how of ['set', 'update']) {
      it(`${how}() of ${kind} throws SessionValueError at the call and the stored value stays`, async () => {
        const base = (servers[0] as Served).url;
        const seeded = await call(base, '/seed');
        const refused = await call(base, `/${how}?kind=${kind}`, seeded.cookie);
        expect(refused.status).toBe(200);
        expect(refused.body.error).toMatch(
          /^SessionValueError: session attribute "n" cannot be stored: .* is not JSON/,
        );
        // What to do instead fits the kind: a number is not converted, a Map or a Set is.
        expect(refused.body.error).toMatch(
          ['nan', 'infinity'].includes(kind)
            ? /Store a finite number, or delete the key\.$/
            : /Convert it first, e\.g\. /,
        );
        expect(refused.body.n).toBe(5);
        expect((await call(base, '/read', seeded.cookie)).body).toEqual({ n: 5 });
      });
    }
  }
});

describe('the express-session drop-in', () => {
  it('stores NaN as null and a Map as {}, as express-session does', async () => {
    const app = express();
    app.use(
      dropIn({ secret: SECRET, store: 'memory:', resave: false, saveUninitialized: false, cookie: { secure: false } }),
    );
    app.post('/first', (req, res) => {
      const s = req.session as unknown as Record<string, unknown>;
      s.n = 1;
      res.json({ ok: true });
    });
    app.post('/second', (req, res) => {
      const s = req.session as unknown as Record<string, unknown>;
      s.n = Number.NaN;
      s.m = new Map([['a', 1]]);
      res.json({ ok: true });
    });
    app.get('/read', (req, res) => {
      const s = req.session as unknown as Record<string, unknown>;
      res.json({ n: s.n, m: s.m });
    });
    const served = await listen(createServer(app));
    servers.push(served);
    const first = await fetch(`${served.url}/first`, { method: 'POST' });
    const cookie = first.headers.get('set-cookie')?.split(';')[0] ?? '';
    expect((await fetch(`${served.url}/second`, { method: 'POST', headers: { cookie } })).status).toBe(200);
    expect(await (await fetch(`${served.url}/read`, { headers: { cookie } })).json()).toEqual({ n: null, m: {} });
  });
});
