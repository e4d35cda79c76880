import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RedisStore } from 'connect-redis';
import express, { type Request } from 'express';
import expressSession from 'express-session';
import { Redis } from 'ioredis';
import passportModule from 'passport';
import { createClient } from 'redis';
import { createStore } from 'shoal';
import { session } from 'shoal/express-session';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { listen, type Served } from '../helpers/listen.js';
import { deleteKeys, scanKeys } from '../helpers/redis-keys.js';

/**
 * A browser's first requests after the switch from express-session + connect-redis go out
 * together (up to 6 per host), each to another node. Every one of them carries the old cookie,
 * and every one must land in the same moved session: one id, the user logged in, and every
 * property a request wrote kept.
 */
const skip = await engineSkipReason('redis');
const SECRET = 'migrate-burst-secret-0123456789abcdefghijklmn';
const run = `migrate-burst-${randomUUID().slice(0, 8)}`;
const dir = mkdtempSync(join(tmpdir(), 'shoal-migrate-burst-'));
const BURST = 6;

type Loose = Record<string, unknown>;
type User = { id: string; name: string };
const sess = (req: Request) => (req as unknown as { session: Loose }).session;

const servers: Served[] = [];
const closers: Array<() => Promise<unknown>> = [];
let legacy: RedisStore;
let before: Served;

beforeAll(async () => {
  if (skip) return;
  const client = createClient({ url: ENGINE_URLS.redis });
  await client.connect();
  closers.push(() => client.close());
  legacy = new RedisStore({ client, prefix: `${run}:sess:` });
  // The app as it ran before: express-session over connect-redis, passport's session format.
  const app = express();
  app.use(expressSession({ secret: SECRET, store: legacy, resave: false, saveUninitialized: false }));
  app.post('/login/:user', (req, res) => {
    const s = sess(req);
    s.passport = { user: `u-${req.params.user}` };
    s.csrfSecret = `csrf-${req.params.user}`;
    s.cart = ['tea'];
    res.json({ ok: true });
  });
  before = await listen(createServer(app));
  servers.push(before);
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  for (const close of closers) await close();
  rmSync(dir, { recursive: true, force: true });
  if (skip) return;
  const redis = new Redis(ENGINE_URLS.redis);
  for (const pattern of [`shoal:{${run}*`, `shoal:${run}*`, `${run}:*`]) await deleteKeys(redis, pattern);
  redis.disconnect();
});

/** A login on the old app; the browser's cookie as express-session signed it. */
async function legacyLogin(user: string): Promise<string> {
  const res = await fetch(`${before.url}/login/${user}`, { method: 'POST' });
  await res.text(); // express-session saves after the headers: wait for the body
  const pair = res.headers.getSetCookie()[0]?.split(';')[0] ?? '';
  expect(pair).toMatch(/^connect\.sid=s%3A/);
  return pair;
}

/** One node of the new deploy: the drop-in on its own connection to the shared store, passport unchanged. */
async function node(url: string, namespace: string, options: { resave: boolean; saveUninitialized: boolean }) {
  const passport = new passportModule.Passport();
  passport.serializeUser((user, done) => done(null, (user as User).id));
  passport.deserializeUser((id: string, done) => done(null, { id, name: id.slice(2) }));
  const middleware = session({
    secret: SECRET,
    store: await createStore(url, { namespace }),
    ...options,
    migrateFrom: legacy,
  });
  closers.push(() => middleware.close());
  const app = express();
  app.use(middleware);
  app.use(passport.session());
  const me = (req: Request) => (req.user as User | undefined)?.name ?? null;
  app.get('/me', (req, res) => {
    res.json({ user: me(req) });
  });
  app.post('/write/:key', (req, res) => {
    // As csurf would: a write is refused outside the session that holds the secret.
    const s = sess(req);
    if (s.csrfSecret !== `csrf-${me(req)}`) {
      res.status(403).json({ user: me(req) });
      return;
    }
    s[`w-${req.params.key}`] = req.params.key;
    res.json({ user: me(req) });
  });
  app.get('/session', (req, res) => {
    res.json(Object.fromEntries(Object.entries(sess(req)).filter(([k]) => k !== 'cookie')));
  });
  const served = await listen(createServer(app));
  servers.push(served);
  return served;
}

const stores = [
  { name: 'sqlite (one file)', url: `sqlite:${join(dir, 'burst.db')}`, skip: undefined },
  { name: 'redis', url: ENGINE_URLS.redis, skip: undefined },
  { name: 'postgres', url: ENGINE_URLS.postgres, skip: await engineSkipReason('postgres') },
  { name: 'memcached', url: ENGINE_URLS.memcached, skip: await engineSkipReason('memcached') },
];
const optionSets = [
  { resave: false, saveUninitialized: false },
  { resave: true, saveUninitialized: true }, // express-session's defaults
];

describe.skipIf(skip !== undefined)('migrateFrom: a browser whose first requests go out together', () => {
  for (const store of stores) {
    for (const options of optionSets) {
      it.skipIf(store.skip !== undefined)(
        `lands every request in one moved session (${store.name}, resave ${options.resave}, saveUninitialized ${options.saveUninitialized})`,
        async () => {
          const namespace = `${run}-${store.name.split(' ')[0]}-${options.resave}`;
          const nodes: Served[] = [];
          for (let i = 0; i < 3; i++) nodes.push(await node(store.url, namespace, options));

          for (const user of ['ann', 'bob', 'cy']) {
            const cookie = await legacyLogin(user);
            const writes: string[] = [];
            const requests = Array.from({ length: BURST }, (_, i) => {
              const base = nodes[i % nodes.length]?.url;
              if (i % 2 === 0) return fetch(`${base}/me`, { headers: { cookie } });
              writes.push(`w-${i}`);
              return fetch(`${base}/write/${i}`, { method: 'POST', headers: { cookie } });
            });
            const answers = await Promise.all(requests);
            const bodies = await Promise.all(answers.map((r) => r.json()));
            expect(answers.map((r) => r.status)).toEqual(Array(BURST).fill(200));
            expect(bodies).toEqual(Array(BURST).fill({ user }));
            const cookies = answers.map((r) => r.headers.getSetCookie().map((line) => line.split(';')[0]));
            const first = cookies[0]?.[0];
            expect(first).toMatch(/^connect\.sid=/);
            expect(first).not.toBe(cookie);
            expect(cookies).toEqual(Array(BURST).fill([first]));

            // A request the browser sent with the old cookie that arrives after the others were answered.
            const late = await fetch(`${nodes[2]?.url}/write/late`, { method: 'POST', headers: { cookie } });
            expect(await late.json()).toEqual({ user });
            expect(late.headers.getSetCookie().map((line) => line.split(';')[0])).toEqual([first]);
            writes.push('w-late');

            const kept = await (
              await fetch(`${nodes[0]?.url}/session`, { headers: { cookie: first as string } })
            ).json();
            expect(kept).toEqual({
              passport: { user: `u-${user}` },
              csrfSecret: `csrf-${user}`,
              cart: ['tea'],
              ...Object.fromEntries(writes.map((w) => [w, w.slice(2)])),
            });
          }
          // Every old entry was removed once its session had moved.
          const redis = new Redis(ENGINE_URLS.redis);
          expect(await scanKeys(redis, `${run}:sess:*`)).toEqual([]);
          redis.disconnect();
        },
        20_000,
      );
    }
  }
});
