import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createAdaptorServer } from '@hono/node-server';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BusUnavailableError, StoreUnavailableError } from '../../src/core/errors.js';
import { session as expressSession, sessionErrors } from '../../src/http/express.js';
import { session as fastifySession } from '../../src/http/fastify.js';
import { session as honoSession, type SessionVariables } from '../../src/http/hono.js';
import { nodeSessions } from '../../src/http/node.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionOptions } from '../../src/session/options.js';
import type { Session } from '../../src/session/session.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { memoryStore } from '../../src/stores/memory.js';
import { sqliteStore } from '../../src/stores/sqlite.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * One suite, every adapter, every in-process store: each adapter serves the
 * same tiny app (`/op/<name>?key=&value=`, see `run`) on a real 127.0.0.1 port.
 */
const SECRET = 'adapter-suite-secret-0123456789abcdefghijkl';
const dir = mkdtempSync(join(tmpdir(), 'shoal-adapters-'));
const managers: SessionManager[] = [];
afterAll(async () => {
  await Promise.all(managers.map((m) => m.close()));
  rmSync(dir, { recursive: true, force: true });
});

/** No background sweeper: its store calls would blur the per-request counts, and ending sessions is not an adapter's job. */
function managerFor(store: SessionStore, cookie?: SessionOptions['cookie']): SessionManager {
  const m = new SessionManager({ store, secrets: [SECRET], sweep: { enabled: false }, ...(cookie ? { cookie } : {}) });
  managers.push(m);
  return m;
}

// ---------- the app every adapter serves ----------

async function run(s: Session, op: string, q: URLSearchParams): Promise<Record<string, unknown>> {
  const key = q.get('key') ?? 'k';
  const value = q.get('value') ?? '';
  switch (op) {
    case 'set':
      s.set(key, value);
      return { ok: true };
    case 'get':
      return { value: await s.get(key) };
    case 'incr':
      return { value: await s.increment(key) };
    case 'push': {
      // In-place mutation of a value read with get(): the session must notice it.
      const list = (await s.get(key)) as { items: string[] } | undefined;
      if (list) list.items.push(value);
      else s.set(key, { items: [value] });
      return { ok: true };
    }
    case 'all': {
      const attributes = await s.all(); // first: before the load, id is the cookie's, unverified
      return { id: s.id, attributes };
    }
    case 'destroy':
      await s.destroy();
      return { ok: true };
    case 'untouched':
      return { ok: true };
    case 'publish':
      // What realtime.to(…).send(…) throws when the bus cannot take the message in time.
      s.set(key, value);
      throw new BusUnavailableError('nats (test)', 'publish failed: no answer within 2000 ms', { outcome: 'unknown' });
    case 'fail':
      // The route fails after changing the session: a server error, nothing of it may stick.
      s.set(key, value);
      throw new Error('the route failed after a write');
    default:
      throw new Error(`unknown op ${op}`);
  }
}

// ---------- one factory per adapter ----------

const query = (url: string) => new URL(url, 'http://local').searchParams;
/** What middleware ahead of the session sets: a failure answer keeps it (a browser must be able to read the error). */
const AHEAD = { 'access-control-allow-origin': 'https://app.example', 'x-request-id': 'req-1' };
/** What the handler sets about its own answer: a failure answer replacing it drops it. */
const HANDLER = { etag: '"handler-body"', 'last-modified': 'Wed, 21 Oct 2026 07:28:00 GMT' };

const adapters: Array<{ name: string; serve: (m: SessionManager) => Promise<Served> }> = [
  {
    name: 'express',
    serve: (m) => {
      const app = express();
      app.use((_req, res, next) => {
        res.set(AHEAD);
        next();
      });
      app.use(expressSession(m));
      app.all('/op/:name', async (req, res) => {
        res.set(HANDLER);
        res.json(await run(req.session, req.params.name, query(req.originalUrl)));
      });
      app.use(sessionErrors());
      return listen(createServer(app));
    },
  },
  {
    name: 'fastify',
    serve: async (m) => {
      const app = Fastify();
      app.addHook('onRequest', async (_request, reply) => {
        reply.headers(AHEAD);
      });
      await app.register(fastifySession(m));
      app.all<{ Params: { name: string } }>('/op/:name', (request, reply) => {
        reply.headers(HANDLER);
        return run(request.session, request.params.name, query(request.url));
      });
      await app.listen({ port: 0, host: '127.0.0.1' });
      const { port } = app.server.address() as AddressInfo;
      return { url: `http://127.0.0.1:${port}`, close: () => app.close() };
    },
  },
  {
    name: 'hono',
    serve: (m) => {
      const app = new Hono<{ Variables: SessionVariables }>();
      app.use(async (c, next) => {
        for (const [name, value] of Object.entries(AHEAD)) c.header(name, value);
        await next();
      });
      app.use(honoSession(m));
      app.onError((_err, c) =>
        c.json({ error: 'the app answers its own errors; a store outage still gets the 503' }, 500),
      );
      app.all('/op/:name', async (c) => {
        for (const [name, value] of Object.entries(HANDLER)) c.header(name, value);
        return c.json(await run(c.get('session'), c.req.param('name'), query(c.req.url)));
      });
      return listen(createAdaptorServer({ fetch: app.fetch }) as Server);
    },
  },
  {
    name: 'node:http',
    serve: (m) =>
      listen(
        createServer(
          nodeSessions(m).handle(async (req, res, s) => {
            for (const [name, value] of Object.entries({ ...AHEAD, ...HANDLER })) res.setHeader(name, value);
            const op = /^\/op\/([a-z]+)/.exec(req.url ?? '')?.[1] ?? '';
            const body = JSON.stringify(await run(s, op, query(req.url ?? '/')));
            res.writeHead(200, { 'content-type': 'application/json' }).end(body);
          }),
        ),
      ),
  },
];

// ---------- stores: the real ones, wrapped only to count calls and inject faults ----------

const stores: Array<{ name: string; open(file: string): Promise<SessionStore> }> = [
  { name: 'memory', open: async () => memoryStore() },
  { name: 'sqlite', open: (file) => sqliteStore({ path: file }) },
];

interface Instrumented {
  store: SessionStore;
  calls: string[];
  /** Every method rejects with StoreUnavailableError, as a real driver does when its backend is down. */
  down: boolean;
  /** Makes create/commit slow, so a response sent before the commit finished is caught. */
  writeDelayMs: number;
}

function instrument(real: SessionStore): Instrumented {
  const ctl: Instrumented = { store: real, calls: [], down: false, writeDelayMs: 0 };
  ctl.store = new Proxy(real, {
    get(target, prop) {
      const member = Reflect.get(target, prop, target) as unknown;
      if (typeof member !== 'function') return member;
      return async (...args: unknown[]) => {
        ctl.calls.push(String(prop));
        if (ctl.down) throw new StoreUnavailableError(target.kind, 'connection refused (injected by the test)');
        if (ctl.writeDelayMs && (prop === 'create' || prop === 'commit')) await sleep(ctl.writeDelayMs);
        return (member as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return ctl;
}

// ---------- a client ----------

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
  /** The session cookie's `name=value` pair when the response set it (not when it cleared it). */
  cookie: string | undefined;
  setCookie: string[];
}

async function call(base: string, op: string, params: Record<string, string> = {}, cookie?: string): Promise<Reply> {
  const res = await fetch(`${base}/op/${op}?${new URLSearchParams(params)}`, {
    method: 'POST',
    headers: cookie ? { cookie } : {},
    signal: AbortSignal.timeout(5000), // nothing may hang
  });
  const setCookie = res.headers.getSetCookie();
  const line = setCookie.find((l) => !/Max-Age=0/.test(l));
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    headers: res.headers,
    cookie: line?.split(';')[0],
    setCookie,
  };
}

// ---------- the suite ----------

describe.each(adapters)('$name adapter', ({ serve }) => {
  describe.each(stores)('$name store', ({ name: storeName, open }) => {
    const file = join(dir, `${Math.random().toString(36).slice(2)}.db`);
    let real: SessionStore;
    let probe: Instrumented;
    let manager: SessionManager;
    let app: Served;

    beforeAll(async () => {
      real = await open(file);
      probe = instrument(real);
      manager = managerFor(probe.store);
      app = await serve(manager);
    });
    afterEach(() => {
      probe.down = false;
      probe.writeDelayMs = 0;
    });
    afterAll(async () => {
      await app?.close();
      await real?.close();
    });

    /** A browser with a session holding `secret = "keep"`. */
    const login = async () => {
      const r = await call(app.url, 'set', { key: 'secret', value: 'keep' });
      expect(r.status).toBe(200);
      const cookie = r.cookie as string;
      const id = manager.idFromCookie(cookie).id as string;
      expect(id).toMatch(/^[\w-]{20,}$/);
      return { cookie, id };
    };

    it('a write sets a signed __Host- cookie (HttpOnly, Secure, SameSite=Lax) with Cache-Control: no-store', async () => {
      const r = await call(app.url, 'set', { key: 'a', value: '1' });
      expect(r.status).toBe(200);
      expect(r.setCookie).toHaveLength(1);
      expect(r.setCookie[0]).toMatch(/^__Host-shoal=[\w-]+\.[\w-]+; Path=\/; HttpOnly; Secure; SameSite=Lax$/);
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(manager.idFromCookie(r.cookie)).toEqual({ id: expect.any(String), rejected: false });
    });

    it('without secure, the cookie is shoal.sid and not Secure', async () => {
      const plain = managerFor(probe.store, { secure: false });
      const dev = await serve(plain);
      try {
        const r = await call(dev.url, 'set', { key: 'a', value: '1' });
        expect(r.setCookie[0]).toMatch(/^shoal\.sid=[\w-]+\.[\w-]+; Path=\/; HttpOnly; SameSite=Lax$/);
      } finally {
        await dev.close();
      }
    });

    it('records the client (user agent · address) on a new session', async () => {
      const res = await fetch(`${app.url}/op/set?key=a&value=1`, {
        method: 'POST',
        headers: { 'user-agent': 'shoal-test/1.0' },
        signal: AbortSignal.timeout(5000),
      });
      const id = manager.idFromCookie(res.headers.getSetCookie()[0]?.split(';')[0]).id as string;
      expect((await real.load(id, Date.now()))?.meta.client).toMatch(/^shoal-test\/1\.0 · (::ffff:)?127\.0\.0\.1$/);
    });

    it('the next request reads the write and sets no cookie', async () => {
      const { cookie } = await login();
      const r = await call(app.url, 'get', { key: 'secret' }, cookie);
      expect(r.body).toEqual({ value: 'keep' });
      expect(r.setCookie).toEqual([]);
    });

    it('an untouched request makes no store call and sets no cookie, with or without a session', async () => {
      const { cookie } = await login();
      probe.calls.length = 0;
      const withCookie = await call(app.url, 'untouched', {}, cookie);
      const without = await call(app.url, 'untouched');
      const readWithout = await call(app.url, 'get', { key: 'secret' });
      expect([withCookie.status, without.status, readWithout.status]).toEqual([200, 200, 200]);
      expect(probe.calls).toEqual([]);
      expect([...withCookie.setCookie, ...without.setCookie, ...readWithout.setCookie]).toEqual([]);
      expect(withCookie.headers.get('cache-control')).toBeNull();
    });

    it('keeps all of 50 concurrent writes to distinct keys', async () => {
      const { cookie } = await login();
      const writes = await Promise.all(
        Array.from({ length: 50 }, (_, i) => call(app.url, 'set', { key: `k${i}`, value: `v${i}` }, cookie)),
      );
      expect(writes.map((w) => w.status)).toEqual(Array(50).fill(200));
      expect(writes.flatMap((w) => w.setCookie)).toEqual([]);
      const { body } = await call(app.url, 'all', {}, cookie);
      const attributes = body.attributes as Record<string, unknown>;
      expect(Object.keys(attributes).filter((k) => /^k\d+$/.test(k))).toHaveLength(50);
      expect(attributes.k42).toBe('v42');
      expect(attributes.secret).toBe('keep');
    });

    it('counts 50 concurrent increments exactly', async () => {
      const { cookie } = await login();
      const replies = await Promise.all(Array.from({ length: 50 }, () => call(app.url, 'incr', { key: 'n' }, cookie)));
      const seen = replies.map((r) => r.body.value as number).sort((a, b) => a - b);
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect((await call(app.url, 'get', { key: 'n' }, cookie)).body).toEqual({ value: 50 });
    });

    it('saves a nested mutation of an object read with get()', async () => {
      const { cookie } = await login();
      for (const value of ['a', 'b', 'c']) await call(app.url, 'push', { key: 'cart', value }, cookie);
      expect((await call(app.url, 'get', { key: 'cart' }, cookie)).body).toEqual({ value: { items: ['a', 'b', 'c'] } });
    });

    it('finishes the commit before the response reaches the client (read from a second instance)', async () => {
      // The second instance shares the data the way cluster nodes do: its own connection to the
      // same sqlite file; for the memory store (one process only) the same store object.
      const peerStore = storeName === 'sqlite' ? await open(file) : real;
      const peer = await serve(managerFor(peerStore));
      try {
        probe.writeDelayMs = 100;
        const first = await call(app.url, 'set', { key: 'step', value: '0' });
        const cookie = first.cookie as string;
        expect((await call(peer.url, 'get', { key: 'step' }, cookie)).body).toEqual({ value: '0' });
        for (let i = 1; i <= 3; i++) {
          await call(app.url, 'set', { key: 'step', value: String(i) }, cookie);
          expect((await call(peer.url, 'get', { key: 'step' }, cookie)).body).toEqual({ value: String(i) });
        }
      } finally {
        await peer.close();
        if (peerStore !== real) await peerStore.close();
      }
    });

    it('destroy clears the cookie and the old cookie is refused from then on', async () => {
      const { cookie, id } = await login();
      const r = await call(app.url, 'destroy', {}, cookie);
      expect(r.setCookie).toHaveLength(1);
      expect(r.setCookie[0]).toMatch(/^__Host-shoal=; Path=\/; Max-Age=0; HttpOnly; Secure; SameSite=Lax; Expires=/);
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(await real.load(id, Date.now())).toBeNull();

      const replay = await call(app.url, 'all', {}, cookie);
      expect(replay.body).toEqual({ id: null, attributes: {} });
      expect(replay.setCookie[0]).toMatch(/Max-Age=0/);
      const write = await call(app.url, 'set', { key: 'x', value: '1' }, cookie);
      expect(manager.idFromCookie(write.cookie).id).not.toBe(id);
      expect(await real.load(id, Date.now())).toBeNull();
    });

    const forgeries: Array<[string, (good: string) => string]> = [
      ['tampered', (good) => `${good.slice(0, -1)}${good.endsWith('A') ? 'B' : 'A'}`],
      ['unsigned', (good) => good.slice(0, good.indexOf('.'))],
      ['duplicated', (good) => `${good}; ${good}`],
      ['oversized', (good) => `${good}${'A'.repeat(4096)}`],
    ];

    it.each(forgeries)('a %s cookie gets a fresh session and the stored one is untouched', async (_, forge) => {
      const { cookie, id } = await login();
      const bad = forge(cookie);
      expect(manager.idFromCookie(bad)).toEqual({ id: null, rejected: true });

      probe.calls.length = 0;
      const read = await call(app.url, 'get', { key: 'secret' }, bad);
      expect(read.body).toEqual({});
      expect(probe.calls).toEqual([]); // a forged id never reaches the store
      expect(read.setCookie[0]).toMatch(/^__Host-shoal=; .*Max-Age=0/);

      const write = await call(app.url, 'set', { key: 'secret', value: 'stolen' }, bad);
      expect(write.status).toBe(200);
      expect(manager.idFromCookie(write.cookie).id).not.toBe(id);
      expect((await real.load(id, Date.now()))?.attributes.secret).toBe('"keep"');
      expect((await call(app.url, 'get', { key: 'secret' }, cookie)).body).toEqual({ value: 'keep' });
    });

    it('answers 503 JSON with Retry-After when a publish in the handler finds the bus unavailable', async () => {
      const { cookie } = await login();
      const r = await call(app.url, 'publish', { key: 'note', value: 'sent' }, cookie);
      expect(r.status).toBe(503);
      expect(r.headers.get('retry-after')).toBe('1');
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(r.body.error).toBe('ERR_SHOAL_BUS_UNAVAILABLE');
      // Sent and not confirmed: the client is told that sending it again may deliver it twice.
      expect(r.body.outcome).toBe('unknown');
      expect(r.body.message).toMatch(/may still be delivered, and sending it again may deliver it twice/);
      expect(r.headers.get('access-control-allow-origin')).toBe('https://app.example');
      expect(r.headers.get('cache-control')).toBe('no-store');
    });

    it('saves nothing of a request that ends in a server error, and sets no cookie for it', async () => {
      const { cookie } = await login();
      const failed = await fetch(`${app.url}/op/fail?key=secret&value=lost`, {
        method: 'POST',
        headers: { cookie },
        signal: AbortSignal.timeout(5000),
      });
      expect(failed.status).toBe(500);
      expect(failed.headers.getSetCookie()).toEqual([]);
      expect((await call(app.url, 'get', { key: 'secret' }, cookie)).body).toEqual({ value: 'keep' });
      probe.calls.length = 0;
      const fresh = await fetch(`${app.url}/op/fail?key=a&value=1`, {
        method: 'POST',
        signal: AbortSignal.timeout(5000),
      });
      expect(fresh.status).toBe(500);
      expect(fresh.headers.getSetCookie()).toEqual([]);
      expect(probe.calls).toEqual([]); // no session was made for it
      // A failed publish is a server error too.
      const published = await call(app.url, 'publish', { key: 'note', value: 'sent' }, cookie);
      expect(published.status).toBe(503);
      expect((await call(app.url, 'get', { key: 'note' }, cookie)).body).toEqual({});
    });

    it('answers 503 JSON when the store is down, whether the handler reads or the commit writes', async () => {
      const { cookie } = await login();
      probe.down = true;
      const cases = [
        await call(app.url, 'get', { key: 'secret' }, cookie), // fails inside the handler
        await call(app.url, 'set', { key: 'secret', value: 'lost' }, cookie), // fails at commit
        await call(app.url, 'set', { key: 'fresh', value: 'lost' }), // fails creating the session
      ];
      for (const r of cases) {
        expect(r.status).toBe(503);
        expect(r.headers.get('content-type')).toMatch(/^application\/json/);
        expect(r.body.error).toBe('ERR_SHOAL_STORE_UNAVAILABLE');
        expect(r.setCookie).toEqual([]);
        expect(r.headers.get('access-control-allow-origin')).toBe('https://app.example');
        expect(r.headers.get('x-request-id')).toBe('req-1');
        expect(r.headers.get('etag')).toBeNull();
        expect(r.headers.get('last-modified')).toBeNull();
        expect(r.headers.get('cache-control')).toBe('no-store');
      }
      probe.down = false;
      expect((await call(app.url, 'get', { key: 'secret' }, cookie)).body).toEqual({ value: 'keep' });
    });
  });
});
