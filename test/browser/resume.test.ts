/**
 * Two Chromium pages, one on WebSocket and one forced to SSE, follow one channel while a
 * publisher sends a numbered sequence; mid-stream the gateway holding both is SIGKILLed.
 * Both pages must end with every message exactly once, in order, and be open again on the
 * other gateway within 2 s. Run behind `shoal start --web 2 --gateways 2` (the dev balancer)
 * and behind deploy/nginx/shoal.conf in front of 2 web nodes and 2 gateways, all on Redis.
 *
 * SHOAL_RESUME_ROUNDS=N repeats the kill N times per front (the killed gateway is restarted
 * between rounds) and prints the resume times of every round.
 */

import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NginxProcess, nginxVersion, renderNginx, startNginx } from '../deploy/nginx-runner.js';
import { killAllShoal, type ShoalNode, startShoal } from '../deploy/shoal-node.js';
import { chromiumSkipReason, launchChromium } from '../helpers/chromium.js';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { ENGINE_URLS, engineSkipReason, skipBecause } from '../helpers/engines.js';
import { freePort, freePortRun } from '../helpers/processes.js';
import { deleteKeys } from '../helpers/redis-keys.js';
import { harnessBundle, type PageReport } from './resume-page.js';

const ROUNDS = Math.max(1, Number(process.env.SHOAL_RESUME_ROUNDS ?? 1));
const MESSAGES = 400;
const KILL_AFTER = 150;
const RESUME_BOUND_MS = 2000;
/** Node start-up through tsx, generous: on a busy shared machine four at once can take a while. */
const NODE_START_MS = 90_000;
const DASHBOARD_TOKEN = 'resume-test-dashboard-token';

const skip =
  chromiumSkipReason() ??
  (nginxVersion() ? undefined : skipBecause('nginx is not installed (apt-get install nginx)')) ??
  (await engineSkipReason('redis'));

/** What sits in front of the gateways: how to reach it, kill a gateway, and have it back. */
interface Front {
  base: string;
  /** SIGKILLs the gateway; resolves with the instant the signal was sent. */
  kill(gateway: string): Promise<number>;
  revive(gateway: string): Promise<void>;
  output(): string;
}

interface Figures {
  transport: string;
  /** Kill → the page's state leaves `open`. */
  noticedMs: number;
  /** Kill → `open` again (hello from the other gateway). */
  resumedMs: number;
  /** Kill → the first message delivered after the page noticed. */
  deliveringMs: number;
}

const runId = randomUUID().slice(0, 8);
let browser: Browser | undefined;
let harness = '';
const results: Record<string, Figures[]> = {};

beforeAll(async () => {
  if (skip) return;
  [browser, harness] = await Promise.all([launchChromium(), harnessBundle()]);
}, 60_000);

afterAll(async () => {
  await browser?.close().catch(() => {});
  for (const [front, rounds] of Object.entries(results)) {
    for (const f of rounds) console.info(`[resume] ${front} ${JSON.stringify(f)}`);
  }
  if (skip) return;
  const redis = new Redis(ENGINE_URLS.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect().catch(() => {});
  await deleteKeys(redis, `*resume-${runId}*`).catch(() => {});
  redis.disconnect();
});

/** A signed-in page of its own (own context: own cookie jar) on the front's origin, with the harness. */
async function openPage(base: string, user: string): Promise<{ context: BrowserContext; page: Page }> {
  if (!browser) throw new Error('no browser');
  const context = await browser.newContext();
  const page = await context.newPage();
  if (process.env.SHOAL_RESUME_DEBUG) page.on('console', (m) => console.info(`[page ${user}] ${m.text()}`));
  expect((await page.goto(`${base}/`))?.status()).toBe(200);
  await page.addScriptTag({ content: harness });
  const login = await page.evaluate(async (u) => (await fetch(`/login?user=${u}`, { method: 'POST' })).status, user);
  expect(login).toBe(200);
  return { context, page };
}

/** One round: both pages on one gateway, the sequence published, that gateway SIGKILLed mid-way. */
async function round(front: Front, pages: { ws: Page; sse: Page }, n: number): Promise<Figures[]> {
  const channel = `room:resume-${runId}-${n}`;
  const open = (page: Page, transport: 'websocket' | 'sse', target: string | null) =>
    page.evaluate(([t, ch, gw]) => (globalThis as unknown as { resume: Harness }).resume.open('/ws', t, ch, gw, 12), [
      transport,
      channel,
      target,
    ] as const);
  const held = await open(pages.ws, 'websocket', null);
  expect(held, 'the WebSocket page got a hello').toBeTruthy();
  const sseOn = await open(pages.sse, 'sse', held);
  expect(sseOn, `the SSE page did not land on ${held} in 12 attempts`).toBe(held);
  const gateway = held as string;

  let killing: Promise<number> | undefined;
  for (let i = 1; i <= MESSAGES; i++) {
    const res = await fetch(`${front.base}/_probe/publish`, {
      method: 'POST',
      body: JSON.stringify({ channel, event: 'seq', data: { n: i } }),
      signal: AbortSignal.timeout(10_000),
    });
    expect(res.status, `publish #${i}`).toBe(200);
    if (i === KILL_AFTER) killing = front.kill(gateway);
    await sleep(10);
  }
  const killedAt = (await killing) ?? Number.NaN;

  const reports: Record<'ws' | 'sse', PageReport> = {} as Record<'ws' | 'sse', PageReport>;
  for (const [name, page] of Object.entries(pages) as Array<['ws' | 'sse', Page]>) {
    await page
      .waitForFunction((total) => (globalThis as unknown as { resume: Harness }).resume.count() >= total, MESSAGES, {
        timeout: 20_000,
      })
      .catch(() => {});
    reports[name] = await page.evaluate(() => (globalThis as unknown as { resume: Harness }).resume.report());
  }
  const figures: Figures[] = [];
  for (const [name, r] of Object.entries(reports) as Array<['ws' | 'sse', PageReport]>) {
    const context = `${name} page, round ${n}: states ${JSON.stringify(r.states)}, hellos ${JSON.stringify(r.hellos)}`;
    expect(r.transport, context).toBe(name === 'ws' ? 'websocket' : 'sse');
    // Every message once, in order: nothing lost across the kill, nothing replayed twice.
    expect(r.got, context).toEqual(Array.from({ length: MESSAGES }, (_, i) => i + 1));
    const noticed = r.states.find(([s, at]) => at >= killedAt && s !== 'open');
    const resumed = r.states.find(([s, at]) => noticed && at >= noticed[1] && s === 'open');
    const movedTo = r.hellos.find(([, at]) => at >= killedAt)?.[0];
    expect(noticed, `${context}: never left "open" after the kill`).toBeDefined();
    expect(resumed, `${context}: never open again`).toBeDefined();
    expect(movedTo, context).not.toBe(gateway);
    const firstAfter = r.gotAt.find((at) => noticed && at >= noticed[1]) ?? Number.NaN;
    const f: Figures = {
      transport: r.transport,
      noticedMs: (noticed?.[1] ?? Number.NaN) - killedAt,
      resumedMs: (resumed?.[1] ?? Number.NaN) - killedAt,
      deliveringMs: firstAfter - killedAt,
    };
    expect(f.resumedMs, `${context}: resumed after ${f.resumedMs} ms`).toBeLessThan(RESUME_BOUND_MS);
    figures.push(f);
  }
  await front.revive(gateway);
  return figures;
}

function scenarios(name: string, start: () => Promise<Front>, stop: () => Promise<void>) {
  describe.skipIf(skip !== undefined)(name, () => {
    let front: Front;
    const contexts: BrowserContext[] = [];
    const pages = {} as { ws: Page; sse: Page };

    beforeAll(async () => {
      front = await start();
      for (const which of ['ws', 'sse'] as const) {
        const { context, page } = await openPage(front.base, `resume-${runId}-${which}`);
        contexts.push(context);
        pages[which] = page;
      }
    }, 180_000);

    afterAll(async () => {
      for (const c of contexts) await c.close().catch(() => {});
      await stop();
    });

    it(
      `WebSocket and SSE pages get all ${MESSAGES} messages once, in order, across a gateway SIGKILL, open again within ${RESUME_BOUND_MS} ms`,
      async () => {
        results[name] = [];
        for (let n = 1; n <= ROUNDS; n++) {
          try {
            results[name].push(...(await round(front, pages, n)));
          } catch (err) {
            throw new Error(`${(err as Error).message}\n--- output (tail) ---\n${front.output().slice(-3000)}`, {
              cause: err,
            });
          }
        }
      },
      60_000 + ROUNDS * 45_000,
    );
  });
}

// No SHOAL_NAMESPACE: `shoal gateway` reads sessions from the default namespace only.
const redisEnv = () => ({
  SHOAL_STORE: ENGINE_URLS.redis,
  SHOAL_BUS: ENGINE_URLS.redis,
  SHOAL_SECRETS: 'resume-test-secret-0123456789-abcdefghijklmnop',
  SHOAL_COOKIE_SECURE: 'false',
});

let cluster: DevCluster | undefined;
scenarios(
  'behind the dev balancer (shoal start --web 2 --gateways 2)',
  async () => {
    const port = await freePortRun(5);
    cluster = await startDevCluster({
      app: 'examples/probe/shoal.app.ts',
      web: 2,
      gateways: 2,
      port,
      env: { ...redisEnv(), SHOAL_DASHBOARD_TOKEN: DASHBOARD_TOKEN },
      timeoutMs: NODE_START_MS,
    });
    const c = cluster;
    const api = `${c.url}/_shoal/api`;
    const auth = { authorization: `Bearer ${DASHBOARD_TOKEN}` };
    return {
      base: c.url,
      output: () => c.output(),
      // The process the supervisor runs as that gateway (the dashboard lists its pid), killed here so
      // the instant of the signal is known exactly.
      async kill(gateway) {
        const state = (await (await fetch(`${api}/state`, { headers: auth })).json()) as {
          nodes: Array<{ name: string; pid?: number }>;
        };
        const pid = state.nodes.find((x) => x.name === gateway)?.pid;
        if (!pid) throw new Error(`no pid for ${gateway}: ${JSON.stringify(state)}`);
        const at = Date.now();
        process.kill(pid, 'SIGKILL');
        return at;
      },
      // The supervisor restarts it; wait until the dashboard sees it ready.
      async revive(gateway) {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const state = (await (await fetch(`${api}/state`, { headers: auth })).json()) as {
            nodes: Array<{ name: string; state: string }>;
          };
          if (state.nodes.find((x) => x.name === gateway)?.state === 'ready') return;
          if (Date.now() > deadline) throw new Error(`${gateway} did not come back: ${JSON.stringify(state)}`);
          await sleep(200);
        }
      },
    };
  },
  async () => {
    await cluster?.stop();
  },
);

let nginx: NginxProcess | undefined;
let dir = '';
scenarios(
  'behind nginx (deploy/nginx/shoal.conf) in front of 2 web nodes and 2 gateways',
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-resume-'));
    const nginxPort = await freePort();
    const webPorts = [await freePort(), await freePort()];
    const gatewayPorts = [await freePort(), await freePort()];
    const env = redisEnv();
    const gatewayEnv = { ...env, SHOAL_ORIGINS: `http://127.0.0.1:${nginxPort}` };
    const startGateway = (i: number) =>
      startShoal({
        command: 'gateway',
        name: `resume-${runId}-gw${i + 1}`,
        port: gatewayPorts[i] as number,
        env: gatewayEnv,
        timeoutMs: NODE_START_MS,
      });
    const nodes = new Map<string, ShoalNode>();
    const started = await Promise.all([
      ...webPorts.map((port, i) =>
        startShoal({ command: 'web', name: `resume-${runId}-web${i + 1}`, port, env, timeoutMs: NODE_START_MS }),
      ),
      startGateway(0),
      startGateway(1),
    ]);
    for (const node of started) nodes.set(node.name, node);
    const conf = renderNginx({ dir, port: nginxPort, web: webPorts, gateways: gatewayPorts });
    nginx = await startNginx(dir, conf, nginxPort);
    const n = nginx;
    const named = (gateway: string) => {
      const node = nodes.get(gateway);
      if (!node) throw new Error(`no gateway named ${gateway}`);
      return node;
    };
    return {
      base: n.url,
      output: () => [...nodes.values()].map((x) => `--- ${x.name}\n${x.output().slice(-800)}`).join('\n'),
      async kill(gateway) {
        const node = named(gateway);
        const at = Date.now();
        node.signal('SIGKILL');
        await node.exited();
        return at;
      },
      async revive(gateway) {
        const i = gatewayPorts.indexOf(named(gateway).port);
        nodes.set(gateway, await startGateway(i));
      },
    };
  },
  async () => {
    await nginx?.stop();
    await killAllShoal();
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

/** What test/browser/resume-page.ts puts on the page's global object. */
interface Harness {
  open(url: string, transport: string, channel: string, target: string | null, tries: number): Promise<string | null>;
  count(): number;
  report(): PageReport;
}
