import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPublisher } from 'shoal';
import { redisBus } from 'shoal/bus/redis';
import { memoryStore } from 'shoal/stores/memory';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { PUBLISH_KEY, type RunningGateway, realtimeCluster, subscribed } from './fixture.js';
import { appServer, json } from './proxy-helpers.js';
import type { TestClient } from './ws-client.js';

/**
 * A backend that keeps its own sessions (a Python or Java app) names its session id in the connect
 * proxy's answer; POST /disconnect and /unsubscribe {session} then reach that session's connections
 * on every gateway, as they reach a cookie connection's shoal session.
 */
const skip = await engineSkipReason('redis');
const ns = `psc-${randomUUID().slice(0, 8)}`;
const cluster = realtimeCluster({
  store: memoryStore(),
  openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace: ns }),
});
let gw1: RunningGateway;
let gw2: RunningGateway;
let closeApp: () => Promise<void> = async () => {};

beforeAll(async () => {
  if (skip) return;
  // APPSID=<user>.<device>: the app's own session cookie; its id is what the app answers as `session`.
  const app = await appServer((req, res) => {
    const sid = /APPSID=([\w.]+)/.exec(req.headers.cookie ?? '')?.[1];
    if (!sid) return json(res, { error: { code: 4501, reason: 'sign in first' } });
    if (sid === 'bad') return json(res, { user: 'eve', session: 42 });
    json(res, { user: sid.split('.')[0], session: `py-${sid}`, channels: ['team:1'] });
  });
  closeApp = app.close;
  const connectProxy = { url: app.url, timeoutMs: 2000 };
  gw1 = await cluster.gateway({ connectProxy });
  gw2 = await cluster.gateway({ connectProxy });
});
afterAll(async () => {
  await cluster.close();
  await closeApp();
});

const post = (g: RunningGateway, path: string, body: unknown) =>
  fetch(`${g.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_KEY}` },
    body: JSON.stringify(body),
  });

const closedWithin = (c: TestClient, ms: number) => Promise.race([c.closed, sleep(ms).then(() => null)]);

/** One connection on each gateway for the app session `sid`, both in team:1. */
async function onBoth(sid: string): Promise<TestClient[]> {
  const conns = await Promise.all([gw1, gw2].map((g) => cluster.client(`${g.url}?channels=team:1`, `APPSID=${sid}`)));
  await Promise.all(conns.map((c) => c.waitFor(subscribed('team:1'))));
  return conns;
}

describe.skipIf(skip)('{session} control for connect-proxy connections', () => {
  it('POST /disconnect {session} closes the connections whose proxy answer named it, on both gateways', async () => {
    const laptop = await onBoth('dave.laptop');
    const [phone] = await onBoth('dave.phone');
    const res = await post(gw2, '/disconnect', { session: 'py-dave.laptop', code: 4502, reason: 'signed out' });
    expect(res.status).toBe(202);
    for (const c of laptop) expect(await closedWithin(c, 3000)).toEqual({ code: 4502, reason: 'signed out' });
    // The same user's other device stays.
    expect(await closedWithin(phone as TestClient, 300)).toBeNull();
  });

  it('POST /unsubscribe {session} and the Node publisher reach them too', async () => {
    const conns = await onBoth('fay.laptop');
    expect((await post(gw1, '/unsubscribe', { session: 'py-fay.laptop', channel: 'team:1' })).status).toBe(202);
    for (const c of conns) await c.waitFor((m) => m.type === 'unsubscribed' && m.channel === 'team:1');
    await createPublisher(gw1.bus).disconnect({ session: 'py-fay.laptop' });
    for (const c of conns) expect((await closedWithin(c, 3000))?.code).toBe(4403);
  });

  it('a proxy answer whose session is not a string is malformed (4013)', async () => {
    const c = await cluster.client(gw1.url, 'APPSID=bad');
    expect((await closedWithin(c, 3000))?.code).toBe(4013);
  });
});
