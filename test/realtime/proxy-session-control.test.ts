import { setTimeout as sleep } from 'node:timers/promises';
import { createPublisher } from 'shoal';
import { beforeAll, describe, expect, it } from 'vitest';
import { type RunningGateway, subscribed } from './fixture.js';
import { proxySessionGateways, serverCall } from './proxy-session-cluster.js';
import type { TestClient } from './ws-client.js';

/**
 * A backend that keeps its own sessions (a Python or Java app) names its session id in the connect
 * proxy's answer; POST /disconnect and /unsubscribe {session} then reach that session's connections
 * on every gateway, as they reach a cookie connection's shoal session.
 */
// The app answers with its session id; "bad" stands for an app that answers a session that is not a string.
const { skip, cluster, gateways } = await proxySessionGateways((sid) =>
  sid === 'bad'
    ? { user: 'eve', session: 42 }
    : { user: sid.split('.')[0], session: `py-${sid}`, channels: ['team:1'] },
);
let gw1: RunningGateway;
let gw2: RunningGateway;
beforeAll(() => {
  [gw1, gw2] = gateways as [RunningGateway, RunningGateway];
});
const post = serverCall;

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
