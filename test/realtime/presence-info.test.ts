import { randomUUID } from 'node:crypto';
import { createPublisher, type PresenceClient } from 'shoal';
import { describe, expect, it } from 'vitest';
import type { ServerMessage } from '../../src/protocol/index.js';
import { memoryStore } from '../../src/stores/memory.js';
import { ORIGIN, PUBLISH_KEY, realtimeCluster, subscribed } from './fixture.js';
import { appServer, cleanupAfterEach, json } from './proxy-helpers.js';
import { hsToken, TOKEN_SECRET } from './token-helpers.js';
import { connect, type TestClient } from './ws-client.js';

/**
 * Per-connection info in presence: each connection shows what the app lets it show (a session
 * connection: the gateway's `connectionInfo`; a token: its `info` claim; the connect proxy: its
 * `info`), asked for on demand by a web node, the server API or a client that may read the channel.
 */
const cleanup = cleanupAfterEach();
type Reply = Extract<ServerMessage, { type: 'reply' }>;

async function setup() {
  const proxy = await appServer((req, res) => {
    const who = /APPSESSION=(\w+)/.exec(req.headers.cookie ?? '')?.[1];
    if (who === 'carl') json(res, { user: 'carl', info: { via: 'proxy' } });
    else if (who === 'heavy') json(res, { user: 'heavy', info: { blob: 'x'.repeat(2000) } });
    else json(res, { error: { code: 4501, reason: 'sign in first' } });
  });
  cleanup.push(() => proxy.close());
  const rt = realtimeCluster({ store: memoryStore() });
  cleanup.push(() => rt.close());
  const connectionInfo = (who: { userId: string | null }) => {
    if (who.userId === 'buggy') throw new Error('no name for buggy');
    return { name: who.userId?.toUpperCase() };
  };
  const cookies = await rt.gateway({ connectionInfo, tokens: { secret: TOKEN_SECRET } });
  const proxied = await rt.gateway({ connectProxy: { url: proxy.url, timeoutMs: 1000 } });
  const open = async (url: string, o: { cookie?: string; origin?: string } = {}) => {
    const c = await connect(url, o);
    cleanup.push(async () => c.ws.terminate());
    return c;
  };
  const join = async (c: TestClient, channel: string) => {
    c.send({ type: 'sub', channel });
    await c.waitFor(subscribed(channel));
  };
  return { rt, cookies, proxied, open, join };
}

describe('presence: per-connection info', () => {
  it('lists every connection with its info, from the hook, a token claim and the connect proxy', async () => {
    const { rt, cookies, proxied, open, join } = await setup();
    const room = `room:info-${randomUUID().slice(0, 8)}`;
    const ann = await rt.login('ann');
    const annTab1 = await open(cookies.url, { cookie: ann.cookie, origin: ORIGIN });
    const annTab2 = await open(cookies.url, { cookie: ann.cookie, origin: ORIGIN });
    const phone = await open(`${cookies.url}?token=${await hsToken({ sub: 'bob', info: { device: 'phone' } })}`);
    const carl = await open(proxied.url, { cookie: 'APPSESSION=carl', origin: ORIGIN });
    for (const c of [annTab1, annTab2, phone, carl]) await join(c, room);

    const answer = await createPublisher(await rt.bus()).presence(room, { clients: true, timeoutMs: 2000 });
    expect(answer.complete).toBe(true);
    expect(answer.users).toEqual(['ann', 'bob', 'carl']);
    const shown = (answer.clients ?? []).map(({ user, info }) => ({ user, info }));
    expect(shown).toEqual([
      { user: 'ann', info: { name: 'ANN' } },
      { user: 'ann', info: { name: 'ANN' } },
      // The token's own claim wins over the hook.
      { user: 'bob', info: { device: 'phone' } },
      { user: 'carl', info: { via: 'proxy' } },
    ]);
    const ids = (answer.clients ?? []).map((c: PresenceClient) => c.connection);
    expect(new Set(ids).size).toBe(4); // two tabs of one user are two connections

    // Without `clients`, the answer stays what it was: users and counts only.
    const plain = await createPublisher(await rt.bus()).presence(room, { timeoutMs: 2000 });
    expect(plain.clients).toBeUndefined();
    expect(plain.connections).toBe(4);
  });

  it('answers the server API and a client that may read the channel; refuses one that may not', async () => {
    const { rt, cookies, open, join } = await setup();
    const room = `room:api-${randomUUID().slice(0, 8)}`;
    const dee = await rt.login('dee');
    const c = await open(cookies.url, { cookie: dee.cookie, origin: ORIGIN });
    await join(c, room);

    const res = await fetch(`${cookies.http}/presence`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: room, clients: true }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { clients: PresenceClient[] };
    expect(body.clients.map(({ user, info }) => ({ user, info }))).toEqual([{ user: 'dee', info: { name: 'DEE' } }]);
    const bad = await fetch(`${cookies.http}/presence`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ channel: room, clients: 'yes' }),
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: string }).error).toMatch(/clients must be true or false/);

    c.send({ type: 'clients', id: 1, channel: room });
    const reply = (await c.waitFor((m) => m.type === 'reply' && m.id === 1)) as Reply;
    expect(reply).toMatchObject({ result: { complete: true, clients: [{ user: 'dee', info: { name: 'DEE' } }] } });
    // Not joined, and `authorize` allows only room: channels.
    c.send({ type: 'clients', id: 2, channel: 'secret:1' });
    expect(await c.waitFor((m) => m.type === 'reply' && m.id === 2)).toMatchObject({ error: { code: 'forbidden' } });
    c.send({ type: 'clients', id: 3, channel: '_shoal:presence' });
    expect(await c.waitFor((m) => m.type === 'reply' && m.id === 3)).toMatchObject({ error: {} });
  });

  it('bad info: a hook that throws opens without info; an oversized claim or proxy answer is refused', async () => {
    const { rt, cookies, proxied, open, join } = await setup();
    const room = `room:bad-${randomUUID().slice(0, 8)}`;
    const buggy = await rt.login('buggy');
    const c = await open(cookies.url, { cookie: buggy.cookie, origin: ORIGIN });
    await join(c, room);
    const answer = await createPublisher(await rt.bus()).presence(room, { clients: true, timeoutMs: 2000 });
    expect(answer.clients?.map(({ user, info }) => ({ user, info }))).toEqual([{ user: 'buggy', info: null }]);

    const big = await hsToken({ sub: 'big', info: { blob: 'x'.repeat(2000) } });
    const refused = await open(`${cookies.url}?token=${big}`);
    expect((await refused.closed).reason).toMatch(
      /info claim: connection info is \d+ bytes as JSON; keep it within 1024/,
    );

    const heavy = await open(proxied.url, { cookie: 'APPSESSION=heavy', origin: ORIGIN });
    expect((await heavy.closed).code).toBe(4013);
  });
});
