/**
 * What the package says when plain JavaScript passes what TypeScript would refuse: a ConfigError
 * naming what to pass, not a TypeError from deep inside.
 */
import {
  ConfigError,
  createBus,
  createPublisher,
  createStore,
  createWebNode,
  defineApp,
  defineClientScope,
  defineSession,
} from 'shoal';
import { session as expressSession } from 'shoal/express-session';
import { createGateway } from 'shoal/gateway';
import { describe, expect, it } from 'vitest';

/** Calls `f` with arguments past the types. */
const loosely = <A extends unknown[], R>(f: (...args: A) => R, ...args: unknown[]): R => f(...(args as A));

const SECRET = 'x'.repeat(40);
const memory = () => createStore('memory:');

describe('defineSession from plain JavaScript', () => {
  it('says to pass a store when there is none', () => {
    const attempt = () => loosely(defineSession, { secrets: [SECRET] });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      "defineSession() needs `store`, a session store: store: await createStore('redis://127.0.0.1:6379')",
    );
    expect(attempt).toThrow(/; no store was given$/);
  });

  it('says what a store is when given something else', () => {
    expect(() => loosely(defineSession, { store: 'redis://127.0.0.1:6379', secrets: [SECRET] })).toThrow(
      /needs `store`, a session store: .*; got a string$/,
    );
    expect(() => loosely(defineSession)).toThrow('defineSession() takes an options object');
  });

  it('says to wrap a single secret in an array instead of reading it character by character', async () => {
    const store = await memory();
    const attempt = () => loosely(defineSession, { store, secrets: SECRET, sweep: { enabled: false } });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      'session secrets must be an array of strings, newest first, e.g. secrets: [process.env.SESSION_SECRET]; got one string: wrap it in [ ]',
    );
    expect(() => loosely(defineSession, { store, secrets: [SECRET, 42] })).toThrow(/got an array holding a number$/);
    await store.close();
  });

  it('says which option has the wrong shape: validate, cookie, hooks, sameSite, updateRetries', async () => {
    const store = await memory();
    const base = { store, secrets: [SECRET], sweep: { enabled: false } };
    for (const [extra, message] of [
      [{ validate: 'x' }, 'defineSession(): validate is a string; pass an object'],
      [{ validate: { cart: 'array' } }, 'defineSession(): validate.cart is a string; pass a function'],
      [{ cookie: 'shoal' }, 'defineSession(): cookie is a string; pass an object'],
      [{ onSessionEnd: 'log' }, 'defineSession(): onSessionEnd is a string; pass a function'],
      [
        { cookie: { sameSite: 'relaxed' } },
        `defineSession(): cookie.sameSite is "relaxed"; use 'Lax', 'Strict' or 'None'`,
      ],
      [{ updateRetries: -1 }, 'defineSession(): updateRetries is a number; use a whole number'],
    ] as const) {
      const attempt = () => loosely(defineSession, { ...base, ...extra });
      expect(attempt, JSON.stringify(extra)).toThrow(ConfigError);
      expect(attempt, JSON.stringify(extra)).toThrow(message);
    }
    // SameSite in another case is what browsers read anyway: taken, and written as the attribute is named.
    const lax = defineSession({ ...base, cookie: { sameSite: 'lax' as 'Lax', secure: false } });
    const s = lax.open(undefined);
    s.set('n' as never, 1 as never);
    await s.commit();
    expect(lax.setCookieHeader(s)).toMatch(/; SameSite=Lax/);
    await lax.close();
    await store.close();
  });

  it('says the same for the client scope', async () => {
    const store = await memory();
    expect(() => loosely(defineClientScope, { store, secrets: SECRET })).toThrow(/wrap it in \[ \]/);
    expect(() => loosely(defineClientScope, { secrets: [SECRET] })).toThrow(/^defineClientScope\(\) needs `store`/);
    expect(() => loosely(defineClientScope)).toThrow(/^defineClientScope\(\) needs `store`/);
    await store.close();
  });

  it('still takes a secret as one string in the express-session drop-in, as express-session does', () => {
    expect(() => expressSession({ secret: SECRET, store: 'memory:' })).not.toThrow();
    expect(() => loosely(expressSession, { secret: SECRET, store: 42 })).toThrow(
      'shoal/express-session: "store" is a number; pass a store URL (e.g. "redis://127.0.0.1:6379"), a shoal store, or leave it out for memory',
    );
  });
});

describe('createStore and createBus from plain JavaScript', () => {
  it.each([
    [null, 'null'],
    [42, 'a number'],
    [{ url: 'redis://127.0.0.1:6379' }, 'an object'],
  ])('createStore(%j) says to pass a URL string', async (url, got) => {
    const attempt = loosely(createStore, url);
    await expect(attempt).rejects.toThrow(ConfigError);
    await expect(loosely(createStore, url)).rejects.toThrow(
      `createStore() takes a store URL string, e.g. createStore('redis://127.0.0.1:6379'), or none for sqlite:.shoal/shoal.db; got ${got}`,
    );
  });

  it.each([
    [null, 'null'],
    [42, 'a number'],
  ])('createBus(%j) says to pass a URL string', async (url, got) => {
    await expect(loosely(createBus, url)).rejects.toThrow(ConfigError);
    await expect(loosely(createBus, url)).rejects.toThrow(
      `createBus() takes a bus URL string, e.g. createBus('redis://127.0.0.1:6379'), or none for sqlite:.shoal/shoal.db; got ${got}`,
    );
  });
});

describe('app definitions from plain JavaScript', () => {
  it('defineApp says to write web(ctx) when it is missing', () => {
    const attempt = () => loosely(defineApp, {});
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(
      "defineApp() needs an app with web(ctx), which builds the request handler: defineApp({ web(ctx) { … return handler } }) from 'shoal' (docs/getting-started.md#the-app-module), or defineApp({ realtime: { … } }) for one that runs on gateways only; its web is missing",
    );
    expect(() => loosely(defineApp, { web: 'handler.js' })).toThrow(/; its web is a string$/);
    expect(() => loosely(defineApp)).toThrow(/; got nothing$/);
  });

  it('createWebNode says the same of a definition made without defineApp, before opening anything', async () => {
    const config = { nodeId: 'n1', env: {}, store: 'memory:', bus: 'memory:' };
    await expect(loosely(createWebNode, {}, config)).rejects.toThrow(ConfigError);
    await expect(loosely(createWebNode, { session: {} }, config)).rejects.toThrow(
      /^createWebNode\(\) needs an app with web\(ctx\).*; its web is missing$/,
    );
    await expect(loosely(createWebNode, defineApp({ web: () => () => {} }))).rejects.toThrow(
      "createWebNode() needs the node's settings as its second argument, e.g. nodeConfigFromEnv(process.env, 'web') from 'shoal'",
    );
  });
});

describe('allowed origins from plain JavaScript', () => {
  it('says to pass a list when one origin is given as a string', async () => {
    const store = await memory();
    const bus = await createBus('memory:');
    const sessions = defineSession({ store, secrets: [SECRET], sweep: { enabled: false } });
    try {
      const attempt = loosely(createGateway, { bus, sessions, origins: 'http://127.0.0.1:24850' });
      await expect(attempt).rejects.toThrow(ConfigError);
      await expect(attempt).rejects.toThrow(
        "origins must be a list of origins, not a string; pass ['http://127.0.0.1:24850']",
      );
      await expect(loosely(createGateway, { bus, sessions, origins: ['https://a.example', 42] })).rejects.toThrow(
        "origins holds a number, not an origin; list origins as strings, e.g. ['https://app.example.com']",
      );
    } finally {
      await sessions.close();
      await bus.close();
    }
  });
});

describe('realtime publishing from plain JavaScript', () => {
  it('says what createPublisher, to() and send() take', async () => {
    expect(() => loosely(createPublisher, null)).toThrow(ConfigError);
    expect(() => loosely(createPublisher, 'redis://127.0.0.1:6379')).toThrow(
      "createPublisher(bus) takes a message bus: createPublisher(await createBus('redis://127.0.0.1:6379')); got a string",
    );
    const bus = await createBus('memory:');
    try {
      const realtime = createPublisher(bus);
      const to = (target: unknown) => () => realtime.to(target as string);
      const rule =
        "realtime.to(target) takes a channel name ('orders'), { user: String(user.id) } or { session: sessionId }; ";
      expect(to(42)).toThrow(`${rule}got a number`);
      expect(to(undefined)).toThrow(`${rule}got nothing`);
      expect(to({})).toThrow(`${rule}got an object`);
      expect(to({ user: 42 })).toThrow(`${rule}its user is a number`);
      expect(to({ user: 42 })).toThrow(ConfigError);
      const send =
        (...args: unknown[]) =>
        () =>
          loosely(realtime.to('orders').send, ...args);
      expect(send()).toThrow(
        "realtime.to(…).send(event, data) takes the event's name as a string, e.g. send('order.shipped', { id }); got nothing",
      );
      expect(send(42, {})).toThrow(ConfigError);
    } finally {
      await bus.close();
    }
  });

  it('says session.lock() needs the function to run', async () => {
    const store = await memory();
    const sessions = defineSession({ store, secrets: [SECRET], sweep: { enabled: false } });
    try {
      const s = sessions.open(undefined);
      await expect(loosely(s.lock.bind(s), 'x')).rejects.toThrow(
        "session.lock(name, fn) runs fn while holding the lock: session.lock('x', async () => { … }); got nothing for fn",
      );
      expect(s.id).toBeNull();
    } finally {
      await sessions.close();
    }
  });
});
