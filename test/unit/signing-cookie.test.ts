import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { encryptionKeysFromEnv, secretsFromEnv, sessionOptionsFromEnv } from '../../src/app/env.js';
import { ConfigError } from '../../src/core/errors.js';
import { newSessionId } from '../../src/core/ids.js';
import { metrics } from '../../src/core/metrics.js';
import { clearCookie, readCookie, serializeCookie } from '../../src/session/cookie.js';
import { SessionManager } from '../../src/session/manager.js';
import { KeyRing } from '../../src/session/signing.js';
import { memoryStore } from '../../src/stores/memory.js';

const secret = () => randomBytes(32).toString('base64url');

describe('KeyRing', () => {
  it('refuses an empty ring with advice on how to configure one', () => {
    expect(() => new KeyRing([])).toThrow(ConfigError);
    expect(() => new KeyRing([])).toThrow(/SHOAL_SECRETS.*newest first.*at least 32/);
  });

  it('refuses secrets shorter than 32 characters, wherever they are in the ring, and says how to make one', () => {
    for (const ring of [['x'.repeat(31)], [secret(), 'short'], ['']]) {
      let thrown: unknown;
      try {
        new KeyRing(ring);
      } catch (err) {
        thrown = err;
      }
      expect(thrown, ring.join(',')).toBeInstanceOf(ConfigError);
      expect((thrown as Error).message).toMatch(/at least 32 random characters .*openssl rand/);
      // The secret itself must never end up in a log line.
      for (const s of ring) if (s.length > 3) expect((thrown as Error).message).not.toContain(s);
    }
    expect(() => new KeyRing(['x'.repeat(32)])).not.toThrow();
  });

  it('signs with the newest secret and accepts every secret of the ring', () => {
    const [older, newer] = [secret(), secret()];
    const id = newSessionId();
    const signedOld = new KeyRing([older]).sign(id);
    const rotating = new KeyRing([newer, older]);
    const signedNew = rotating.sign(id);
    expect(signedNew).not.toBe(signedOld);
    expect(signedNew).toBe(new KeyRing([newer]).sign(id));
    expect(rotating.unsign(signedOld)).toBe(id);
    expect(rotating.unsign(signedNew)).toBe(id);
    expect(new KeyRing([newer]).unsign(signedOld)).toBeNull();
    expect(new KeyRing([secret()]).unsign(signedNew)).toBeNull();
  });

  it('refuses malformed and tampered values', () => {
    const ring = new KeyRing([secret()]);
    const id = newSessionId();
    const signed = ring.sign(id);
    const mac = signed.slice(id.length + 1);
    const other = newSessionId();
    const bad = [
      '',
      '.',
      id,
      `${id}.`,
      `.${mac}`,
      `${id}.${mac}.`,
      `${id}.${mac}x`,
      `${id}.${mac.slice(0, -1)}`,
      `${id}.${mac.toUpperCase() === mac ? mac.toLowerCase() : mac.toUpperCase()}`,
      `${other}.${mac}`,
      `${id.slice(0, 21)}.${mac}`,
      `${id}=.${mac}`,
      ` ${signed}`,
      `${id.slice(0, 21)}+.${mac}`,
      `${signed}.${mac}`,
    ];
    for (const value of bad) expect(ring.unsign(value), JSON.stringify(value)).toBeNull();
    expect(ring.unsign(signed)).toBe(id);
  });
});

describe('secretsFromEnv', () => {
  it('splits on commas, trims and drops empty entries, keeping order (newest first)', () => {
    expect(secretsFromEnv(' new , old,, ')).toEqual(['new', 'old']);
    expect(secretsFromEnv('')).toEqual([]);
    expect(secretsFromEnv(undefined)).toEqual([]);
    expect(encryptionKeysFromEnv(' k1 ,k2,')).toEqual(['k1', 'k2']);
    expect(encryptionKeysFromEnv('')).toBeUndefined();
  });
});

describe('readCookie', () => {
  it('reads what splitting and trimming each pair reads, on 2,000 generated headers', () => {
    // The reference: the plain way to read it (split on ";", trim name and value, unquote).
    const reference = (header: string, name: string) =>
      header.split(';').flatMap((part) => {
        const eq = part.indexOf('=');
        if (eq < 0 || part.slice(0, eq).trim() !== name) return [];
        const value = part.slice(eq + 1).trim();
        return [value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value];
      });
    const pieces = ['sid', 'SID', 'sid2', 'x', '=', ';', ' ', '\t', '\u00a0', '\u3000', '"', 'v.1', '', 'a=b'];
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed;
    };
    let matched = 0;
    for (let i = 0; i < 2000; i++) {
      let header = '';
      for (let j = next() % 12; j > 0; j--) header += pieces[next() % pieces.length];
      const expected = reference(header, 'sid');
      expect([...readCookie(header, 'sid')], JSON.stringify(header)).toEqual(expected);
      if (expected.length > 0) matched++;
    }
    expect(matched).toBeGreaterThan(50); // the generator does produce headers that carry the cookie
  });

  it('finds nothing in a missing or empty header', () => {
    expect(readCookie(undefined, 'sid')).toEqual([]);
    expect(readCookie('', 'sid')).toEqual([]);
    expect(readCookie('   ', 'sid')).toEqual([]);
  });

  it('tolerates whitespace around names, values and separators', () => {
    expect(readCookie('a=1;sid=v', 'sid')).toEqual(['v']);
    expect(readCookie('a=1;   sid  =  v  ; b=2', 'sid')).toEqual(['v']);
    expect(readCookie('\tsid=v\t', 'sid')).toEqual(['v']);
  });

  it('unwraps a quoted value and leaves a lone quote alone', () => {
    expect(readCookie('sid="abc.def"', 'sid')).toEqual(['abc.def']);
    expect(readCookie('sid= "abc" ', 'sid')).toEqual(['abc']);
    expect(readCookie('sid=""', 'sid')).toEqual(['']);
    expect(readCookie('sid="', 'sid')).toEqual(['"']);
    expect(readCookie('sid="abc', 'sid')).toEqual(['"abc']);
  });

  it('matches the exact name only, case-sensitively', () => {
    const header = 'xsid=1; sid2=2; SID=3; s id=4; sid=5';
    expect(readCookie(header, 'sid')).toEqual(['5']);
    expect(readCookie('__Host-shoal=a; shoal=b', '__Host-shoal')).toEqual(['a']);
  });

  it('returns every duplicate so the caller can refuse them all', () => {
    expect(readCookie('sid=a; other=x; sid=b', 'sid')).toEqual(['a', 'b']);
    expect(readCookie('sid=a; sid=a', 'sid')).toEqual(['a', 'a']);
  });

  it('keeps "=" inside values and skips parts without one', () => {
    expect(readCookie('flag; sid=a=b==; junk', 'sid')).toEqual(['a=b==']);
    expect(readCookie('sid', 'sid')).toEqual([]);
    expect(readCookie('sid=', 'sid')).toEqual(['']);
  });
});

describe('serializeCookie / clearCookie', () => {
  const attrs = { secure: true, sameSite: 'Lax' as const, path: '/', httpOnly: true };

  it('writes the security attributes and no Domain', () => {
    const line = serializeCookie('__Host-shoal', 'v.sig', attrs);
    expect(line).toBe('__Host-shoal=v.sig; Path=/; HttpOnly; Secure; SameSite=Lax');
    expect(line).not.toMatch(/Domain=/i);
  });

  it('writes Max-Age in whole seconds only when given, and omits Secure for plain-HTTP development', () => {
    expect(serializeCookie('sid', 'v', { ...attrs, maxAge: 90.9 })).toContain('; Max-Age=90;');
    expect(serializeCookie('sid', 'v', { ...attrs, maxAge: undefined })).not.toContain('Max-Age');
    const dev = serializeCookie('sid', 'v', { ...attrs, secure: false, sameSite: 'Strict' });
    expect(dev).not.toContain('Secure');
    expect(dev).toContain('SameSite=Strict');
  });

  it('clears with an empty value, Max-Age=0 and an expiry in the past, keeping the attributes', () => {
    const line = clearCookie('__Host-shoal', { ...attrs, maxAge: 3600 });
    expect(line).toMatch(
      /^__Host-shoal=; Path=\/; Max-Age=0; HttpOnly; Secure; SameSite=Lax; Expires=Thu, 01 Jan 1970/,
    );
  });
});

describe('SessionManager cookie handling', () => {
  const store = memoryStore();
  const managers: SessionManager[] = [];
  const manager = (options: Partial<ConstructorParameters<typeof SessionManager>[0]> = {}) => {
    const m = new SessionManager({ store, secrets: [secret()], sweep: { enabled: false }, ...options });
    managers.push(m);
    return m;
  };
  afterAll(async () => {
    await Promise.all(managers.map((m) => m.close()));
    await store.close();
  });

  it('refuses to start without a long enough secret, and never takes one from the environment itself', () => {
    const saved = process.env.SHOAL_SECRETS;
    process.env.SHOAL_SECRETS = `${secret()}, ${secret()}`;
    try {
      // The library reads no environment: SHOAL_SECRETS reaches it through sessionOptionsFromEnv (the CLI's).
      expect(() => manager({ secrets: undefined })).toThrow(ConfigError);
      expect(() => manager({ secrets: ['too short'] })).toThrow(/at least 32/);
      expect(manager(sessionOptionsFromEnv(process.env)).config.secrets).toHaveLength(2);
    } finally {
      if (saved === undefined) delete process.env.SHOAL_SECRETS;
      else process.env.SHOAL_SECRETS = saved;
    }
  });

  it('uses a __Host- cookie when secure and a plain name for plain-HTTP development', () => {
    expect(manager().cookieName).toBe('__Host-shoal');
    expect(manager({ cookie: { secure: false } }).cookieName).toBe('shoal.sid');
  });

  it('accepts a quoted or space-padded signed value, and refuses duplicates and oversized values', () => {
    const m = manager();
    const id = newSessionId();
    const signed = m.sign(id);
    const name = m.cookieName;
    expect(m.idFromCookie(undefined)).toEqual({ id: null, rejected: false });
    expect(m.idFromCookie('other=1')).toEqual({ id: null, rejected: false });
    expect(m.idFromCookie(`${name}=${signed}`)).toEqual({ id, rejected: false });
    expect(m.idFromCookie(`a=1;  ${name} = "${signed}" ;b=2`)).toEqual({ id, rejected: false });
    expect(m.idFromCookie(`${name}=${signed}; ${name}=${signed}`)).toEqual({ id: null, rejected: true });
    expect(m.idFromCookie(`${name}=${signed}${'A'.repeat(4096)}`)).toEqual({ id: null, rejected: true });
    expect(m.idFromCookie(`${name}=`)).toEqual({ id: null, rejected: true });
    expect(m.idFromCookie(`${name}=${id}`)).toEqual({ id: null, rejected: true });
  });

  it('counts each refused cookie by reason in shoal_session_cookies_rejected_total, per scope', async () => {
    const m = manager({ scope: 'rejections-test' });
    const quiet = manager({ scope: 'rejections-quiet', metrics: false });
    const name = m.cookieName;
    const signed = m.sign(newSessionId());
    const count = async (reason: string, scope = 'rejections-test') => {
      const metric = await metrics().cookiesRejected.get();
      return metric.values.find((v) => v.labels.reason === reason && v.labels.scope === scope)?.value ?? 0;
    };
    const before = {
      duplicate: await count('duplicate'),
      oversized: await count('oversized'),
      bad: await count('bad-signature'),
    };
    m.idFromCookie(`${name}=${signed}; ${name}=${signed}`);
    m.idFromCookie(`${name}=${'A'.repeat(4097)}`);
    m.idFromCookie(`${name}=${newSessionId()}.forged`);
    m.idFromCookie(`${name}=`);
    m.idFromCookie(`${name}=${signed}`); // accepted: not counted
    m.idFromCookie('other=1'); // no cookie: not a rejection
    quiet.idFromCookie(`${name}=forged`);
    expect(await count('duplicate')).toBe(before.duplicate + 1);
    expect(await count('oversized')).toBe(before.oversized + 1);
    expect(await count('bad-signature')).toBe(before.bad + 2);
    expect(await count('bad-signature', 'rejections-quiet')).toBe(0);
  });
});
