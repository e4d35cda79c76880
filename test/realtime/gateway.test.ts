import { randomUUID } from 'node:crypto';
import { silentLogger } from 'shoal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryBus } from '../../src/bus/memory.js';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { CloseCode, type Cursor, encodeCursors, type ServerMessage } from '../../src/protocol/index.js';
import { createGateway, type GatewayOptions } from '../../src/realtime/gateway.js';
import { createPublisher, sessionChannel } from '../../src/realtime/publisher.js';
import { createRealtime } from '../../src/realtime/realtime.js';
import { SessionManager } from '../../src/session/manager.js';
import type { SessionStore } from '../../src/stores/contract.js';
import { memoryStore } from '../../src/stores/memory.js';
import { requestOfferingH2c } from '../helpers/h2c-offer.js';
import { freePort } from '../helpers/processes.js';
import {
  isMsg,
  ORIGIN,
  PUBLISH_KEY,
  type RunningGateway,
  realtimeCluster,
  SECRET,
  subscribed,
  until,
} from './fixture.js';
import { connect, handshakeStatus, openSse, type TestClient } from './ws-client.js';

/**
 * One gateway (or two) in this process on a free port, the memory bus and
 * memory store, and real `ws` clients carrying a signed session cookie and Origin.
 */
const NS = `gw-test-${randomUUID()}`;
const store = memoryStore();
const cluster = realtimeCluster({ store, openBus: () => memoryBus({ namespace: NS }) });
const { sessionOptions, web, login } = cluster;
const client = cluster.client.bind(cluster);
const webBus = memoryBus({ namespace: NS });
const realtime = createRealtime({ bus: webBus, sessions: web });
const publisher = createPublisher(webBus);

type Overrides = Partial<Omit<GatewayOptions, 'bus'>> & { historySize?: number };

/** A gateway that also refuses `room:secret…`; each owns its bus client (a Bus has one onMessage sink). */
function startGateway(o: Overrides = {}): Promise<RunningGateway> {
  const { historySize, ...rest } = o;
  return cluster.gateway(
    { authorize: (_s, channel) => channel.startsWith('room:') && !channel.startsWith('room:secret'), ...rest },
    historySize ? memoryBus({ namespace: NS, historySize }) : undefined,
  );
}

/** The shared store, except that reading a session fails the way a store that is down does. */
function failingStore(): SessionStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'load' || prop === 'loadIfChanged') {
        return async () => {
          throw new StoreUnavailableError('memory', 'unreachable');
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

const msgs = (c: TestClient, channel: string) => c.messages.filter(isMsg(channel));

let main: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  main = await startGateway();
});

afterAll(async () => {
  await cluster.close();
  await realtime.close();
  await webBus.close();
});

describe('handshake', () => {
  it('accepts the allowed origin with a live session', async () => {
    const { cookie } = await login('alice');
    expect(await handshakeStatus(main.url, { cookie, origin: ORIGIN })).toBe(101);
  });

  it.each([
    ['missing', undefined],
    ['null', 'null'],
    ['wrong scheme', 'http://app.example.com'],
    ['wrong port', 'https://app.example.com:8443'],
    ['explicit default port', 'https://app.example.com:443'],
    ['upper-case host', 'https://APP.example.com'],
    ['upper-case scheme', 'HTTPS://app.example.com'],
    ['trailing slash', 'https://app.example.com/'],
    ['suffix domain', 'https://app.example.com.evil.net'],
    ['prefix domain', 'https://evilapp.example.com'],
    ['other site', 'https://evil.net'],
  ])('refuses Origin %s with 403 even with a valid session', async (_name, origin) => {
    const { cookie } = await login('alice');
    const ws = await import('ws');
    // `connect` always sends ORIGIN when none is given, so the "missing" case opens the socket by hand.
    if (origin === undefined) {
      const status = await new Promise<number>((resolve, reject) => {
        const s = new ws.WebSocket(main.url, { headers: { cookie } });
        s.on('unexpected-response', (_q, res) => resolve(res.statusCode ?? 0));
        s.on('open', () => resolve(101));
        s.on('error', reject);
      });
      expect(status).toBe(403);
      return;
    }
    expect(await handshakeStatus(main.url, { cookie, origin })).toBe(403);
  });

  it('closes with 4401 (not a refused handshake) without a session cookie, with a forged one and with an ended session', async () => {
    const gw = await startGateway();
    expect(await handshakeStatus(gw.url, { origin: ORIGIN })).toBe(CloseCode.Unauthorized);
    expect(await handshakeStatus(gw.url, { origin: ORIGIN, cookie: `${web.cookieName}=abc.def` })).toBe(
      CloseCode.Unauthorized,
    );
    const unsigned = `${web.cookieName}=${randomUUID()}`;
    expect(await handshakeStatus(gw.url, { origin: ORIGIN, cookie: unsigned })).toBe(CloseCode.Unauthorized);
    const { id, cookie } = await login('bob');
    await web.destroySession(id);
    expect(await handshakeStatus(gw.url, { origin: ORIGIN, cookie })).toBe(CloseCode.Unauthorized);
    const missing = `${web.cookieName}=${web.sign('AAAAAAAAAAAAAAAAAAAAAA')}`;
    expect(await handshakeStatus(gw.url, { origin: ORIGIN, cookie: missing })).toBe(CloseCode.Unauthorized);

    // The reason tells the page what to do, and nothing but the close frame is sent.
    const c = await connect(gw.url, { origin: ORIGIN });
    const closed = await c.closed;
    expect(closed).toEqual({ code: CloseCode.Unauthorized, reason: 'no session: sign in, then connect again' });
    expect(c.messages).toEqual([]);
    expect(gw.gateway.connections()).toBe(0);
    expect(await gw.gateway.metrics.render()).toMatch(
      /shoal_gateway_handshake_rejected_total\{transport="ws",status="4401",reason="no-session"\} 6\b/,
    );
  });

  it('still refuses a foreign Origin with 403 before any upgrade, even without a session', async () => {
    // CSWSH: the Origin check comes first, so a foreign page never gets a WebSocket at all.
    expect(await handshakeStatus(main.url, { origin: 'https://evil.net' })).toBe(403);
    expect(await handshakeStatus(main.url, { origin: 'https://evil.net', cookie: `${web.cookieName}=abc.def` })).toBe(
      403,
    );
  });

  it('refuses with 503 (retryable, no upgrade) when the session store cannot answer', async () => {
    const broken = new SessionManager({ ...sessionOptions, store: failingStore() });
    const gw = await startGateway({ sessions: broken });
    const { cookie } = await login('una');
    expect(await handshakeStatus(gw.url, { origin: ORIGIN, cookie })).toBe(503);
    const sse = await openSse(`${gw.http}/sse`, { cookie });
    expect(sse.status).toBe(503);
    sse.close();
    // Without a cookie there is nothing to look up: the store is not asked, and 4401 still says why.
    expect(await handshakeStatus(gw.url, { origin: ORIGIN })).toBe(CloseCode.Unauthorized);
    const metrics = await gw.gateway.metrics.render();
    expect(metrics).toMatch(
      /shoal_gateway_handshake_rejected_total\{transport="ws",status="503",reason="unavailable"\} 1\b/,
    );
    expect(metrics).toMatch(
      /shoal_gateway_handshake_rejected_total\{transport="sse",status="503",reason="unavailable"\} 1\b/,
    );
    await broken.close();
  });
});

describe('channels', () => {
  it('says hello and joins the user and session channels on its own', async () => {
    const { id, cookie } = await login('carol');
    const c = await client(main.url, cookie);
    const hello = await c.waitFor((m) => m.type === 'hello');
    expect(hello).toMatchObject({ type: 'hello', user: 'carol', channels: [sessionChannel(id), 'user:carol'] });
    // The raw session id (what the HttpOnly cookie protects) never reaches page JavaScript.
    expect(JSON.stringify(c.messages)).not.toContain(id);
    await c.waitFor(subscribed('user:carol'));
    await c.waitFor(subscribed(sessionChannel(id)));
    await publisher.to({ user: 'carol' }).send('note', { n: 1 });
    await publisher.to({ session: id }).send('note', { n: 2 });
    expect((await c.waitFor(isMsg('user:carol'))).data).toEqual({ n: 1 });
    expect((await c.waitFor(isMsg(sessionChannel(id)))).data).toEqual({ n: 2 });
  });

  it('an anonymous session joins only its session channel', async () => {
    const { id, cookie } = await login(null);
    const c = await client(main.url, cookie);
    expect(await c.waitFor((m) => m.type === 'hello')).toMatchObject({ user: null, channels: [sessionChannel(id)] });
  });

  it('asks the authorize hook for rooms and refuses other users and sessions', async () => {
    const { cookie } = await login('dave');
    const c = await client(`${main.url}?channels=room:lobby,room:secret-a`, cookie);
    await c.waitFor(subscribed('room:lobby'));
    await c.waitFor((m) => m.type === 'error' && m.code === 'forbidden' && m.channel === 'room:secret-a');
    for (const channel of ['room:secret-b', 'user:erin', 'session:AAAAAAAAAAAA', '_shoal:presence', 'other:x']) {
      c.send({ type: 'sub', channel });
      await c.waitFor((m) => m.type === 'error' && m.code === 'forbidden' && m.channel === channel);
    }
    c.send({ type: 'sub', channel: 'room:kitchen' });
    // No `from`: nothing was asked back, so nothing is missing.
    expect(await c.waitFor(subscribed('room:kitchen'))).toMatchObject({ recovered: true });
    await publisher.to('room:secret-b').send('leak', 1);
    await publisher.to('room:kitchen').send('ok', 2);
    await c.waitFor(isMsg('room:kitchen'));
    expect(c.messages.some((m) => m.type === 'msg' && m.channel.startsWith('room:secret'))).toBe(false);
  });

  it('delivers published messages in order, once', async () => {
    const { cookie } = await login('frank');
    const c = await client(`${main.url}?channels=room:order`, cookie);
    await c.waitFor(subscribed('room:order'));
    const N = 300;
    await Promise.all(Array.from({ length: N }, (_, i) => publisher.to('room:order').send('n', { i })));
    await until(() => msgs(c, 'room:order').length >= N, 5000, `${N} messages`);
    const got = msgs(c, 'room:order');
    expect(got).toHaveLength(N);
    expect(got.map((m) => m.offset)).toEqual(Array.from({ length: N }, (_, i) => i + 1));
    expect(got.map((m) => (m.data as { i: number }).i)).toEqual(Array.from({ length: N }, (_, i) => i));
  });
});

describe('resume', () => {
  const cursorOf = (c: TestClient, channel: string): Cursor => {
    const last = msgs(c, channel).at(-1);
    if (!last) throw new Error(`no message on ${channel}`);
    return { epoch: last.epoch, offset: last.offset };
  };

  it('replays exactly the missed messages after a disconnect (recovered: true)', async () => {
    const { cookie } = await login('gina');
    const first = await client(`${main.url}?channels=room:resume`, cookie);
    await first.waitFor(subscribed('room:resume'));
    for (let i = 1; i <= 5; i++) await publisher.to('room:resume').send('n', { i });
    await until(() => msgs(first, 'room:resume').length === 5);
    const cursor = cursorOf(first, 'room:resume');
    first.close();
    await first.closed;
    for (let i = 6; i <= 12; i++) await publisher.to('room:resume').send('n', { i });

    const resume = encodeCursors(new Map([['room:resume', cursor]]));
    const second = await client(`${main.url}?resume=${resume}`, cookie);
    const ack = await second.waitFor(subscribed('room:resume'));
    expect(ack).toMatchObject({ recovered: true, offset: 5, epoch: cursor.epoch });
    await publisher.to('room:resume').send('n', { i: 13 });
    await until(() => msgs(second, 'room:resume').length >= 8);
    expect(msgs(second, 'room:resume').map((m) => (m.data as { i: number }).i)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
    expect(msgs(second, 'room:resume').map((m) => m.offset)).toEqual([6, 7, 8, 9, 10, 11, 12, 13]);
  });

  it('resumes with a sub message carrying `from` as well', async () => {
    const { cookie } = await login('gina');
    await publisher.to('room:from').send('n', { i: 1 });
    const pos = await webBus.position('room:from');
    for (let i = 2; i <= 4; i++) await publisher.to('room:from').send('n', { i });
    const c = await client(main.url, cookie);
    c.send({ type: 'sub', channel: 'room:from', from: { epoch: pos.epoch, offset: pos.offset } });
    expect(await c.waitFor(subscribed('room:from'))).toMatchObject({ recovered: true, offset: 1 });
    await until(() => msgs(c, 'room:from').length === 3);
    expect(msgs(c, 'room:from').map((m) => m.offset)).toEqual([2, 3, 4]);
  });

  it('says recovered: false (and replays nothing) when history no longer has the gap or the epoch changed', async () => {
    const small = await startGateway({ historySize: 5 });
    const smallPublisher = createPublisher(small.bus);
    const { cookie } = await login('hank');
    const channel = `room:short-${randomUUID().slice(0, 8)}`;
    const first = await client(`${small.url}?channels=${channel}`, cookie);
    await first.waitFor(subscribed(channel));
    await smallPublisher.to(channel).send('n', { i: 1 });
    await until(() => msgs(first, channel).length === 1);
    const cursor = cursorOf(first, channel);
    first.close();
    for (let i = 2; i <= 20; i++) await smallPublisher.to(channel).send('n', { i });

    const second = await client(`${small.url}?resume=${encodeCursors(new Map([[channel, cursor]]))}`, cookie);
    expect(await second.waitFor(subscribed(channel))).toMatchObject({ recovered: false, offset: 20 });
    await smallPublisher.to(channel).send('n', { i: 21 });
    await until(() => msgs(second, channel).length >= 1);
    expect(msgs(second, channel).map((m) => m.offset)).toEqual([21]); // never a partial replay

    const stale = { epoch: 'an-epoch-that-is-gone', offset: 3 };
    const third = await client(`${small.url}?resume=${encodeCursors(new Map([[channel, stale]]))}`, cookie);
    expect(await third.waitFor(subscribed(channel))).toMatchObject({ recovered: false, offset: 21 });
  });
});

describe('limits', () => {
  it('closes a client that sends a message over 64 KiB with 1009', async () => {
    const { cookie } = await login('ivan');
    const c = await client(main.url, cookie);
    await c.waitFor((m) => m.type === 'hello');
    c.send({ type: 'ping', pad: 'x'.repeat(64 * 1024) });
    expect((await c.closed).code).toBe(CloseCode.TooBig);
  });

  it('accepts a message just under the limit', async () => {
    const { cookie } = await login('ivan');
    const c = await client(main.url, cookie);
    const frame = JSON.stringify({ type: 'ping', id: 1, pad: '' });
    c.send(frame.replace('"pad":""', `"pad":"${'x'.repeat(64 * 1024 - frame.length)}"`));
    await c.waitFor((m) => m.type === 'pong');
  });

  it('closes a client that stops reading with 4008 while fast clients keep receiving without stalls', async () => {
    const gw = await startGateway({ maxBufferedBytes: 256 * 1024 });
    const pub = createPublisher(gw.bus);
    const channel = 'room:firehose';
    const slowSession = await login('slow');
    const slow = await client(`${gw.url}?channels=${channel}`, slowSession.cookie);
    await slow.waitFor(subscribed(channel));
    const fast = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const { cookie } = await login(`fast${i}`);
        const f = { arrivals: [] as number[], subscribed: 0 };
        // Only the arrival time of each message: parsing 8 KiB frames here would load the very
        // process that runs the gateway. Byte 9 of a frame is the first letter of its type.
        await client(`${gw.url}?channels=${channel}`, cookie, {
          onRaw: (data) => {
            if (data[9] === 0x6d /* m(sg) */) f.arrivals.push(performance.now());
            else if (data[9] === 0x73 /* s(ubscribed) */) f.subscribed++;
          },
        });
        return f;
      }),
    );
    // session:, user: and the room each answer `subscribed`.
    await until(() => fast.every((f) => f.subscribed === 3), 3000, 'fast clients subscribed');
    slow.ws.pause();

    // This process's own pauses (GC, the machine's other work): timers stop firing during them.
    const ticks: number[] = [];
    const ticker = setInterval(() => ticks.push(performance.now()), 2);
    const payload = 'y'.repeat(8 * 1024);
    let sent = 0;
    let slowClosedAt = 0;
    const started = performance.now();
    // 80 KiB every ~10 ms to each client; stop 500 ms after the slow client is cut off (bounded: 6 s).
    while (performance.now() - started < 6000) {
      await Promise.all(Array.from({ length: 10 }, () => pub.to(channel).send('big', { n: sent++, payload })));
      if (!slowClosedAt && gw.gateway.connections() === 10) slowClosedAt = performance.now();
      if (slowClosedAt && performance.now() - slowClosedAt > 500) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(slowClosedAt).toBeGreaterThan(0);
    await until(() => fast.every((f) => f.arrivals.length === sent), 5000, 'fast clients received everything');
    clearInterval(ticker);

    /**
     * The longest time a fast client waited for its next message while this process was running
     * (a pause of the whole process over 20 ms is subtracted: nothing arrives anywhere during it,
     * whoever is slow). Head-of-line blocking behind the paused client would show here.
     */
    const stall = (arrivals: number[]) => {
      let worst = 0;
      let raw = 0;
      for (let i = 1; i < arrivals.length; i++) {
        const a = arrivals[i - 1] as number;
        const b = arrivals[i] as number;
        raw = Math.max(raw, b - a);
        if (b - a <= 100) continue;
        let paused = 0;
        let prev = a;
        for (const t of ticks) {
          if (t <= a) continue;
          const end = Math.min(t, b);
          if (end - prev > 20) paused += end - prev;
          prev = t;
          if (t >= b) break;
        }
        worst = Math.max(worst, b - a - paused);
      }
      return { worst, raw };
    };
    for (const f of fast) {
      const { worst, raw } = stall(f.arrivals);
      expect(
        worst,
        `longest gap ${raw.toFixed(0)} ms, ${(raw - worst).toFixed(0)} ms of it a process pause`,
      ).toBeLessThan(100);
    }
    slow.ws.resume();
    expect((await slow.closed).code).toBe(CloseCode.SlowConsumer);
    expect(await gw.gateway.metrics.render()).toMatch(/shoal_gateway_slow_consumer_closes_total 1/);
  }, 20_000);

  it('closes a client that floods with 4029', async () => {
    const { cookie } = await login('judy');
    const c = await client(main.url, cookie);
    await c.waitFor((m) => m.type === 'hello');
    for (let i = 0; i < 300 && c.ws.readyState === c.ws.OPEN; i++) c.send({ type: 'ping', id: i });
    expect((await c.closed).code).toBe(CloseCode.RateLimited);
  });

  it('answers malformed JSON and unknown types with a protocol error and stays connected', async () => {
    const { cookie } = await login('kate');
    const c = await client(main.url, cookie);
    await c.waitFor((m) => m.type === 'hello');
    c.send('{not json');
    await c.waitFor((m) => m.type === 'error' && m.code === 'protocol' && /not JSON/.test(m.message));
    c.send({ type: 'launch-missiles' });
    await c.waitFor((m) => m.type === 'error' && m.code === 'protocol' && /unknown message type/.test(m.message));
    c.send({ type: 'sub', channel: 'bad channel name!' });
    // Named, so a client with several subs in flight knows which one it was.
    expect(
      await c.waitFor((m) => m.type === 'error' && m.code === 'protocol' && /valid channel/.test(m.message)),
    ).toMatchObject({ channel: 'bad channel name!' });
    c.send([1, 2]);
    c.send({ type: 'ping', id: 42 });
    expect(await c.waitFor((m) => m.type === 'pong')).toEqual({ type: 'pong', id: 42 });
    expect(c.ws.readyState).toBe(c.ws.OPEN);
  });
});

describe('session end', () => {
  it('logout on a web node closes the session socket with 4001 on every gateway', async () => {
    const other = await startGateway();
    const { id, cookie } = await login('leo');
    const a = await client(main.url, cookie);
    const b = await client(other.url, cookie);
    await a.waitFor(subscribed(sessionChannel(id)));
    await b.waitFor(subscribed(sessionChannel(id)));
    const bystander = await client(main.url, (await login('leo')).cookie);
    await bystander.waitFor((m) => m.type === 'hello');
    const started = Date.now();
    await web.destroySession(id);
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(ca.code).toBe(CloseCode.SessionEnded);
    expect(cb.code).toBe(CloseCode.SessionEnded);
    // Another tab of the same user on another session stays up.
    bystander.send({ type: 'ping', id: 1 });
    await bystander.waitFor((m) => m.type === 'pong');
  });

  it('rotation on login (regenerate) closes the old id’s socket with 4001', async () => {
    const { cookie } = await login('mia');
    const c = await client(main.url, cookie);
    await c.waitFor((m) => m.type === 'hello');
    const s = web.open(cookie);
    await s.regenerate({ keepData: true });
    await s.commit();
    expect((await c.closed).code).toBe(CloseCode.SessionEnded);
  });
});

describe('session expiry', () => {
  it('an idle session that expires has its socket closed with 4001 by the sweeper’s announcement', async () => {
    const shortStore = memoryStore();
    const options = { store: shortStore, secrets: [SECRET], cookie: { secure: false }, idleTimeout: 400 };
    const sweeping = new SessionManager({ ...options, sweep: { interval: 50 } });
    const bus = memoryBus({ namespace: NS });
    const rt = createRealtime({ bus, sessions: sweeping });
    const gatewayBus = memoryBus({ namespace: NS });
    const gateway = await createGateway({
      bus: gatewayBus,
      sessions: new SessionManager({ ...options, sweep: { enabled: false } }),
      origins: [ORIGIN],
      // Under the default rule ('open') this open socket would keep the session alive; the
      // expiry path is what this test is about (keep-alive.test.ts covers the rules).
      keepSessionAlive: 'inbound',
      logger: silentLogger,
    });
    const port = await freePort();
    await gateway.listen(port);
    try {
      const s = sweeping.open(undefined);
      s.setUser('sleepy');
      await s.commit();
      const cookie = `${sweeping.cookieName}=${sweeping.sign(s.id as string)}`;
      const c = await client(`ws://127.0.0.1:${port}/ws`, cookie);
      await c.waitFor((m) => m.type === 'hello');
      const started = Date.now();
      const closed = await c.closed;
      expect(closed.code).toBe(CloseCode.SessionEnded);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      await gateway.close();
      await rt.close();
      await sweeping.close();
      await Promise.all([bus.close(), gatewayBus.close()]);
    }
  });
});

describe('SSE', () => {
  const dataOf = (e: { data: string }) => JSON.parse(e.data) as ServerMessage;

  it('streams messages with ids and resumes exactly from Last-Event-ID', async () => {
    const { cookie } = await login('nina');
    const channel = 'room:sse';
    const first = await openSse(`${main.http}/sse?channels=${channel}`, { cookie });
    expect(first.status).toBe(200);
    await first.waitFor(
      (e) => dataOf(e).type === 'subscribed' && (dataOf(e) as { channel: string }).channel === channel,
    );
    for (let i = 1; i <= 3; i++) await publisher.to(channel).send('n', { i });
    const third = await first.waitFor((e) => {
      const m = dataOf(e);
      return m.type === 'msg' && m.offset === 3;
    });
    expect(third.id).toBeTruthy();
    first.close();
    for (let i = 4; i <= 6; i++) await publisher.to(channel).send('n', { i });
    await publisher.to({ user: 'nina' }).send('dm', { hi: true });

    const second = await openSse(`${main.http}/sse`, { cookie, 'last-event-id': third.id as string });
    const ack = await second.waitFor((e) => {
      const m = dataOf(e);
      return m.type === 'subscribed' && m.channel === channel;
    });
    expect(dataOf(ack)).toMatchObject({ recovered: true, offset: 3 });
    await second.waitFor((e) => {
      const m = dataOf(e);
      return m.type === 'msg' && m.channel === channel && m.offset === 6;
    });
    // The user channel's cursor was in the id too: its message missed while away is replayed.
    await second.waitFor((e) => dataOf(e).type === 'msg' && (dataOf(e) as { channel: string }).channel === 'user:nina');
    const replayed = second.events.map(dataOf).filter((m) => m.type === 'msg' && m.channel === channel);
    expect(replayed.map((m) => (m as { data: { i: number } }).data.i)).toEqual([4, 5, 6]);
    expect(second.events.filter((e) => dataOf(e).type === 'msg').every((e) => e.id)).toBe(true);
    second.close();
  });

  it('resumes from resume= when Last-Event-ID is sent empty, and takes an empty channels= entry for none', async () => {
    const { cookie } = await login('nora');
    const channel = 'room:sse-empty-id';
    const first = await openSse(`${main.http}/sse?channels=${channel}`, { cookie });
    await first.waitFor(
      (e) => dataOf(e).type === 'subscribed' && (dataOf(e) as { channel: string }).channel === channel,
    );
    await publisher.to(channel).send('n', { i: 1 });
    const one = await first.waitFor((e) => dataOf(e).type === 'msg');
    first.close();
    await publisher.to(channel).send('n', { i: 2 });
    // A client that keeps its cursors itself: resume= on the URL, and an empty Last-Event-ID header.
    const again = await openSse(`${main.http}/sse?channels=,&resume=${one.id}`, { cookie, 'last-event-id': '' });
    await again.waitFor((e) => dataOf(e).type === 'msg' && (dataOf(e) as { data: { i: number } }).data.i === 2);
    const acks = again.events.map(dataOf).filter((m) => m.type === 'subscribed' && m.channel === channel);
    expect(acks).toMatchObject([{ recovered: true, offset: 1 }]);
    expect(again.events.map(dataOf).filter((m) => m.type === 'error')).toEqual([]);
    again.close();
  });

  it('ends SSE without a session with a close event (4401) and refuses a foreign Origin (403)', async () => {
    for (const cookie of [undefined, `${web.cookieName}=abc.def`]) {
      const anon = await openSse(`${main.http}/sse?channels=room:lobby`, cookie ? { cookie } : {});
      // 200 text/event-stream, so EventSource reads the reason instead of reporting a bare failure.
      expect(anon.status).toBe(200);
      const close = await anon.waitFor((e) => e.event === 'close');
      expect(JSON.parse(close.data)).toEqual({
        code: CloseCode.Unauthorized,
        reason: 'no session: sign in, then connect again',
      });
      await anon.ended;
      expect(anon.events).toEqual([close]); // no hello, no channel joined
    }
    const { cookie } = await login('olga');
    const foreign = await openSse(`${main.http}/sse`, { cookie, origin: 'https://evil.net' });
    expect(foreign.status).toBe(403);
    foreign.close();
    // The stream and a request frame refuse alike, saying why.
    const request = await fetch(`${main.http}/sse`, {
      method: 'POST',
      headers: { cookie, origin: 'https://evil.net', 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'history', id: 1, channel: 'room:lobby' }),
    });
    expect(request.status).toBe(403);
    expect(await request.json()).toEqual({
      error: "origin not allowed: the page's Origin must be one of the gateway's origins (SHOAL_ORIGINS)",
    });
  });
});

describe('connection limits (per gateway process)', () => {
  const SESSION_LIMIT = 'too many connections for this session on this gateway';
  const USER_LIMIT = 'too many connections for this user on this gateway';
  const helloOf = (c: TestClient) => c.waitFor((m) => m.type === 'hello');
  const alive = async (c: TestClient, id: number) => {
    c.send({ type: 'ping', id });
    await c.waitFor((m) => m.type === 'pong' && m.id === id);
  };
  /** An SSE stream that got its hello (counted by the gateway from then on). */
  const sseWithHello = async (http: string, cookie: string) => {
    const stream = await openSse(`${http}/sse`, { cookie });
    expect(stream.status).toBe(200);
    await stream.waitFor((e) => (JSON.parse(e.data) as ServerMessage).type === 'hello');
    return stream;
  };
  /** An SSE stream the gateway ends at once with `event: close`: its code and reason. */
  const sseRefusal = async (http: string, cookie: string) => {
    const stream = await openSse(`${http}/sse`, { cookie });
    expect(stream.status).toBe(200);
    const close = await stream.waitFor((e) => e.event === 'close');
    await stream.ended;
    expect(stream.events).toEqual([close]); // no hello: nothing joined
    return JSON.parse(close.data) as { code: number; reason: string };
  };

  it('closes the connection over the per-session limit with 4429, leaves the others alone, and lets one in after a close', async () => {
    const gw = await startGateway({ maxConnectionsPerSession: 2 });
    const { cookie } = await login('vera');
    const first = await client(gw.url, cookie);
    const second = await client(gw.url, cookie);
    await Promise.all([helloOf(first), helloOf(second)]);

    const third = await connect(gw.url, { cookie, origin: ORIGIN });
    expect(await third.closed).toEqual({ code: CloseCode.TooManyConnections, reason: SESSION_LIMIT });
    expect(third.messages).toEqual([]);
    await alive(first, 1);
    await alive(second, 2);
    expect(gw.gateway.connections()).toBe(2);
    // The same user on another session has its own count.
    const otherSession = await client(gw.url, (await login('vera')).cookie);
    await helloOf(otherSession);

    second.close();
    await until(() => gw.gateway.connections() === 2, 3000, 'the closed socket released');
    const again = await client(gw.url, cookie);
    await helloOf(again);
    expect(await handshakeStatus(gw.url, { cookie, origin: ORIGIN })).toBe(CloseCode.TooManyConnections);
    const metrics = await gw.gateway.metrics.render();
    expect(metrics).toMatch(/shoal_gateway_connection_limit_closes_total\{transport="ws",limit="session"\} 2\b/);
    expect(metrics).toMatch(
      /shoal_gateway_handshake_rejected_total\{transport="ws",status="4429",reason="session-limit"\} 2\b/,
    );
  });

  it('counts a user across their sessions', async () => {
    const gw = await startGateway({ maxConnectionsPerUser: 3 });
    const a = await login('walt');
    const b = await login('walt');
    const conns = [await client(gw.url, a.cookie), await client(gw.url, a.cookie), await client(gw.url, b.cookie)];
    await Promise.all(conns.map(helloOf));
    expect(await handshakeStatus(gw.url, { cookie: b.cookie, origin: ORIGIN })).toBe(CloseCode.TooManyConnections);
    const refused = await connect(gw.url, { cookie: a.cookie, origin: ORIGIN });
    expect(await refused.closed).toEqual({ code: CloseCode.TooManyConnections, reason: USER_LIMIT });
    expect(await sseRefusal(gw.http, b.cookie)).toEqual({ code: CloseCode.TooManyConnections, reason: USER_LIMIT });
    for (const [i, c] of conns.entries()) await alive(c, i);
    // Another user, and an anonymous session (no user to count), are not affected.
    await helloOf(await client(gw.url, (await login('xena')).cookie));
    await helloOf(await client(gw.url, (await login(null)).cookie));

    conns[0]?.close();
    await until(() => gw.gateway.connections() === 4, 3000, 'the closed socket released');
    await helloOf(await client(gw.url, b.cookie));
    expect(await gw.gateway.metrics.render()).toMatch(
      /shoal_gateway_connection_limit_closes_total\{transport="ws",limit="user"\} 2\b/,
    );
  });

  it('counts SSE streams with WebSockets: the one over the limit gets a close event with 4429', async () => {
    const gw = await startGateway({ maxConnectionsPerSession: 2 });
    const { cookie } = await login('yuri');
    const ws = await client(gw.url, cookie);
    await helloOf(ws);
    const stream = await sseWithHello(gw.http, cookie);
    expect(await sseRefusal(gw.http, cookie)).toEqual({ code: CloseCode.TooManyConnections, reason: SESSION_LIMIT });
    expect(await handshakeStatus(gw.url, { cookie, origin: ORIGIN })).toBe(CloseCode.TooManyConnections);
    await alive(ws, 1);
    expect(stream.events.some((e) => e.event === 'close')).toBe(false);

    stream.close();
    await until(() => gw.gateway.connections() === 1, 3000, 'the closed stream released');
    const next = await sseWithHello(gw.http, cookie);
    next.close();
    expect(await gw.gateway.metrics.render()).toMatch(
      /shoal_gateway_connection_limit_closes_total\{transport="sse",limit="session"\} 1\b/,
    );
  });

  it('releases every slot on every close path: after many cycles the count is back to 0 and the limit still holds', async () => {
    const gw = await startGateway({ maxConnectionsPerSession: 2, maxConnectionsPerUser: 3 });
    const { cookie } = await login('zane');
    for (let cycle = 0; cycle < 12; cycle++) {
      const ws = await client(gw.url, cookie);
      await helloOf(ws);
      const stream = await sseWithHello(gw.http, cookie);
      // Refused attempts in between must not change the count either way.
      expect(await handshakeStatus(gw.url, { cookie, origin: ORIGIN })).toBe(CloseCode.TooManyConnections);
      switch (cycle % 4) {
        case 0: // both ends close politely
          ws.close();
          stream.close();
          break;
        case 1: // the network drops the socket
          ws.ws.terminate();
          stream.close();
          break;
        case 2: // the gateway closes it (rate limit)
          for (let i = 0; i < 300 && ws.ws.readyState === ws.ws.OPEN; i++) ws.send({ type: 'ping', id: i });
          expect((await ws.closed).code).toBe(CloseCode.RateLimited);
          stream.close();
          break;
        default: {
          ws.close();
          stream.close();
          await until(() => gw.gateway.connections() === 0, 3000, `cycle ${cycle}: released`);
          // Closed as soon as they open, while the gateway may still be joining their channels.
          const quick = await connect(gw.url, { cookie, origin: ORIGIN });
          quick.close();
          const quickSse = await openSse(`${gw.http}/sse`, { cookie });
          quickSse.close();
        }
      }
      await until(() => gw.gateway.connections() === 0, 3000, `cycle ${cycle}: every connection released`);
    }
    // The session ends with its sockets open: the user's slots come back for the next session.
    const ending = await login('zane');
    const doomed = [await client(gw.url, ending.cookie), await client(gw.url, ending.cookie)];
    await Promise.all(doomed.map(helloOf));
    await web.destroySession(ending.id);
    for (const c of doomed) expect((await c.closed).code).toBe(CloseCode.SessionEnded);
    await until(() => gw.gateway.connections() === 0, 3000, 'ended session released');

    const a = await client(gw.url, cookie);
    const b = await client(gw.url, cookie);
    await Promise.all([helloOf(a), helloOf(b)]);
    expect(await handshakeStatus(gw.url, { cookie, origin: ORIGIN })).toBe(CloseCode.TooManyConnections);
    const fresh = await login('zane');
    await helloOf(await client(gw.url, fresh.cookie));
    expect(await handshakeStatus(gw.url, { cookie: fresh.cookie, origin: ORIGIN })).toBe(CloseCode.TooManyConnections);
  });
});

describe('HTTP publish', () => {
  it('needs the bearer key and delivers what it accepts', async () => {
    const { cookie } = await login('pete');
    const c = await client(`${main.url}?channels=room:http`, cookie);
    await c.waitFor(subscribed('room:http'));
    const body = JSON.stringify({ channel: 'room:http', event: 'from-python', data: { ok: 1 } });
    const post = (headers: Record<string, string>) =>
      fetch(`${main.http}/publish`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body,
      });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post({ authorization: PUBLISH_KEY })).status).toBe(401);
    const ok = await post({ authorization: `Bearer ${PUBLISH_KEY}` });
    expect(ok.status).toBe(202);
    expect(await ok.json()).toMatchObject({ channel: 'room:http', offset: 1 });
    expect(await c.waitFor(isMsg('room:http'))).toMatchObject({ event: 'from-python', data: { ok: 1 } });
    // Java's HttpClient offers h2c on every plain-http request: the offer is declined, the request served.
    const fromJava = await requestOfferingH2c(
      `${main.http}/publish`,
      'POST',
      { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      JSON.stringify({ channel: 'room:http', event: 'from-java', data: { ok: 2 } }),
    );
    expect(fromJava.status).toBe(202);
    expect(JSON.parse(fromJava.body)).toMatchObject({ channel: 'room:http', offset: 2 });
    expect(await c.waitFor((m) => isMsg('room:http')(m) && m.event === 'from-java')).toMatchObject({ data: { ok: 2 } });
    const reserved = await fetch(`${main.http}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}` },
      body: JSON.stringify({ channel: 'room:http', event: 'shoal:session-ended', data: null }),
    });
    expect(reserved.status).toBe(400);
  });
});

describe('presence', () => {
  it('lists each user once across two tabs and two gateways, and drops them when they leave', async () => {
    const second = await startGateway();
    const channel = `room:presence-${randomUUID().slice(0, 8)}`;
    const p = await login('pam');
    const q = await login('quinn');
    const tab1 = await client(`${main.url}?channels=${channel}`, p.cookie);
    const tab2 = await client(`${main.url}?channels=${channel}`, p.cookie);
    const other = await client(`${second.url}?channels=${channel}`, q.cookie);
    await Promise.all([tab1, tab2, other].map((c) => c.waitFor(subscribed(channel))));
    const users = (c: TestClient) =>
      c.messages
        .filter((m) => m.type === 'presence' && m.channel === channel)
        .map((m) => (m as { users: string[] }).users);
    const listed = (c: TestClient, expected: string[]) => () =>
      JSON.stringify(users(c).at(-1)) === JSON.stringify(expected);

    other.send({ type: 'presence', channel });
    tab1.send({ type: 'presence', channel });
    await until(listed(other, ['pam', 'quinn']), 3000, 'presence on the second gateway');
    await until(listed(tab1, ['pam', 'quinn']), 3000, 'presence on the first gateway');

    tab2.close();
    await tab2.closed;
    await new Promise((r) => setTimeout(r, 200));
    expect(users(other).at(-1)).toEqual(['pam', 'quinn']); // pam still has a tab open

    tab1.close();
    await until(listed(other, ['quinn']), 3000, 'pam gone from presence');
  });

  it('asking for presence before joining is an error, not a leak', async () => {
    const { cookie } = await login('rita');
    const c = await client(main.url, cookie);
    c.send({ type: 'presence', channel: 'room:never-joined' });
    await c.waitFor((m) => m.type === 'error' && m.code === 'not-subscribed');
  });
});

describe('readiness', () => {
  it('/readyz fails when the canary stops arriving through the bus', async () => {
    const id = `gw-canary-${randomUUID().slice(0, 8)}`;
    const gw = await startGateway({ id, canaryMs: 50 });
    const readyz = async () => {
      const res = await fetch(`${gw.http}/readyz`);
      return { status: res.status, body: (await res.json()) as { problem?: string } };
    };
    await until(async () => (await readyz()).status === 200, 2000, 'ready');
    // The subscription that feeds the canary stops delivering (as when a broker drops it).
    await gw.bus.unsubscribe(`_shoal:canary:${id}`);
    await until(async () => (await readyz()).status === 503, 2000, 'not ready');
    expect((await readyz()).body.problem).toMatch(/canary/);
    expect((await fetch(`${gw.http}/healthz`)).status).toBe(200);
  });

  it('/readyz fails when the bus is closed', async () => {
    const gw = await startGateway({ canaryMs: 50 });
    await until(async () => (await fetch(`${gw.http}/readyz`)).status === 200, 2000, 'ready');
    await gw.bus.close();
    expect((await fetch(`${gw.http}/readyz`)).status).toBe(503);
  });

  it('POST /publish answers 503 with Retry-After when the bus cannot take the message', async () => {
    const gw = await startGateway();
    await gw.bus.close();
    const res = await fetch(`${gw.http}/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: 'room:retry', event: 'e', data: 1 }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    // Nothing was handed to the bus: the caller is told that sending it again is safe.
    const body = (await res.json()) as { outcome?: string; message?: string };
    expect(body.outcome).toBe('not-published');
    expect(body.message).toMatch(/bus is unavailable and the message was not published; sending it again .* is safe/);
  });

  it('drain closes sockets with 1012 and refuses new handshakes with 503', async () => {
    const gw = await startGateway();
    const conns = await Promise.all(['s1', 's2', 's3'].map(async (u) => client(gw.url, (await login(u)).cookie)));
    const drained = gw.gateway.drain(600);
    expect(await handshakeStatus(gw.url, { cookie: (await login('s4')).cookie, origin: ORIGIN })).toBe(503);
    const codes = await Promise.all(conns.map((c) => c.closed));
    expect(codes.map((c) => c.code)).toEqual([1012, 1012, 1012]);
    await drained;
    expect(gw.gateway.connections()).toBe(0);
  });
});
