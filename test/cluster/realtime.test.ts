import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type Cursor, encodeCursors, type ServerMessage } from '../../src/protocol/index.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { CLI, type NodeProcess, startNode, stopAll } from '../helpers/processes.js';
import { connect, type TestClient } from '../realtime/ws-client.js';

/**
 * The realtime acceptance test: 2 probe web nodes and 2 gateway processes on one
 * store and one bus. 200 signed-in WebSocket clients, 10,000 messages published
 * through both web nodes while one gateway is SIGKILLed; its clients resume on the
 * survivor, and in the end every client has every message of its channels exactly
 * once, in order.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-realtime-'));
const SECRET = 'realtime-cluster-secret-0123456789abcdefgh';
const ORIGIN = 'https://app.example.com';
const CLIENTS = 200;
const MESSAGES = 10_000;
/** Every tenth message goes to the shared room; the rest to one user's channel each. */
const ROOM_EVERY = 10;
/** Messages per POST /_probe/publish, and requests in flight (split over both web nodes). */
const BATCH = 25;
const PUBLISH_CONCURRENCY = 8;
const KILL_AFTER = 4_000;

const backends: Array<{ name: string; store: string; bus: string; skip?: string | undefined }> = [
  { name: 'sqlite', store: `sqlite:${join(dir, 'store.db')}`, bus: `sqlite:${join(dir, 'bus.db')}` },
  { name: 'redis', store: ENGINE_URLS.redis, bus: ENGINE_URLS.redis, skip: await engineSkipReason('redis') },
];

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

interface Tracked {
  user: string;
  cookie: string;
  gateway: number;
  client: TestClient | null;
  /** Per joined app channel: the last position delivered. */
  cursors: Map<string, Cursor>;
  /** Per channel: the ids in the order they arrived. */
  ids: Map<string, number[]>;
  problems: string[];
  /** When the client saw its gateway go away, and when it had resumed every channel on the survivor. */
  closedAt: number;
  resumedAt: number;
  /** Channels not yet re-subscribed since the reconnect. */
  resuming: Set<string>;
}

/** Polls every 20 ms (cluster state moves through processes); throws naming `what` on timeout. */
const until = (check: () => boolean, timeoutMs: number, what: string) =>
  eventually(check, { timeoutMs, intervalMs: 20, message: what });

async function login(web: NodeProcess, user: string): Promise<string> {
  const res = await fetch(`${web.url}/login?user=${encodeURIComponent(user)}`, { method: 'POST' });
  if (res.status !== 200) throw new Error(`login ${user}: HTTP ${res.status} ${await res.text()}`);
  const cookie = (res.headers.getSetCookie()[0] ?? '').split(';')[0] ?? '';
  if (!cookie) throw new Error(`login ${user}: no cookie`);
  return cookie;
}

/** Runs `task(i)` for i in [0, n) with at most `limit` in flight. */
async function pool(n: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < n) await task(next++);
    }),
  );
}

for (const backend of backends) {
  describe.skipIf(backend.skip !== undefined)(`2 web nodes + 2 gateways on one ${backend.name} store and bus`, () => {
    const run = randomUUID().slice(0, 8);
    const room = `room:all-${run}`;
    const env = {
      SHOAL_STORE: backend.store,
      SHOAL_BUS: backend.bus,
      SHOAL_SECRETS: SECRET,
      SHOAL_ORIGINS: ORIGIN,
      SHOAL_DRAIN_WINDOW: '1s',
    };
    let webs: NodeProcess[] = [];
    let gateways: NodeProcess[] = [];
    const wsUrl = (g: NodeProcess, query = '') => `ws://127.0.0.1:${g.port}/ws${query}`;

    it('starts two web nodes and two gateways', async () => {
      const app = ['--app', 'examples/probe/shoal.app.ts'];
      [webs, gateways] = await Promise.all([
        Promise.all(
          [1, 2].map((i) => startNode({ name: `${backend.name}-web${i}`, script: CLI, args: ['web', ...app], env })),
        ),
        Promise.all(
          [1, 2].map((i) =>
            startNode({
              name: `${backend.name}-gw${i}`,
              script: CLI,
              args: ['gateway', ...app],
              env,
              readyPath: '/readyz',
            }),
          ),
        ),
      ]);
      expect(webs).toHaveLength(2);
      expect(gateways).toHaveLength(2);
    }, 40_000);

    it('logout on a web node closes that session’s sockets on both gateways within 1 s', async () => {
      const cookie = await login(webs[0] as NodeProcess, `leaver-${run}`);
      const tabs = await Promise.all(gateways.map((g) => connect(wsUrl(g), { cookie, origin: ORIGIN })));
      await Promise.all(tabs.map((t) => t.waitFor((m) => m.type === 'subscribed' && m.channel.startsWith('user:'))));
      const started = Date.now();
      const out = await fetch(`${(webs[1] as NodeProcess).url}/logout`, { method: 'POST', headers: { cookie } });
      expect(out.status).toBe(200);
      const closed = await Promise.all(tabs.map((t) => t.closed));
      const ms = Date.now() - started;
      expect(closed.map((c) => c.code)).toEqual([4001, 4001]);
      expect(ms).toBeLessThan(1000);
      console.log(`[realtime ${backend.name}] logout → both sockets closed in ${ms} ms`);
    });

    it('delivers 10,000 messages exactly once and in order to 200 clients while a gateway is killed', async () => {
      const users = Array.from({ length: CLIENTS }, (_, i) => `u${i}-${run}`);
      const cookies = new Array<string>(CLIENTS);
      await pool(CLIENTS, 16, async (i) => {
        cookies[i] = await login(webs[i % 2] as NodeProcess, users[i] as string);
      });

      let killedAt = 0;
      let finished = false;
      const survivor = gateways[0] as NodeProcess;
      const victim = gateways[1] as NodeProcess;
      const tracked: Tracked[] = users.map((user, i) => ({
        user,
        cookie: cookies[i] as string,
        gateway: i % 2,
        client: null,
        cursors: new Map(),
        ids: new Map([
          [room, []],
          [`user:${user}`, []],
        ]),
        problems: [],
        closedAt: 0,
        resumedAt: 0,
        resuming: new Set(),
      }));

      const onFrame = (t: Tracked) => (m: ServerMessage) => {
        if (m.type === 'subscribed') {
          if (!t.ids.has(m.channel)) return; // the session channel
          const had = t.cursors.get(m.channel);
          if (had && !m.recovered) t.problems.push(`${m.channel}: resume not recovered`);
          if (had && (m.epoch !== had.epoch || m.offset !== had.offset))
            t.problems.push(`${m.channel}: resumed at ${m.offset}, cursor was ${had.offset}`);
          t.cursors.set(m.channel, { epoch: m.epoch, offset: m.offset });
          if (t.resuming.delete(m.channel) && t.resuming.size === 0) t.resumedAt = Date.now();
          return;
        }
        if (m.type === 'error') t.problems.push(`error ${m.code}: ${m.message}`);
        if (m.type !== 'msg') return;
        const ids = t.ids.get(m.channel);
        const cur = t.cursors.get(m.channel);
        if (!ids || !cur) return void t.problems.push(`unexpected message on ${m.channel}`);
        if (m.epoch !== cur.epoch) t.problems.push(`${m.channel}: epoch changed`);
        if (m.offset !== cur.offset + 1) t.problems.push(`${m.channel}: offset ${m.offset} after ${cur.offset}`);
        cur.offset = m.offset;
        ids.push((m.data as { id: number }).id);
      };

      const open = async (t: Tracked, gateway: NodeProcess, resume: boolean) => {
        const query = resume
          ? `?resume=${encodeCursors(new Map([...t.cursors].filter(([c]) => t.ids.has(c))))}`
          : `?channels=${room}`;
        t.client = await connect(wsUrl(gateway, query), {
          cookie: t.cookie,
          origin: ORIGIN,
          keep: false,
          onFrame: onFrame(t),
        });
        void t.client.closed.then(({ code }) => {
          if (!killedAt || finished || code === 1000) return;
          // What the SDK does: reconnect (here at once, to the survivor) and resume from the cursors.
          t.gateway = 0;
          t.closedAt = Date.now();
          t.resuming = new Set(t.ids.keys());
          open(t, survivor, true).catch((err: Error) => t.problems.push(`reconnect failed: ${err.message}`));
        });
      };
      await pool(CLIENTS, 20, (i) =>
        open(tracked[i] as Tracked, (tracked[i] as Tracked).gateway ? victim : survivor, false),
      );
      await until(() => tracked.every((t) => t.cursors.size === 2), 10_000, 'every client subscribed');

      // Publish from both web nodes; remember each message's channel and offset.
      const published = new Map<string, Array<{ id: number; offset: number }>>();
      let done = 0;
      let killing: Promise<void> | undefined;
      const started = Date.now();
      await pool(MESSAGES / BATCH, PUBLISH_CONCURRENCY, async (b) => {
        const batch = Array.from({ length: BATCH }, (_, j) => {
          const id = b * BATCH + j;
          const channel = id % ROOM_EVERY === 0 ? room : `user:${users[Math.floor(id / ROOM_EVERY) % CLIENTS]}`;
          return { channel, event: 'n', data: { id } };
        });
        const web = webs[b % 2] as NodeProcess;
        const res = await fetch(`${web.url}/_probe/publish`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(batch),
          signal: AbortSignal.timeout(10_000),
        });
        if (res.status !== 200) throw new Error(`publish batch ${b}: HTTP ${res.status} ${await res.text()}`);
        const { results } = (await res.json()) as { results: Array<{ channel: string; offset: number }> };
        results.forEach((r, j) => {
          const list = published.get(r.channel) ?? [];
          list.push({ id: (batch[j] as { data: { id: number } }).data.id, offset: r.offset });
          published.set(r.channel, list);
        });
        done += BATCH;
        if (!killing && done >= KILL_AFTER) {
          killedAt = Date.now();
          killing = victim.stop('SIGKILL');
        }
      });
      const publishMs = Date.now() - started;
      await killing;

      const victims = tracked.filter((_, i) => i % 2 === 1);
      await until(() => victims.every((t) => t.resumedAt > 0), 20_000, 'clients of the killed gateway resumed');
      const expected = (channel: string) => published.get(channel)?.length ?? 0;
      await until(
        () => tracked.every((t) => [...t.ids].every(([ch, ids]) => ids.length >= expected(ch))),
        20_000,
        'every client received every message',
      );
      const deliveredMs = Date.now() - started;

      expect(killedAt).toBeLessThan(started + publishMs); // killed mid-run, not after it
      // Only the killed gateway's clients had to move.
      expect(tracked.filter((_, i) => i % 2 === 0).every((t) => t.closedAt === 0)).toBe(true);
      const problems = tracked.flatMap((t) => t.problems.map((p) => `${t.user}: ${p}`));
      expect(problems.slice(0, 10)).toEqual([]);
      for (const t of tracked) {
        for (const [channel, ids] of t.ids) {
          const want = [...(published.get(channel) ?? [])].sort((a, b) => a.offset - b.offset).map((m) => m.id);
          expect(want.length).toBeGreaterThan(0);
          // Exactly the published ids, each once, in offset order.
          expect(ids).toEqual(want);
        }
      }
      const stats = (values: number[]) => {
        const v = [...values].sort((a, b) => a - b);
        return `median ${v[Math.floor(v.length / 2)]} ms, max ${v.at(-1)} ms`;
      };
      const total = tracked.reduce((n, t) => n + [...t.ids.values()].reduce((m, ids) => m + ids.length, 0), 0);
      console.log(
        `[realtime ${backend.name}] ${MESSAGES} messages published in ${publishMs} ms ` +
          `(${Math.round((MESSAGES / publishMs) * 1000)}/s); all ${total} deliveries in ${deliveredMs} ms. ` +
          `${victims.length} clients of the killed gateway: close seen → resumed on the survivor ` +
          `${stats(victims.map((t) => t.resumedAt - t.closedAt))}; kill → last resumed ` +
          `${Math.max(...victims.map((t) => t.resumedAt)) - killedAt} ms (includes this process's backlog of frames)`,
      );
      finished = true;
      for (const t of tracked) t.client?.ws.terminate();
    }, 60_000);

    it('SIGTERM drains a gateway: its sockets close with 1012 over the drain window, then it exits', async () => {
      const gateway = gateways[0] as NodeProcess;
      const tabs = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const cookie = await login(webs[i % 2] as NodeProcess, `drained${i}-${run}`);
          return connect(wsUrl(gateway), { cookie, origin: ORIGIN });
        }),
      );
      await Promise.all(tabs.map((t) => t.waitFor((m) => m.type === 'hello')));
      const started = Date.now();
      const exited = gateway.stop('SIGTERM');
      const closed = await Promise.all(tabs.map((t) => t.closed.then((c) => ({ ...c, ms: Date.now() - started }))));
      expect(closed.map((c) => c.code)).toEqual([1012, 1012, 1012]);
      await exited;
      expect(gateway.child.exitCode).toBe(0);
      // Spread over SHOAL_DRAIN_WINDOW=1s: the last close comes well after the first.
      const times = closed.map((c) => c.ms).sort((a, b) => a - b);
      expect((times[2] as number) - (times[0] as number)).toBeGreaterThan(300);
    }, 20_000);

    it('stops the nodes', async () => {
      await Promise.all([...webs, ...gateways].map((n) => n.stop('SIGTERM')));
    }, 20_000);
  });
}
