import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuthorizeContext,
  type Bus,
  type Logger,
  SessionManager,
  type SessionOptions,
  type SessionStore,
  silentLogger,
} from 'shoal';
import { memoryBus } from 'shoal/bus/memory';
import { createGateway, type GatewayOptions } from 'shoal/gateway';
import { memoryStore } from 'shoal/stores/memory';
import { sqliteStore } from 'shoal/stores/sqlite';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { connect, type TestClient } from './ws-client.js';

/**
 * What the gateway's hooks (`authorize`, `connectionInfo`) see of a session: its attributes as
 * values, decoded as `session.get()` decodes them (decrypted, validated), never their JSON text.
 * A check like `role === 'admin'` must work, and a deny-list like `role !== 'banned'` must deny.
 * Real gateways on real session stores, through the package's public entry points.
 */
const ORIGIN = 'https://app.example.com';
const SECRET = 'attributes-test-secret-0123456789abcdef';
const PUBLISH_KEY = 'attributes-test-publish-key';
const KEY = randomBytes(32).toString('base64');

const cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const done of cleanup.splice(0).reverse()) await done();
});

/** Warn and error lines a gateway logged, as `msg` plus fields, for asserting what it said. */
function collector(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const keep = (obj: object, msg?: string) => lines.push(`${msg ?? ''} ${JSON.stringify(obj)}`);
  return { logger: { info: () => {}, warn: keep, error: keep }, lines };
}

async function cluster(o: { store: SessionStore; session?: Partial<SessionOptions> }) {
  const options = {
    store: o.store,
    secrets: [SECRET],
    cookie: { secure: false },
    sweep: { enabled: false },
    ...o.session,
  } as SessionOptions;
  const web = new SessionManager(options);
  const gwSessions = new SessionManager(options);
  const bus: Bus = memoryBus({ namespace: `attrs-${randomUUID()}` });
  cleanup.push(async () => {
    await bus.close();
    await Promise.all([web.close(), gwSessions.close()]);
  });
  return {
    web,
    store: o.store,
    async gateway(extra: Partial<Omit<GatewayOptions, 'bus' | 'sessions'>> = {}) {
      const gateway = await createGateway({
        bus,
        sessions: gwSessions,
        origins: [ORIGIN],
        publishKey: PUBLISH_KEY,
        logger: silentLogger,
        metrics: false,
        ...extra,
      });
      await gateway.listen(0, '127.0.0.1');
      cleanup.push(() => gateway.close());
      const port = (gateway.server.address() as { port: number }).port;
      return { url: `ws://127.0.0.1:${port}/ws`, http: `http://127.0.0.1:${port}` };
    },
    /** A session as a web node writes it (set(), commit()), and its signed cookie. */
    async login(user: string, values: Record<string, unknown>): Promise<string> {
      const s = web.open(undefined);
      s.setUser(user);
      for (const [key, value] of Object.entries(values)) s.set(key, value);
      await s.commit();
      return `${web.cookieName}=${web.sign(s.id as string)}`;
    },
    /** A session whose stored attribute texts are exactly `stored` (damaged, or written by other code). */
    async planted(user: string, stored: Record<string, string>): Promise<string> {
      const id = randomBytes(16).toString('base64url'); // the shape of an id shoal makes
      const now = Date.now();
      const meta = {
        createdAt: now,
        lastSeenAt: now,
        idleDeadline: now + 600_000,
        absoluteDeadline: now + 3_600_000,
        userId: user,
        rev: 1,
      };
      expect(await o.store.create({ id, meta, attributes: stored })).toBe(true);
      return `${web.cookieName}=${web.sign(id)}`;
    },
  };
}

async function open(url: string, cookie: string): Promise<TestClient> {
  const c = await connect(url, { cookie, origin: ORIGIN });
  cleanup.push(() => c.ws.terminate());
  return c;
}

/** `subscribed` or the `error` refusing it: what a `sub` to `channel` comes to. */
async function sub(c: TestClient, channel: string): Promise<'subscribed' | string> {
  c.send({ type: 'sub', channel });
  const m = await c.waitFor((m) => (m.type === 'subscribed' || m.type === 'error') && m.channel === channel);
  return m.type === 'subscribed' ? 'subscribed' : `${m.type === 'error' ? m.code : m.type}`;
}

async function presenceInfo(http: string, channel: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${http}/presence`, {
    method: 'POST',
    headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ channel, clients: true }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { clients: { user: string; info: unknown }[] };
  return Object.fromEntries(body.clients.map((c) => [c.user, c.info]));
}

/** Deny-list and allow-list checks an app writes against its session's values. */
const authorize: GatewayOptions['authorize'] = (s, channel) => {
  if (channel === 'room:staff') return s.attributes.role === 'admin';
  if (channel === 'room:open') return s.attributes.role !== 'banned';
  if (channel === 'room:en') return (s.attributes.prefs as { lang?: string } | undefined)?.lang === 'en';
  if (channel === 'room:veterans') return typeof s.attributes.visits === 'number' && s.attributes.visits > 10;
  return channel === 'room:free';
};

const stores: Array<[string, () => Promise<{ store: SessionStore; done: () => void }>]> = [
  ['memory', async () => ({ store: memoryStore(), done: () => {} })],
  [
    'sqlite',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'shoal-attrs-'));
      const store = await sqliteStore({ path: join(dir, 'sessions.db') });
      return { store, done: () => rmSync(dir, { recursive: true }) };
    },
  ],
];

describe.each(stores)('gateway hooks on the %s store', (_name, make) => {
  async function setup(session?: Partial<SessionOptions>) {
    const { store, done } = await make();
    cleanup.push(done, () => store.close());
    return cluster({ store, ...(session ? { session } : {}) });
  }

  it('authorize sees the values session.get() returns: allow-lists admit, deny-lists deny', async () => {
    const rt = await setup();
    const gw = await rt.gateway({ authorize });
    const ann = await open(gw.url, await rt.login('ann', { role: 'admin', prefs: { lang: 'en' }, visits: 12 }));
    const bob = await open(gw.url, await rt.login('bob', { role: 'banned', prefs: { lang: 'de' }, visits: 3 }));

    expect(await sub(ann, 'room:staff')).toBe('subscribed');
    expect(await sub(ann, 'room:open')).toBe('subscribed');
    expect(await sub(ann, 'room:en')).toBe('subscribed');
    expect(await sub(ann, 'room:veterans')).toBe('subscribed');
    // The banned session is kept out of the deny-listed room, and out of the others.
    expect(await sub(bob, 'room:open')).toBe('forbidden');
    expect(await sub(bob, 'room:staff')).toBe('forbidden');
    expect(await sub(bob, 'room:en')).toBe('forbidden');
    expect(await sub(bob, 'room:veterans')).toBe('forbidden');
  });

  it('connectionInfo (who) => ({ name: who.attributes.name }) shows the name in presence, not its JSON', async () => {
    const rt = await setup();
    let seen: string[] = [];
    const gw = await rt.gateway({
      authorize: () => true,
      connectionInfo: (who) => {
        seen = Object.keys(who).sort();
        return { name: who.attributes.name };
      },
    });
    const ann = await open(gw.url, await rt.login('ann', { name: 'ann' }));
    expect(await sub(ann, 'room:lobby')).toBe('subscribed');
    expect(await presenceInfo(gw.http, 'room:lobby')).toEqual({ ann: { name: 'ann' } });
    // The hook gets what authorize gets (AuthorizeContext), not the gateway's own record of the connection.
    expect(seen).toEqual(['attributes', 'sessionId', 'source', 'userId']);
  });

  it('hands over a read-only object that lists, spreads and serialises like the values', async () => {
    const rt = await setup();
    let seen: Record<string, unknown> = {};
    const gw = await rt.gateway({
      authorize: (s) => {
        const attributes = s.attributes as Record<string, unknown>;
        let writable = true;
        try {
          attributes.role = 'admin';
        } catch {
          writable = false;
        }
        seen = {
          keys: Object.keys(attributes).sort(),
          spread: { ...attributes },
          json: JSON.parse(JSON.stringify(attributes)),
          has: 'cart' in attributes,
          inherited: [attributes.constructor, attributes.toString],
          writable,
          role: attributes.role,
        };
        return true;
      },
    });
    const c = await open(gw.url, await rt.login('ann', { role: 'user', cart: ['tea'] }));
    expect(await sub(c, 'room:any')).toBe('subscribed');
    expect(seen).toEqual({
      keys: ['cart', 'role'],
      spread: { role: 'user', cart: ['tea'] },
      json: { role: 'user', cart: ['tea'] },
      has: true,
      inherited: [undefined, undefined],
      writable: false,
      role: 'user',
    });
  });

  it('decrypts values when encryption is on, for both hooks', async () => {
    const rt = await setup({ encryption: { keys: [KEY] } });
    const gw = await rt.gateway({ authorize, connectionInfo: (who) => ({ name: who.attributes.name }) });
    const cookie = await rt.login('ann', { role: 'admin', name: 'Ann' });
    const ann = await open(gw.url, cookie);
    expect(await sub(ann, 'room:staff')).toBe('subscribed');
    expect(await presenceInfo(gw.http, 'room:staff')).toEqual({ ann: { name: 'Ann' } });
  });
});

describe('gateway hooks and values that do not decode', () => {
  async function setup(session?: Partial<SessionOptions>) {
    const store = memoryStore();
    cleanup.push(() => store.close());
    return cluster({ store, ...(session ? { session } : {}) });
  }

  it("applies the session manager's validate, as get() does", async () => {
    const rt = await setup({ validate: { visits: (v) => Number(v) } });
    const gw = await rt.gateway({ authorize });
    // Written by other code as a JSON string; the app's validator turns it into the number it expects.
    const c = await open(gw.url, await rt.planted('vic', { visits: '"42"' }));
    expect(await sub(c, 'room:veterans')).toBe('subscribed');
  });

  it('a value that is not JSON or fails validate denies, logs why, and leaves the connection working', async () => {
    const log = collector();
    const rt = await setup({
      validate: {
        role: (v) => {
          if (v !== 'admin' && v !== 'user' && v !== 'banned') throw new Error(`unknown role ${String(v)}`);
          return v;
        },
      },
    });
    const gw = await rt.gateway({ authorize, logger: log.logger });
    const damaged = await open(gw.url, await rt.planted('dan', { role: '{"oops', prefs: '{"lang":"en"}' }));
    // Fails closed: even the deny-list check cannot let a session in on a value it cannot read.
    expect(await sub(damaged, 'room:open')).toBe('forbidden');
    // Other attributes read as before: a damaged one only matters to a hook that reads it.
    expect(await sub(damaged, 'room:en')).toBe('subscribed');
    const invalid = await open(gw.url, await rt.planted('ivy', { role: '"root"' }));
    expect(await sub(invalid, 'room:staff')).toBe('forbidden');
    expect(await sub(invalid, 'room:free')).toBe('subscribed');
    expect(log.lines.join('\n')).toMatch(/session attribute "role" holds text that is not JSON/);
    expect(log.lines.join('\n')).toMatch(/session attribute "role" failed validation: unknown role root/);
    expect(log.lines.join('\n')).not.toMatch(/client message failed/);
  });

  it('connectionInfo reading a value that does not decode opens the connection without info and logs why', async () => {
    const log = collector();
    const rt = await setup({ encryption: { keys: [KEY] } });
    const gw = await rt.gateway({
      authorize: () => true,
      connectionInfo: (who) => ({ name: who.attributes.name }),
      logger: log.logger,
    });
    // Plaintext where ciphertext belongs: refused by the cipher (allowPlaintext is off).
    const c = await open(gw.url, await rt.planted('pat', { name: '"pat"' }));
    expect(await sub(c, 'room:lobby')).toBe('subscribed');
    expect(await presenceInfo(gw.http, 'room:lobby')).toEqual({ pat: null });
    expect(log.lines.join('\n')).toMatch(/connectionInfo threw: .*session attribute "name"/);
  });

  it('a damaged value no hook reads costs nothing: the handshake and other checks go on', async () => {
    const rt = await setup({ encryption: { keys: [KEY] } });
    const gw = await rt.gateway({ authorize: (s, channel) => channel === 'room:free' && s.userId === 'ned' });
    const c = await open(gw.url, await rt.planted('ned', { junk: 'not json, not ciphertext' }));
    expect(await sub(c, 'room:free')).toBe('subscribed');
  });
});

describe('AuthorizeContext types', () => {
  it("types attributes by the app's session schema, each one possibly absent", () => {
    type Ctx = AuthorizeContext<{ role: 'admin' | 'user'; visits: number }>;
    expectTypeOf<Ctx['attributes']['role']>().toEqualTypeOf<'admin' | 'user' | undefined>();
    expectTypeOf<Ctx['attributes']['visits']>().toEqualTypeOf<number | undefined>();
    // Without a schema (SessionData not declared by the app): unknown values, never strings of JSON.
    expectTypeOf<AuthorizeContext['attributes'][string]>().toEqualTypeOf<unknown>();
  });
});
