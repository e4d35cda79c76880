import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SESSION_ID_PATTERN } from '../../src/core/ids.js';
import {
  type ClientMessage,
  type Cursor,
  decodeCursors,
  encodeCursors,
  isTokenText,
  isValidChannel,
  parseClientMessage,
} from '../../src/protocol/index.js';
import { MAX_COOKIE_VALUE, readCookie } from '../../src/session/cookie.js';
import { SessionManager } from '../../src/session/manager.js';
import { KeyRing } from '../../src/session/signing.js';
import { memoryStore } from '../../src/stores/memory.js';

/**
 * Property tests of everything that parses what a client sends: frames, resume cursors,
 * cookies, signed ids. They never throw, never accept what they must reject, and give
 * back exactly what they accept. Bounded for `npm test` (2,000 runs each, a few seconds);
 * SHOAL_FUZZ_RUNS=200000 runs longer, SHOAL_FUZZ_SEED replays a failure.
 */
const numRuns = Number(process.env.SHOAL_FUZZ_RUNS ?? 2000);
const seed = process.env.SHOAL_FUZZ_SEED ? Number(process.env.SHOAL_FUZZ_SEED) : undefined;
const params = { numRuns, ...(seed === undefined ? {} : { seed }) };

// Texts a client may send: any unicode, lone surrogates included, and JSON that is almost right.
const anyText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.json({ maxDepth: 4 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
);
const channelChars = fc.constantFrom(...'abcXYZ019_:.@-/'.split(''));
const validChannel = fc.oneof(
  fc.string({ unit: channelChars, minLength: 1, maxLength: 40 }),
  fc.constantFrom('room:42', 'user:alice', '__proto__', 'constructor', 'toString', '0', '17', 'a'.repeat(200)),
);
const invalidChannel = fc.oneof(
  fc.constant(''),
  fc.constant('a'.repeat(201)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }).filter((s) => !/^[A-Za-z0-9_:.@\-/]+$/.test(s)),
  fc.oneof(fc.integer(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 })),
);
const cursor: fc.Arbitrary<Cursor> = fc.record({
  epoch: fc.string({ unit: 'grapheme', maxLength: 30 }).filter((e) => e.length <= 100),
  offset: fc.maxSafeNat(),
});
const tokenPart = fc.string({ unit: fc.constantFrom(...'abcXYZ019_-'.split('')), maxLength: 60 });
const token = fc.tuple(tokenPart, tokenPart, tokenPart).map((parts) => parts.join('.'));
const validMessage: fc.Arbitrary<ClientMessage> = fc.oneof(
  fc.record({ type: fc.constant('sub' as const), channel: validChannel, token }),
  fc.record({ type: fc.constant('refresh' as const), token }),
  fc.record({ type: fc.constant('sub' as const), channel: validChannel }),
  fc.record({ type: fc.constant('sub' as const), channel: validChannel, from: cursor }),
  fc.record({ type: fc.constant('unsub' as const), channel: validChannel }),
  fc.record({ type: fc.constant('presence' as const), channel: validChannel }),
  fc.record({ type: fc.constant('ping' as const) }),
  fc.record({ type: fc.constant('ping' as const), id: fc.maxSafeInteger() }),
  fc.record({
    type: fc.constant('rpc' as const),
    id: fc.maxSafeInteger(),
    method: fc.string({ minLength: 1, maxLength: 200 }),
    data: fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown),
  }),
  fc.record({
    type: fc.constant('pub' as const),
    id: fc.maxSafeInteger(),
    channel: validChannel,
    event: fc.string({ minLength: 1, maxLength: 200 }),
    data: fc.jsonValue().map((v) => JSON.parse(JSON.stringify(v)) as unknown),
  }),
  fc.record({ type: fc.constant('clients' as const), id: fc.maxSafeInteger(), channel: validChannel }),
  fc.record(
    {
      type: fc.constant('history' as const),
      id: fc.maxSafeInteger(),
      channel: validChannel,
      limit: fc.integer({ min: 1, max: 10_000 }),
      since: cursor,
    },
    { requiredKeys: ['type', 'id', 'channel'] },
  ),
);
const ALLOWED_KEYS: Record<ClientMessage['type'], string[]> = {
  sub: ['type', 'channel', 'from', 'token'],
  refresh: ['type', 'token'],
  unsub: ['type', 'channel'],
  presence: ['type', 'channel'],
  ping: ['type', 'id'],
  rpc: ['type', 'id', 'method', 'data'],
  pub: ['type', 'id', 'channel', 'event', 'data'],
  history: ['type', 'id', 'channel', 'limit', 'since'],
  clients: ['type', 'id', 'channel'],
};

/** What parseClientMessage may return: an error, or a message that is exactly the protocol. */
function wellFormed(m: ClientMessage | { error: string; id?: number }): boolean {
  if ('error' in m) {
    const keys = Object.keys(m).filter((k) => k !== 'id');
    return (
      typeof m.error === 'string' &&
      m.error.length > 0 &&
      keys.length === 1 &&
      (m.id === undefined || Number.isSafeInteger(m.id))
    );
  }
  if (!Object.keys(m).every((k) => ALLOWED_KEYS[m.type]?.includes(k))) return false;
  if (Object.getPrototypeOf(m) !== Object.prototype) return false;
  switch (m.type) {
    case 'refresh':
      return isTokenText(m.token);
    case 'sub':
      return (
        isValidChannel(m.channel) &&
        (m.token === undefined || isTokenText(m.token)) &&
        (m.from === undefined ||
          (typeof m.from.epoch === 'string' &&
            m.from.epoch.length <= 100 &&
            Number.isSafeInteger(m.from.offset) &&
            m.from.offset >= 0 &&
            Object.keys(m.from).length === 2))
      );
    case 'unsub':
    case 'presence':
      return isValidChannel(m.channel);
    case 'ping':
      return m.id === undefined || Number.isSafeInteger(m.id);
    case 'rpc':
      return Number.isSafeInteger(m.id) && typeof m.method === 'string' && m.method.length > 0;
    case 'pub':
      return Number.isSafeInteger(m.id) && isValidChannel(m.channel) && typeof m.event === 'string';
    case 'clients':
      return Number.isSafeInteger(m.id) && isValidChannel(m.channel);
    case 'history':
      return (
        Number.isSafeInteger(m.id) &&
        isValidChannel(m.channel) &&
        (m.limit === undefined || (Number.isSafeInteger(m.limit) && m.limit > 0)) &&
        (m.since === undefined || (typeof m.since.epoch === 'string' && Number.isSafeInteger(m.since.offset)))
      );
  }
}

describe('parseClientMessage', () => {
  it('never throws, and returns either one error string or a message that is exactly the protocol', () => {
    fc.assert(
      fc.property(anyText, (text) => wellFormed(parseClientMessage(text))),
      params,
    );
  });

  it('gives back every valid message as it was sent', () => {
    fc.assert(
      fc.property(validMessage, (m) => {
        expect(parseClientMessage(JSON.stringify(m))).toEqual(m);
      }),
      params,
    );
  });

  it('refuses sub/unsub/presence with an invalid channel, and sub with a malformed `from`', () => {
    const badFrom = fc.oneof(
      fc.record({
        epoch: fc.string(),
        offset: fc.oneof(
          fc.integer({ max: -1 }),
          fc.double().filter((d) => !(Number.isSafeInteger(d) && d >= 0)),
          fc.string(),
        ),
      }),
      fc.record({ epoch: fc.string({ minLength: 101, maxLength: 120 }), offset: fc.nat() }),
      fc.record({ epoch: fc.oneof(fc.integer(), fc.constant(null)), offset: fc.nat() }),
      fc.constantFrom(null, 1, 'x', [], [1, 2]),
      fc.constant({ epoch: 'e', offset: 2 ** 53 }),
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.record({ type: fc.constantFrom('sub', 'unsub', 'presence'), channel: invalidChannel }),
          fc.record({ type: fc.constant('sub'), channel: validChannel, from: badFrom }),
        ),
        (m) => 'error' in parseClientMessage(JSON.stringify(m)),
      ),
      params,
    );
  });

  it('carries no extra keys through, and never touches Object.prototype', () => {
    const extras = fc.dictionary(
      fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'admin'), fc.string()),
      fc.jsonValue({ maxDepth: 2 }),
      { maxKeys: 4 },
    );
    fc.assert(
      fc.property(validMessage, extras, (m, extra) => {
        // Keys as JSON text: a literal "__proto__" key, as an attacker would send it.
        const text = `{${[...Object.entries(extra), ...Object.entries(m)].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
        const parsed = parseClientMessage(text);
        expect(wellFormed(parsed)).toBe(true);
        expect(({} as Record<string, unknown>).type).toBeUndefined();
        expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('admin');
      }),
      params,
    );
  });
});

describe('resume cursors (Last-Event-ID / ?resume=)', () => {
  const cursors = fc
    .uniqueArray(fc.tuple(validChannel, cursor), { selector: ([ch]) => ch, maxLength: 6 })
    .map((entries) => new Map(entries));
  const sorted = (m: Map<string, Cursor>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

  it('decodeCursors never throws and yields only valid channels and cursors', () => {
    const text = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
      fc
        .dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })
        .map((v) => Buffer.from(JSON.stringify(v)).toString('base64url')),
    );
    fc.assert(
      fc.property(text, (t) => {
        const out = decodeCursors(t);
        for (const [ch, c] of out) {
          expect(isValidChannel(ch)).toBe(true);
          expect(typeof c.epoch).toBe('string');
          expect(Number.isSafeInteger(c.offset) && c.offset >= 0).toBe(true);
        }
      }),
      params,
    );
  });

  it('round-trips every set of valid cursors, whatever the channel names', () => {
    fc.assert(
      fc.property(cursors, (m) => {
        expect(sorted(decodeCursors(encodeCursors(m)))).toEqual(sorted(m));
      }),
      params,
    );
  });

  it('ignores a cursor text over 16 KiB instead of parsing it', () => {
    const big = new Map([['room:a', { epoch: 'e'.repeat(20_000), offset: 1 }]]);
    expect(decodeCursors(encodeCursors(big)).size).toBe(0);
  });
});

describe('cookies and signed ids', () => {
  const ring = new KeyRing(['fuzz-secret-0123456789abcdefghijklmnopq', 'fuzz-old-secret-0123456789abcdefghijklm']);
  const id = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b).toString('base64url'));

  it('unsign never throws, and accepts a value only if it is exactly sign(id) under a key of the ring', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 120 }),
          id.map((i) => `${i}.${i}`),
        ),
        (value) => {
          const got = ring.unsign(value);
          if (got !== null) expect(SESSION_ID_PATTERN.test(got) && ring.sign(got) === value).toBe(true);
        },
      ),
      params,
    );
  });

  it('round-trips every id it signs; any one-character change is refused', () => {
    const alphabet = fc.constantFrom(...'ABCabc019-_.=+/ %'.split(''));
    fc.assert(
      fc.property(id, fc.nat(), alphabet, (i, at, ch) => {
        const signed = ring.sign(i);
        expect(ring.unsign(signed)).toBe(i);
        const pos = at % signed.length;
        const tampered = signed.slice(0, pos) + ch + signed.slice(pos + 1);
        if (tampered !== signed) expect(ring.unsign(tampered)).toBeNull();
        expect(ring.unsign(signed.slice(0, pos))).toBeNull();
      }),
      params,
    );
  });

  it('accepts what an older secret of the ring signed, and nothing another ring signed', () => {
    const old = new KeyRing(['fuzz-old-secret-0123456789abcdefghijklm']);
    const stranger = new KeyRing(['someone-else-0123456789abcdefghijklmnopq']);
    fc.assert(
      fc.property(id, (i) => {
        expect(ring.unsign(old.sign(i))).toBe(i);
        expect(ring.unsign(stranger.sign(i))).toBeNull();
      }),
      params,
    );
  });

  it('readCookie never throws and returns exactly the values of the pairs with that name', () => {
    const name = fc.string({ unit: fc.constantFrom(...'abAB._-$!'.split('')), minLength: 1, maxLength: 6 });
    const value = fc.string({ unit: fc.constantFrom(...'abAB01.=-_"% ,'.split('')), maxLength: 12 });
    fc.assert(
      fc.property(fc.array(fc.tuple(name, value), { maxLength: 6 }), name, (pairs, target) => {
        const header = pairs.map(([n, v]) => `${n}=${v}`).join('; ');
        const expected = pairs
          .filter(([n]) => n === target)
          .map(([, v]) => {
            const t = v.trim();
            return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1) : t;
          });
        expect(readCookie(header, target)).toEqual(expected);
      }),
      params,
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ maxLength: 10 }), (header, n) => {
        expect(Array.isArray(readCookie(header, n))).toBe(true);
      }),
      params,
    );
  });

  it('a Cookie header yields a session id only for exactly one well-signed cookie of our name', () => {
    const manager = new SessionManager({
      store: memoryStore(),
      secrets: ['fuzz-secret-0123456789abcdefghijklmnopq'],
      cookie: { secure: false },
      sweep: { enabled: false },
    });
    const noise = fc.array(
      fc.oneof(
        fc.string({ unit: 'binary', maxLength: 40 }),
        id.map((i) => `shoal.sid=${i}`),
        id.map((i) => `other=${manager.sign(i)}`),
      ),
      { maxLength: 4 },
    );
    fc.assert(
      fc.property(noise, fc.option(id, { nil: undefined }), fc.nat(), (parts, mine, at) => {
        const all = [...parts];
        if (mine) all.splice(at % (all.length + 1), 0, `shoal.sid=${manager.sign(mine)}`);
        const header = all.join('; ');
        const { id: got } = manager.idFromCookie(header);
        const ours = readCookie(header, 'shoal.sid');
        if (got !== null) {
          expect(ours).toHaveLength(1);
          expect(ours[0]?.length).toBeLessThanOrEqual(MAX_COOKIE_VALUE);
          expect(manager.sign(got)).toBe(ours[0]);
        }
        if (mine && ours.length === 1) expect(got).toBe(mine);
      }),
      params,
    );
  });
});
