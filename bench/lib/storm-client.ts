/**
 * Load-generator process for the reconnect-storm scenario (`node --import tsx
 * bench/lib/storm-client.ts`, driven over IPC): runs the real browser SDK (src/client)
 * for its share of browsers, with the `ws` WebSocket injected. Between the SDK and the
 * gateways sits what a load balancer does: round-robin over the gateways marked ready,
 * and a refused connection retried on the next one (nginx's proxy_next_upstream error),
 * which marks the refusing gateway down. Each browser checks the ids it receives (no
 * gap, no duplicate, in order) and notes when it had resumed after losing its gateway.
 */
import { WebSocket } from 'ws';
import { connect } from '../../src/client/index.js';
import type { ShoalClient, WebSocketLike } from '../../src/client/types.js';
import { nowMs } from './histogram.js';

export type StormCommand =
  | { cmd: 'connect'; cookies: string[]; upstreams: string[]; ready: boolean[]; room: string; origin: string }
  | { cmd: 'routes'; ready: boolean[] }
  | { cmd: 'report' }
  | { cmd: 'close' };

export interface BrowserReport {
  /** Payloads received, and the last id. */
  received: number;
  lastId: number;
  /** Ids skipped (a gap the SDK let through), repeated, or behind the last one. */
  missing: number;
  duplicates: number;
  /** Connections opened so far (1 before the storm). */
  connections: number;
  /** When the socket to the first gateway closed, and when the room was subscribed again afterwards. */
  lostAt: number | null;
  resumedAt: number | null;
  /** The `recovered` flag of that re-subscription. */
  recovered: boolean | null;
  /** `reset` events (history could not be replayed). */
  resets: number;
  gateway: string | null;
}

export type StormReply =
  | { type: 'started' }
  | { type: 'connected'; ok: number; failed: number }
  | { type: 'report'; browsers: BrowserReport[] }
  | { type: 'closed' };

const reply = (m: StormReply) => process.send?.(m);

/** Round-robin over the ready upstreams; a refusal marks one down (passive health check). */
const router = { upstreams: [] as string[], ready: [] as boolean[], turn: 0 };

function pick(skip: Set<number>): number | undefined {
  const candidates = router.upstreams.map((_, i) => i).filter((i) => router.ready[i] && !skip.has(i));
  if (candidates.length === 0) return undefined;
  return candidates[router.turn++ % candidates.length];
}

interface Browser {
  report: BrowserReport;
  client: ShoalClient | null;
  subscribedOnce: boolean;
}

/** A WebSocket as the SDK sees it, behind the balancer: the URL's host is replaced by the upstream it picks. */
function balancedSocket(browser: Browser, cookie: string, origin: string, room: string) {
  const subscribedMark = `"type":"subscribed","channel":${JSON.stringify(room)}`;
  return class BalancedSocket implements WebSocketLike {
    onopen: unknown = null;
    onmessage: unknown = null;
    onclose: unknown = null;
    onerror: unknown = null;
    #ws!: WebSocket;
    #opened = false;
    readonly #tried = new Set<number>();

    constructor(readonly url: string) {
      this.#attempt();
    }

    get readyState(): number {
      return this.#ws.readyState;
    }

    send(data: string): void {
      this.#ws.send(data);
    }

    close(code?: number, reason?: string): void {
      this.#ws.close(code, reason);
    }

    #attempt(): void {
      const upstream = pick(this.#tried);
      const target = new URL(this.url);
      const base = new URL(router.upstreams[upstream ?? 0] ?? 'ws://127.0.0.1:9');
      target.host = base.host;
      if (upstream !== undefined) this.#tried.add(upstream);
      const ws = new WebSocket(target.href, { headers: { cookie, origin }, perMessageDeflate: false });
      this.#ws = ws;
      let refused = false;
      ws.on('error', (err: NodeJS.ErrnoException) => {
        refused = err.code === 'ECONNREFUSED';
      });
      ws.on('open', () => {
        this.#opened = true;
        browser.report.connections++;
        (this.onopen as (() => void) | null)?.();
      });
      ws.on('message', (data: Buffer) => {
        const text = data.toString();
        this.#observe(text);
        (this.onmessage as ((e: { data: string }) => void) | null)?.({ data: text });
      });
      ws.on('close', (code: number, reason: Buffer) => {
        if (!this.#opened && refused && upstream !== undefined) {
          router.ready[upstream] = false;
          if (pick(this.#tried) !== undefined) return this.#attempt();
        }
        if (this.#opened && browser.report.lostAt === null) browser.report.lostAt = nowMs();
        (this.onclose as ((e: { code: number; reason: string }) => void) | null)?.({
          code: this.#opened ? code : 1006,
          reason: reason.toString(),
        });
      });
    }

    /** Frames the SDK keeps to itself: which gateway, and when the room was subscribed again. */
    #observe(text: string): void {
      if (text.startsWith('{"type":"hello"')) {
        browser.report.gateway = (JSON.parse(text) as { gateway: string }).gateway;
      } else if (text.includes(subscribedMark)) {
        if (!browser.subscribedOnce) browser.subscribedOnce = true;
        else if (browser.report.resumedAt === null) {
          browser.report.resumedAt = nowMs();
          browser.report.recovered = (JSON.parse(text) as { recovered: boolean }).recovered;
        }
      }
    }
  };
}

const browsers: Browser[] = [];

async function connectAll(cmd: Extract<StormCommand, { cmd: 'connect' }>): Promise<void> {
  router.upstreams = cmd.upstreams;
  router.ready = cmd.ready;
  for (const cookie of cmd.cookies) {
    const browser: Browser = {
      report: {
        received: 0,
        lastId: 0,
        missing: 0,
        duplicates: 0,
        connections: 0,
        lostAt: null,
        resumedAt: null,
        recovered: null,
        resets: 0,
        gateway: null,
      },
      client: null,
      subscribedOnce: false,
    };
    const client = connect(cmd.upstreams[0] ?? '', {
      transport: 'websocket',
      WebSocket: balancedSocket(browser, cookie, cmd.origin, cmd.room),
    });
    client.subscribe<{ m: { id: number } }>(cmd.room, (m) => {
      const r = browser.report;
      const id = m.data.id;
      r.received++;
      if (id <= r.lastId) r.duplicates++;
      else {
        r.missing += id - r.lastId - 1;
        r.lastId = id;
      }
    });
    client.on('reset', () => {
      browser.report.resets++;
    });
    browser.client = client;
    browsers.push(browser);
    // Spread the first connections a little, as page loads would be.
    if (browsers.length % 50 === 0) await new Promise((r) => setTimeout(r, 5));
  }
  const deadline = Date.now() + 30_000;
  while (browsers.some((b) => !b.subscribedOnce) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const ok = browsers.filter((b) => b.subscribedOnce).length;
  reply({ type: 'connected', ok, failed: browsers.length - ok });
}

process.on('message', (cmd: StormCommand) => {
  switch (cmd.cmd) {
    case 'connect':
      void connectAll(cmd);
      return;
    case 'routes':
      router.ready = [...cmd.ready];
      return;
    case 'report':
      reply({ type: 'report', browsers: browsers.map((b) => ({ ...b.report })) });
      return;
    case 'close':
      for (const b of browsers) b.client?.close();
      reply({ type: 'closed' });
      setTimeout(() => process.exit(0), 50);
      return;
  }
});

process.on('disconnect', () => process.exit(0));
reply({ type: 'started' });
