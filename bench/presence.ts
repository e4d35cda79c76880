/**
 * Presence traffic between gateways: what each gateway receives on the presence channels, per
 * second, with `--channels` channels held (one user each, spread over the gateways), first while
 * nothing changes, then while `--churn` users per second join and leave. Real gateways on a real
 * Redis bus, clients over WebSocket; an observer subscribed to the presence channels counts what
 * every gateway receives (each receives all of it).
 *
 * `npx tsx bench/presence.ts [--channels 1000] [--gateways 2] [--seconds 15] [--churn 10]`
 */
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createBus, SessionManager, silentLogger } from 'shoal';
import { createGateway, type Gateway } from 'shoal/gateway';
import { memoryStore } from 'shoal/stores/memory';
import { WebSocket } from 'ws';

const { values } = parseArgs({
  options: {
    channels: { type: 'string', default: '1000' },
    gateways: { type: 'string', default: '2' },
    seconds: { type: 'string', default: '15' },
    churn: { type: 'string', default: '10' },
    redis: { type: 'string', default: process.env.SHOAL_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379' },
  },
});
const CHANNELS = Number(values.channels);
const GATEWAYS = Number(values.gateways);
const SECONDS = Number(values.seconds);
const CHURN = Number(values.churn);
const ORIGIN = 'http://bench.local';
const SECRET = 'presence-bench-secret-0123456789abcdefghij';
const PER_CLIENT = 100;
/** Every presence channel either version of the gateway uses: the heartbeat channel and its shards. */
const PRESENCE_CHANNELS = ['_shoal:presence', ...Array.from({ length: 8 }, (_, i) => `_shoal:presence:${i}`)];

const namespace = `bench-presence-${randomUUID().slice(0, 8)}`;
const openBus = () => createBus(values.redis, { namespace });
const store = memoryStore();
const sessions = new SessionManager({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
const gateways: { gateway: Gateway; url: string }[] = [];
const sockets: WebSocket[] = [];

async function cookieFor(user: string): Promise<string> {
  const s = sessions.open(undefined);
  s.setUser(user);
  await s.commit();
  return `${sessions.cookieName}=${sessions.sign(s.id as string)}`;
}

function open(url: string, cookie: string, channels: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?channels=${channels.join(',')}`, { headers: { cookie, origin: ORIGIN } });
    let pending = channels.length;
    ws.on('message', (raw) => {
      const m = JSON.parse(String(raw)) as { type: string };
      if (m.type === 'subscribed' && --pending === 0) resolve(ws);
    });
    ws.once('error', reject);
    sockets.push(ws);
  });
}

async function measure(what: string, during: () => Promise<void>) {
  const observer = await openBus();
  let messages = 0;
  let bytes = 0;
  observer.onMessage((m) => {
    messages++;
    bytes += m.data.length + m.event.length;
  });
  for (const ch of PRESENCE_CHANNELS) await observer.subscribe(ch);
  await during();
  await observer.close();
  return { what, perSecond: messages / SECONDS, bytesPerSecond: bytes / SECONDS };
}

try {
  for (let i = 0; i < GATEWAYS; i++) {
    const gateway = await createGateway({
      bus: await openBus(),
      sessions,
      origins: [ORIGIN],
      authorize: () => true,
      logger: silentLogger,
    });
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    await gateway.listen(port);
    gateways.push({ gateway, url: `ws://127.0.0.1:${port}/ws` });
  }
  const rooms = Array.from({ length: CHANNELS }, (_, i) => `room:p${i}`);
  for (let k = 0; k * PER_CLIENT < CHANNELS; k++) {
    const gw = gateways[k % GATEWAYS] as { url: string };
    await open(gw.url, await cookieFor(`user-${k}`), rooms.slice(k * PER_CLIENT, (k + 1) * PER_CLIENT));
  }
  await new Promise((r) => setTimeout(r, 1000));

  const quiet = await measure('no change', () => new Promise((r) => setTimeout(r, SECONDS * 1000)));
  const churn = await measure(`${CHURN} joins + ${CHURN} leaves /s`, async () => {
    const until = Date.now() + SECONDS * 1000;
    let n = 0;
    while (Date.now() < until) {
      const started = Date.now();
      const batch = await Promise.all(
        Array.from({ length: CHURN }, async () => {
          const gw = gateways[n % GATEWAYS] as { url: string };
          const room = rooms[n++ % CHANNELS] as string;
          return open(gw.url, await cookieFor(`churn-${n}`), [room]);
        }),
      );
      for (const ws of batch) ws.close();
      await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
    }
  });
  console.log(`presence traffic received by each gateway: ${CHANNELS} channels, ${GATEWAYS} gateways, ${SECONDS} s`);
  console.log('| while | messages/s | bytes/s |');
  console.log('|---|---|---|');
  for (const r of [quiet, churn]) {
    console.log(`| ${r.what} | ${r.perSecond.toFixed(1)} | ${Math.round(r.bytesPerSecond).toLocaleString('en-US')} |`);
  }
} finally {
  for (const ws of sockets) ws.terminate();
  for (const { gateway } of gateways) await gateway.close();
  await sessions.close();
  await store.close();
  process.exit(0);
}
