import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionStore, StoredSession } from '../../src/stores/contract.js';
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway-process.js';
import { type NodeProcess, stopAll } from '../helpers/processes.js';
import { closePayload, frame, Op, type RawConnection, rawUpgrade } from './raw-ws.js';

/**
 * Hostile bytes against a real gateway process (`shoal gateway`, SQLite store): each
 * gets a clear refusal (an HTTP status or a WebSocket close code) quickly, the process
 * stays up and keeps serving, and the stored session is exactly as it was.
 *
 * Not repeated here, see test/realtime/gateway.test.ts: Origin missing / `null` / wrong
 * scheme, port, case / suffix and prefix domains (403), forged and ended session cookies
 * (accepted, then closed with 4401), one message over 64 KiB (1009), message floods (4029), malformed JSON and unknown
 * message types (protocol error, connection kept).
 */
const ORIGIN = 'https://app.example.com';
const SECRET = 'security-test-secret-0123456789abcdefghij';

let running: GatewayProcess;
let gw: NodeProcess;
let store: SessionStore;
let cookie = '';
let before: StoredSession | null = null;
const opened: RawConnection[] = [];

beforeAll(async () => {
  running = await startGatewayProcess({ name: 'security-gateway', origin: ORIGIN, secret: SECRET });
  ({ gateway: gw, store } = running);
  const mallory = await running.login('mallory', { balance: 100 });
  cookie = mallory.cookie;
  before = await store.load(mallory.id, Date.now());
}, 60_000);

afterAll(async () => {
  for (const c of opened) c.socket.destroy();
  // Whatever was thrown at it, the gateway is alive and the session untouched.
  await stopAll();
  await running?.close();
});

async function upgrade(o: Parameters<typeof rawUpgrade>[1] = {}): Promise<RawConnection> {
  const c = await rawUpgrade(gw.port, { ...o, headers: { origin: ORIGIN, cookie, ...o.headers } });
  opened.push(c);
  return c;
}

/** An open, authenticated connection that has received its hello. */
async function session(): Promise<RawConnection> {
  const c = await upgrade();
  expect(c.status).toBe(101);
  const deadline = Date.now() + 3000;
  while (!c.frames.some((f) => f.payload.toString().includes('"hello"')) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  return c;
}

/** The process is up, serving, and the session is byte for byte what it was. */
async function stillFine(): Promise<void> {
  expect(gw.child.exitCode, gw.output().slice(-2000)).toBeNull();
  expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  const c = await session();
  c.send(frame(Op.Text, JSON.stringify({ type: 'ping', id: 1 })));
  const deadline = Date.now() + 2000;
  while (!c.frames.some((f) => f.payload.toString() === '{"type":"pong","id":1}') && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(c.frames.map((f) => f.payload.toString())).toContain('{"type":"pong","id":1}');
  c.socket.destroy();
  const after = await store.load(before?.id as string, Date.now());
  expect(after?.attributes).toEqual(before?.attributes);
  expect(after?.meta.rev).toBe(before?.meta.rev);
  expect(after?.meta.userId).toBe(before?.meta.userId);
}

describe('hostile handshakes', () => {
  it.each([
    ['a comma list of 7,000 empty tokens', 'a,'.repeat(7000)],
    ['whitespace runs between separators', ' \t,'.repeat(4500)],
    ['one 15,000-character token', 'x'.repeat(15_000)],
    ['separators only', ','.repeat(15_000)],
  ])('Sec-WebSocket-Protocol as %s: answered at once, nothing echoed back that was not asked', async (_name, value) => {
    const started = Date.now();
    const c = await upgrade({ headers: { 'sec-websocket-protocol': value } });
    expect(Date.now() - started).toBeLessThan(1000);
    expect([101, 400]).toContain(c.status);
    if (c.status === 101) expect(value.split(/\s*,\s*/)).toContain(c.headers['sec-websocket-protocol']);
    c.socket.destroy();
    await stillFine();
  });

  it('2,000 extra headers: over the header-size limit → 431; under it, handled normally', async () => {
    const big = await upgrade({ extraLines: Array.from({ length: 2000 }, (_, i) => `x-junk-${i}: ${'v'.repeat(8)}`) });
    expect(big.status).toBe(431);
    const small = await upgrade({ extraLines: Array.from({ length: 2000 }, (_, i) => `h${i}:`) });
    expect([101, 431]).toContain(small.status);
    big.socket.destroy();
    small.socket.destroy();
    await stillFine();
  });

  it.each([
    'constructor',
    '__proto__',
    'permessage-deflate; __proto__=1; constructor=2',
    'toString, hasOwnProperty; valueOf="x", __defineGetter__',
    'permessage-deflate; server_max_window_bits=__proto__',
  ])('Sec-WebSocket-Extensions %j: nothing negotiated, the connection works', async (value) => {
    const c = await upgrade({ headers: { 'sec-websocket-extensions': value } });
    expect(c.status).toBe(101);
    expect(c.headers['sec-websocket-extensions']).toBeUndefined();
    c.socket.destroy();
    await stillFine();
  });

  it.each([
    ['userinfo that names the allowed host', 'https://app.example.com@evil.net'],
    ['a trailing dot', 'https://app.example.com.'],
    ['a Cyrillic homoglyph', 'https://аpp.example.com'],
    ['a path', 'https://app.example.com/app'],
    ['a query', 'https://app.example.com?x'],
    ['two Origin headers, the allowed one second', 'https://evil.net'],
  ])('Origin with %s → 403', async (name, origin) => {
    const c = name.startsWith('two')
      ? await upgrade({ headers: { origin }, extraLines: [`origin: ${ORIGIN}`] })
      : await upgrade({ headers: { origin } });
    expect(c.status).toBe(403);
    c.socket.destroy();
  });

  it('a foreign Origin without a session → 403 before any upgrade (no 4401 to probe with)', async () => {
    const c = await rawUpgrade(gw.port, { headers: { origin: 'https://evil.net' } });
    opened.push(c);
    expect(c.status).toBe(403);
    await c.ended;
    expect(c.frames).toEqual([]);
  });

  it('two Cookie headers (a planted second session cookie) → closed with 4401, neither is trusted', async () => {
    const c = await upgrade({ extraLines: [`cookie: ${cookie}`] });
    expect(c.status).toBe(101);
    expect(await c.closeCode()).toBe(4401);
    // Nothing but the close frame: no hello, no channel of the session.
    expect(c.frames.map((f) => f.opcode)).toEqual([Op.Close]);
    c.socket.destroy();
    await stillFine();
  });
});

describe('hostile frames (each closes the connection with the RFC 6455 code, nothing else breaks)', () => {
  const cases: Array<[string, number, (c: RawConnection) => void]> = [
    ['a binary frame (not part of the protocol)', 4400, (c) => c.send(frame(Op.Binary, Buffer.from([1, 2, 3])))],
    ['invalid UTF-8 in a text frame', 1007, (c) => c.send(frame(Op.Text, Buffer.from([0x7b, 0xc3, 0x28, 0x7d])))],
    ['an unmasked client frame', 1002, (c) => c.send(frame(Op.Text, '{"type":"ping"}', { mask: false }))],
    ['RSV1 set without an extension', 1002, (c) => c.send(frame(Op.Text, '{"type":"ping"}', { rsv: 4 }))],
    ['a reserved opcode', 1002, (c) => c.send(frame(0x3, 'x'))],
    ['a ping over 125 bytes', 1002, (c) => c.send(frame(Op.Ping, 'p'.repeat(126)))],
    ['a fragmented ping', 1002, (c) => c.send(frame(Op.Ping, 'p', { fin: false }))],
    ['a continuation with nothing to continue', 1002, (c) => c.send(frame(Op.Continuation, 'x'))],
    [
      'a new message inside a fragmented one',
      1002,
      (c) => {
        c.send(frame(Op.Text, '{"type":', { fin: false }));
        c.send(frame(Op.Text, '"ping"}'));
      },
    ],
    ['a length of 2^63 − 1', 1009, (c) => c.send(frame(Op.Text, '', { length: 2n ** 63n - 1n }))],
    ['a 64 KiB + 1 length with no body sent', 1009, (c) => c.send(frame(Op.Text, '', { length: 64 * 1024 + 1 }))],
    [
      'two 40 KiB fragments (over the 64 KiB message limit together)',
      1009,
      (c) => {
        c.send(frame(Op.Text, `{"pad":"${'x'.repeat(40 * 1024)}`, { fin: false }));
        c.send(frame(Op.Continuation, `${'x'.repeat(40 * 1024)}"}`));
      },
    ],
    [
      'a flood of 20,000 empty fragments (ws caps a message at 16,384 fragments)',
      1008,
      (c) => {
        const parts = [frame(Op.Text, '{', { fin: false })];
        for (let i = 0; i < 20_000; i++) parts.push(frame(Op.Continuation, '', { fin: false }));
        c.send(Buffer.concat(parts));
      },
    ],
    ['a close frame with a 1-byte body', 1002, (c) => c.send(frame(Op.Close, Buffer.from([3])))],
    [
      'a close reason that is not UTF-8',
      1007,
      (c) => c.send(frame(Op.Close, Buffer.concat([closePayload(1000), Buffer.from([0xff])]))),
    ],
  ];

  it.each(cases)('%s → %i', async (_name, code, attack) => {
    const c = await session();
    const started = Date.now();
    attack(c);
    expect(await c.closeCode(3000)).toBe(code);
    expect(Date.now() - started).toBeLessThan(2000);
    await stillFine();
  });

  it.each([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65_535])(
    'a close frame with the reserved or invalid code %i → 1002',
    async (code) => {
      const c = await session();
      c.send(frame(Op.Close, closePayload(code)));
      expect(await c.closeCode()).toBe(1002);
    },
  );

  it.each([1000, 1001, 3000, 4000, 4999])(
    'a close frame with the valid code %i is answered and closed cleanly',
    async (code) => {
      const c = await session();
      c.send(frame(Op.Close, closePayload(code, 'bye')));
      expect(await c.closeCode()).toBe(code);
      await c.ended;
    },
  );

  it('16,000 empty continuation frames (under the cap) make one message: answered once, no rate limit, no stall', async () => {
    const c = await session();
    const parts = [frame(Op.Text, '{"type":"ping","id":9}', { fin: false })];
    for (let i = 0; i < 16_000; i++) parts.push(frame(Op.Continuation, '', { fin: false }));
    parts.push(frame(Op.Continuation, ''));
    const started = Date.now();
    c.send(Buffer.concat(parts));
    const deadline = Date.now() + 5000;
    while (!c.frames.some((f) => f.payload.toString() === '{"type":"pong","id":9}') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(c.frames.map((f) => f.payload.toString())).toContain('{"type":"pong","id":9}');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(c.socket.destroyed).toBe(false);
    c.socket.destroy();
    await stillFine();
  });

  it.each([
    ['JSON nested 20,000 deep', `${'['.repeat(20_000)}${']'.repeat(20_000)}`],
    ['a __proto__ key carrying a type', '{"__proto__":{"type":"ping"},"constructor":{"prototype":{"x":1}}}'],
    ['an offset beyond any integer', '{"type":"sub","channel":"room:a","from":{"epoch":"e","offset":1e400}}'],
    ['a channel name with control characters', '{"type":"sub","channel":"room:\\u0000\\n"}'],
    ['a 60 KiB channel name', `{"type":"sub","channel":"${'c'.repeat(60_000)}"}`],
  ])('%s → a protocol error, the connection stays', async (_name, text) => {
    const c = await session();
    c.send(frame(Op.Text, text));
    const deadline = Date.now() + 3000;
    while (!c.frames.some((f) => f.payload.toString().includes('"code":"protocol"')) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(c.frames.map((f) => f.payload.toString()).join('\n')).toContain('"code":"protocol"');
    c.send(frame(Op.Text, '{"type":"ping","id":2}'));
    while (!c.frames.some((f) => f.payload.toString() === '{"type":"pong","id":2}') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(c.frames.map((f) => f.payload.toString())).toContain('{"type":"pong","id":2}');
    c.socket.destroy();
  });

  it('after all of it: the process is up and the session untouched', async () => {
    await stillFine();
    expect(await (await fetch(`${gw.url}/metrics`)).text()).toMatch(/shoal_gateway_protocol_errors_total [1-9]/);
  });
});
