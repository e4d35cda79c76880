import { setTimeout as sleep } from 'node:timers/promises';
import expressSession from 'express-session';
import { memoryStore } from 'shoal/stores/memory';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type App,
  type CommonOptions,
  type Impl,
  OLD_SECRET,
  SECRET,
  type Shared,
  startApp,
} from './express-session-apps.js';

/**
 * express-session is the reference: every case runs against express-session (MemoryStore) and
 * against shoal's drop-in, and what a client can observe (status, body, whether a Set-Cookie
 * came and its attributes) must be the same. Where shoal is deliberately different, the case
 * says so and docs/adapters.md lists it.
 */
const started: App[] = [];
afterAll(async () => {
  await Promise.all(started.map((a) => a.close()));
});

function shared(): Shared {
  return { reference: new expressSession.MemoryStore(), shoal: memoryStore() };
}

/** A browser: keeps the cookies it is given, forgets those that are cleared. */
class Browser {
  cookies = new Map<string, string>();
  constructor(readonly app: App) {}

  async send(method: string, path: string, extraCookie?: string): Promise<Observation> {
    const cookie = [...[...this.cookies].map(([k, v]) => `${k}=${v}`), ...(extraCookie ? [extraCookie] : [])].join(
      '; ',
    );
    const res = await fetch(`${this.app.url}${path}`, { method, headers: cookie ? { cookie } : {} });
    const lines = res.headers.getSetCookie();
    for (const line of lines) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {}
    return { status: res.status, setCookie: lines.length ? attributes(lines[0] as string) : null, body };
  }

  /** The session cookie's value as it stands (for replaying an old one). */
  get raw(): string {
    return this.cookies.get('connect.sid') ?? '';
  }
}

interface Observation {
  status: number;
  /** Attributes of the Set-Cookie (the value itself differs by design: each signs its own way). */
  setCookie: string[] | null;
  body: unknown;
}

/** "Expires" is kept as how far ahead it points, to the nearest 10 s. */
function attributes(line: string): string[] {
  const [pair = '', ...attrs] = line.split(';').map((s) => s.trim());
  const name = pair.slice(0, pair.indexOf('='));
  return [
    `name=${name}`,
    ...attrs.map((a) => {
      if (!/^expires=/i.test(a)) return a;
      const ahead = new Date(a.slice(8)).valueOf() - Date.now();
      return `Expires in ~${Math.round(ahead / 10_000) * 10}s`;
    }),
  ].sort();
}

type Case = (open: () => Browser, apps: App[]) => Promise<unknown>;

/** Runs a case on both implementations (fresh apps each) and returns what each observed. */
async function both(options: CommonOptions, run: Case, appsPerImpl = 1): Promise<Record<Impl, unknown>> {
  const out = {} as Record<Impl, unknown>;
  for (const impl of ['express-session', 'shoal'] as Impl[]) {
    const store = shared();
    const apps: App[] = [];
    for (let i = 0; i < appsPerImpl; i++) apps.push(await startApp(impl, options, store));
    started.push(...apps);
    out[impl] = await run(() => new Browser(apps[0] as App), apps);
  }
  return out;
}

const base: CommonOptions = { resave: false, saveUninitialized: false };

describe('express-session as the reference: the drop-in observes the same', () => {
  it('saveUninitialized: false sends no cookie for an untouched session; true does', async () => {
    for (const saveUninitialized of [false, true]) {
      const r = await both({ ...base, saveUninitialized }, async (open) => {
        const b = open();
        return [await b.send('GET', '/untouched'), await b.send('GET', '/untouched')];
      });
      expect(r.shoal).toEqual(r['express-session']);
      const [first] = r['express-session'] as Observation[];
      expect(first?.setCookie !== null).toBe(saveUninitialized);
    }
  });

  it('a write sets the cookie once; later reads see it; an unmodified session sends no cookie', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      return [
        await b.send('POST', '/views'),
        await b.send('POST', '/views'),
        await b.send('GET', '/read'),
        await b.send('POST', '/cart?item=apple'),
        await b.send('POST', '/cart?item=pear'),
        await b.send('POST', '/delete?key=views'),
        await b.send('GET', '/read'),
      ];
    });
    expect(r.shoal).toEqual(r['express-session']);
    const obs = r['express-session'] as Observation[];
    expect(obs[0]?.setCookie).not.toBeNull();
    expect(obs[1]?.setCookie).toBeNull();
    expect(obs[6]?.body).toEqual({ data: { cart: { items: ['apple', 'pear'] } }, hasId: true });
  });

  it('rolling sends the cookie on every response of an existing session', async () => {
    const r = await both({ ...base, rolling: true, cookie: { maxAge: 60_000 } }, async (open) => {
      const b = open();
      return [await b.send('POST', '/views'), await b.send('GET', '/read'), await b.send('GET', '/untouched')];
    });
    expect(r.shoal).toEqual(r['express-session']);
    expect((r['express-session'] as Observation[]).every((o) => o.setCookie !== null)).toBe(true);
  });

  it('cookie.maxAge: Expires on the cookie, re-sent when modified only, and the session ends after it', async () => {
    const r = await both({ ...base, cookie: { maxAge: 600 } }, async (open) => {
      const b = open();
      const out = [await b.send('POST', '/views'), await b.send('GET', '/read'), await b.send('POST', '/views')];
      await sleep(900);
      out.push(await b.send('GET', '/read'));
      return out;
    });
    expect(r.shoal).toEqual(r['express-session']);
    const obs = r['express-session'] as Observation[];
    expect(obs[0]?.setCookie).toContain('Expires in ~0s');
    expect(obs[1]?.setCookie).toBeNull();
    expect(obs[2]?.setCookie).not.toBeNull();
    expect(obs[3]?.body).toEqual({ data: {}, hasId: true });
  });

  it('cookie attributes: httpOnly, sameSite, domain, path; a Secure cookie is not sent over plain HTTP', async () => {
    const attrs = { maxAge: 60_000, httpOnly: false, sameSite: 'strict', domain: '127.0.0.1', path: '/' } as const;
    const r = await both({ ...base, cookie: attrs }, async (open) => [await open().send('POST', '/views')]);
    expect(r.shoal).toEqual(r['express-session']);
    expect((r['express-session'] as Observation[])[0]?.setCookie).toContain('SameSite=Strict');
    const secure = await both({ ...base, cookie: { secure: true } }, async (open) => [
      await open().send('POST', '/views'),
    ]);
    expect(secure.shoal).toEqual(secure['express-session']);
    expect((secure['express-session'] as Observation[])[0]?.setCookie).toBeNull();
  });

  it('a per-session cookie.maxAge ("remember me") changes the cookie once the session is saved', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      return [
        await b.send('POST', '/views'),
        await b.send('POST', '/remember?ms=3600000'),
        await b.send('GET', '/cookie'),
      ];
    });
    expect(r.shoal).toEqual(r['express-session']);
    expect((r['express-session'] as Observation[])[1]?.setCookie).toContain('Expires in ~3600s');
  });

  it('a cookie change alone ("remember me", no property written) is kept, with every resave/saveUninitialized/rolling', async () => {
    const long = 'Expires in ~2592000s';
    for (const resave of [false, true]) {
      for (const saveUninitialized of [false, true]) {
        for (const rolling of [false, true]) {
          const options = { resave, saveUninitialized, rolling, cookie: { maxAge: 3_600_000 } };
          const r = await both(options, async (open) => {
            const known = open();
            const fresh = open();
            return [
              await known.send('POST', '/views'),
              await known.send('POST', '/remember-only?ms=2592000000'),
              await known.send('GET', '/cookie'),
              await known.send('GET', '/untouched'),
              await known.send('POST', '/views'),
              // The same on a session's very first request.
              await fresh.send('POST', '/remember-only?ms=2592000000'),
              await fresh.send('GET', '/cookie'),
              await fresh.send('POST', '/views'),
            ];
          });
          const label = JSON.stringify({ resave, saveUninitialized, rolling });
          expect({ label, observed: r.shoal }).toEqual({ label, observed: r['express-session'] });
          const obs = r['express-session'] as Observation[];
          expect(obs[2]?.body, label).toMatchObject({ minutes: 43_200, originalMaxAge: 2_592_000 });
          expect(obs[4]?.setCookie, label).toContain(long);
          if (rolling)
            expect(
              [obs[1], obs[3]].map((o) => o?.setCookie?.includes(long)),
              label,
            ).toEqual([true, true]);
        }
      }
    }
  });

  it('cookie attributes changed alone are kept, and reach another server on the same store', async () => {
    const options = { ...base, rolling: true, cookie: { maxAge: 60_000 } };
    const r = await both(
      options,
      async (open, apps) => {
        const b = open();
        await b.send('POST', '/views');
        const out = [await b.send('POST', '/cookie-set?httpOnly=false&sameSite=strict&domain=127.0.0.1')];
        const other = new Browser(apps[1] as App);
        other.cookies = new Map(b.cookies);
        out.push(await other.send('GET', '/cookie'), await other.send('POST', '/remember-only?ms=7200000'));
        out.push(await b.send('GET', '/untouched'), await b.send('POST', '/cookie-set?secure=true'));
        out.push(await other.send('GET', '/cookie'), await b.send('GET', '/untouched'));
        return out;
      },
      2,
    );
    expect(r.shoal).toEqual(r['express-session']);
    const obs = r['express-session'] as Observation[];
    expect(obs[1]?.body).toMatchObject({ httpOnly: false, sameSite: 'strict', domain: '127.0.0.1' });
    expect(obs[3]?.setCookie).toEqual([
      'Domain=127.0.0.1',
      'Expires in ~7200s',
      'Path=/',
      'SameSite=Strict',
      'name=connect.sid',
    ]);
    // A Secure cookie is not sent over plain HTTP: not on the response that set it, nor later.
    expect(obs[5]?.body).toMatchObject({ secure: true });
    expect([obs[4]?.setCookie, obs[6]?.setCookie]).toEqual([null, null]);
  });

  it('regenerate: a new id, no data, a new cookie; the old cookie no longer reaches the data', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      await b.send('POST', '/set?key=secret&value=s1');
      const old = b.raw;
      const out = [await b.send('POST', '/regenerate'), await b.send('GET', '/read')];
      const thief = open();
      thief.cookies.set('connect.sid', old);
      out.push(await thief.send('GET', '/read'));
      return out;
    });
    expect(r.shoal).toEqual(r['express-session']);
    const obs = r['express-session'] as Observation[];
    expect(obs[0]?.body).toEqual({ changed: true, data: {} });
    expect(obs[0]?.setCookie).not.toBeNull();
    expect(obs[2]?.body).toEqual({ data: {}, hasId: true });
  });

  it('destroy: req.session is gone, no cookie is sent, the old cookie reaches nothing', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      await b.send('POST', '/set?key=x&value=1');
      return [await b.send('POST', '/destroy'), await b.send('GET', '/read')];
    });
    expect(r.shoal).toEqual(r['express-session']);
    const obs = r['express-session'] as Observation[];
    expect(obs[0]).toMatchObject({ setCookie: null, body: { session: true } });
    expect(obs[1]?.body).toEqual({ data: {}, hasId: true });
  });

  it('reload picks up what another request saved meanwhile', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      await b.send('POST', '/set?key=x&value=1');
      const slow = b.send('GET', '/reload?ms=300');
      await sleep(50);
      await b.send('POST', '/set?key=x&value=2');
      return [await slow];
    });
    expect(r.shoal).toEqual(r['express-session']);
    expect((r['express-session'] as Observation[])[0]?.body).toEqual({ before: '1', after: '2' });
  });

  it('save(cb) stores now, and what the request writes after it is stored too', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      return [await b.send('POST', '/save-then-write'), await b.send('GET', '/read')];
    });
    expect(r.shoal).toEqual(r['express-session']);
    expect((r['express-session'] as Observation[])[1]?.body).toEqual({
      data: { a: 'first', b: 'after save' },
      hasId: true,
    });
  });

  it('unset: "keep" ignores the request\'s changes, "destroy" ends the session', async () => {
    for (const unset of ['keep', 'destroy'] as const) {
      const r = await both({ ...base, unset }, async (open) => {
        const b = open();
        await b.send('POST', '/set?key=x&value=kept');
        return [await b.send('POST', '/unset'), await b.send('GET', '/read')];
      });
      expect(r.shoal).toEqual(r['express-session']);
      const after = (r['express-session'] as Observation[])[1]?.body;
      expect(after).toEqual({ data: unset === 'keep' ? { x: 'kept' } : {}, hasId: true });
    }
  });

  it('a tampered, unsigned or wrongly signed cookie is ignored: a new session, the old data unreachable', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      await b.send('POST', '/set?key=x&value=1');
      const good = b.raw;
      const out: Observation[] = [];
      for (const bad of [`${good.slice(0, -2)}xx`, good.replace(/\.[^.]*$/, ''), 'not-a-session']) {
        const other = open();
        other.cookies.set('connect.sid', bad);
        out.push(await other.send('GET', '/read'), await other.send('POST', '/views'));
      }
      return out;
    });
    expect(r.shoal).toEqual(r['express-session']);
    const obs = r['express-session'] as Observation[];
    expect(obs[0]?.body).toEqual({ data: {}, hasId: true });
    expect(obs[1]?.setCookie).not.toBeNull();
  });

  it('secret rotation: [new, old] still reads cookies signed with old and signs with new; [new] alone does not', async () => {
    // The second app of each pair runs with `secret`; the first with OLD_SECRET only.
    const pairs = async (secret: string[]) => {
      const out = {} as Record<Impl, unknown>;
      for (const impl of ['express-session', 'shoal'] as Impl[]) {
        const store = shared();
        const before = await startApp(impl, { ...base, secret: OLD_SECRET }, store);
        const after = await startApp(impl, { ...base, secret }, store);
        started.push(before, after);
        const b = new Browser(before);
        await b.send('POST', '/set?key=x&value=rotated');
        const next = new Browser(after);
        next.cookies = new Map(b.cookies);
        out[impl] = [await next.send('GET', '/read'), await next.send('POST', '/views')];
      }
      return out;
    };
    const rotated = await pairs([SECRET, OLD_SECRET]);
    expect(rotated.shoal).toEqual(rotated['express-session']);
    expect((rotated['express-session'] as Observation[])[0]?.body).toEqual({ data: { x: 'rotated' }, hasId: true });
    const dropped = await pairs([SECRET]);
    expect(dropped.shoal).toEqual(dropped['express-session']);
    expect((dropped['express-session'] as Observation[])[0]?.body).toEqual({ data: {}, hasId: true });
  });
});

describe('where shoal is deliberately different (each listed in docs/adapters.md)', () => {
  it('resave: an unmodified request never writes back its stale copy over a concurrent write', async () => {
    const r = await both({ ...base, resave: true }, async (open) => {
      const b = open();
      await b.send('POST', '/set?key=x&value=1');
      const slow = b.send('GET', '/slow?ms=300');
      await sleep(50);
      await b.send('POST', '/set?key=x&value=2');
      await slow;
      return (await b.send('GET', '/read')).body;
    });
    // express-session saves the whole session it loaded: the slow request puts x back to 1.
    expect(r['express-session']).toEqual({ data: { x: '1' }, hasId: true });
    expect(r.shoal).toEqual({ data: { x: '2' }, hasId: true });
  });

  it('two requests racing on different properties both keep their write', async () => {
    const r = await both(base, async (open) => {
      const b = open();
      await b.send('POST', '/set?key=seed&value=1');
      await Promise.all(Array.from({ length: 20 }, (_, i) => b.send('POST', `/set?key=k${i}&value=${i}`)));
      const body = (await b.send('GET', '/read')).body as { data: Record<string, string> };
      return Object.keys(body.data).filter((k) => k.startsWith('k')).length;
    });
    // express-session keeps whichever copy saved last (often 1 of 20); shoal keeps every write.
    expect(r.shoal).toBe(20);
  });

  it('a secret shorter than 32 characters and the genid option are refused at start', async () => {
    const { session } = await import('shoal/express-session');
    expect(() => session({ secret: 'short' })).toThrow(/"secret" is 5 characters long/);
    expect(() => session({ secret: SECRET, genid: () => 'x' } as unknown as Parameters<typeof session>[0])).toThrow(
      /does not support the "genid" option/,
    );
    expect(() => session({ secret: SECRET, store: 'mysql://x' })).toThrow(/"store" URL has an unknown scheme/);
    expect(() => session({ secret: SECRET, cookie: { encode: String } as never })).toThrow(/cookie option "encode"/);
  });

  it('a misspelt option names the one meant; an unknown store scheme lists every store scheme', async () => {
    const { session } = await import('shoal/express-session');
    expect(() => session({ secret: SECRET, resav: false } as never)).toThrow(
      /does not know the "resav" option; did you mean "resave"\?/,
    );
    expect(() => session({ secret: SECRET, store: 'mysql://x' })).toThrow(
      /redis\+cluster: .*redis\+sentinel: .*postgres: .*memcached:/,
    );
    // The Redis Cluster and Sentinel forms are store URLs (opened lazily: nothing is reached here).
    for (const store of ['redis+cluster://127.0.0.1:1', 'redis+sentinel://127.0.0.1:1/mymaster']) {
      const mw = session({ secret: SECRET, store, resave: false, saveUninitialized: false });
      await mw.close();
    }
  });

  it('onSessionEnd with a store that cannot list ended sessions is refused at start, not on every request', async () => {
    const { session } = await import('shoal/express-session');
    const { createStore } = await import('shoal');
    const onSessionEnd = () => {};
    expect(() => session({ secret: SECRET, store: 'memcached://127.0.0.1:11211', onSessionEnd })).toThrow(
      /onSessionEnd needs a store that can list ended sessions; the memcached store cannot/,
    );
    const memory = await createStore('memory:');
    expect(() => session({ secret: SECRET, store: memory, onSessionEnd })).not.toThrow();
  });
});
