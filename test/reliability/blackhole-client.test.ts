import { randomUUID } from 'node:crypto';
import { silentLogger } from 'shoal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryBus } from '../../src/bus/memory.js';
import { CloseCode } from '../../src/protocol/index.js';
import { createGateway, type Gateway } from '../../src/realtime/gateway.js';
import { SessionManager } from '../../src/session/manager.js';
import { memoryStore } from '../../src/stores/memory.js';
import { eventually } from '../helpers/eventually.js';
import { type FaultProxy, faultProxy } from '../helpers/fault-proxy.js';
import { freePort } from '../helpers/processes.js';
import { SECRET, sleep } from './fixture.js';
import { openSocket, type Socket } from './ws.js';

/**
 * A client whose network vanishes without a FIN or RST (phone in a tunnel, NAT
 * entry dropped): the fault proxy blackholes its connection. The gateway pings every
 * heartbeat; a ping unanswered by the next tick ends the connection with 4000, so it is
 * reaped within two heartbeats, and its socket is released within the close-handshake
 * grace (5 s) after that. A live client on the same gateway is never reaped.
 */
const HEARTBEAT_MS = 250;

const store = memoryStore();
const sessions = new SessionManager({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
const bus = memoryBus({ namespace: `blackhole-${randomUUID()}` });
let gateway: Gateway;
let proxy: FaultProxy;
let port = 0;
const sockets: Socket[] = [];

beforeAll(async () => {
  gateway = await createGateway({
    bus,
    sessions,
    origins: ['https://app.example.com'],
    heartbeatMs: HEARTBEAT_MS,
    logger: silentLogger,
  });
  port = await freePort();
  await gateway.listen(port);
  proxy = await faultProxy(port);
});

afterAll(async () => {
  for (const s of sockets) s.ws.terminate();
  await proxy.close();
  await gateway.close();
  await bus.close();
});

async function cookie(): Promise<string> {
  const s = sessions.open(undefined);
  s.set('here', true);
  await s.commit();
  return `${sessions.cookieName}=${sessions.sign(s.id as string)}`;
}

const openSockets = () => new Promise<number>((r) => gateway.server.getConnections((_e, n) => r(n)));

describe('a blackholed client', () => {
  it('is reaped within two heartbeats (4000) and its socket released; a live client stays', async () => {
    const live = await openSocket(`ws://127.0.0.1:${port}/ws`, { cookie: await cookie() });
    const lost = await openSocket(`ws://127.0.0.1:${proxy.port}/ws`, { cookie: await cookie() });
    sockets.push(live, lost);
    await eventually(() => gateway.connections() === 2, { timeoutMs: 2000, intervalMs: 20 });
    // Both answer pings for a few heartbeats: nobody is reaped while alive.
    await sleep(HEARTBEAT_MS * 3);
    expect(gateway.connections()).toBe(2);

    proxy.blackhole();
    const cut = Date.now();
    await eventually(() => gateway.connections() === 1, { timeoutMs: HEARTBEAT_MS * 4 });
    const reapedAfter = Date.now() - cut;
    // The last ping it answered may be up to one heartbeat old; the next tick sees no pong.
    expect(reapedAfter).toBeLessThanOrEqual(HEARTBEAT_MS * 2 + 250); // + timer and scheduling slack
    expect(await gateway.metrics.render()).toMatch(/shoal_gateway_heartbeat_timeouts_total 1\b/);

    // The close frame cannot reach it; the socket is cut after the close-handshake grace.
    await eventually(async () => (await openSockets()) === 1, { timeoutMs: 7000, intervalMs: 50 });
    const releasedAfter = Date.now() - cut;
    console.info(`[blackhole] reaped after ${reapedAfter} ms, socket released after ${releasedAfter} ms`);
    expect(releasedAfter).toBeLessThan(HEARTBEAT_MS * 2 + 5000 + 500);

    // If the network comes back, the client learns why it was dropped.
    proxy.clear();
    const closed = await Promise.race([lost.closed, sleep(3000).then(() => null)]);
    expect(closed?.code).toBe(CloseCode.Timeout);
    expect(live.ws.readyState).toBe(live.ws.OPEN);
    expect(gateway.connections()).toBe(1);
  }, 20_000);
});
