import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { ConfigError } from '../core/errors.js';
import { hasBearer, sendJson } from '../core/http.js';
import { dashboardAsset } from './dashboard-assets.js';
import { scrapeMetrics } from './dashboard-metrics.js';
import { dashboardPage } from './dashboard-page.js';
import type { DashboardNode, DashboardState, NodeReport, NodeState } from './dashboard-ui/state.js';

export type { DashboardNode, DashboardState, NodeReport, NodeState } from './dashboard-ui/state.js';

export interface DashboardOptions {
  nodes(): DashboardNode[];
  /** Sends a signal to a node: only a local cluster can (the dashboard's kill buttons). */
  signal?(name: string, signal: 'SIGTERM' | 'SIGKILL'): boolean;
  /** When set, the API needs `Authorization: Bearer <token>` (SHOAL_DASHBOARD_TOKEN). */
  token?: string | undefined;
  /** Where it is mounted. Default "/_shoal". */
  basePath?: string;
  scrapeTimeoutMs?: number;
}

/** Answers a request under the base path (true) or leaves it alone (false). */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The ops dashboard: a page at `/_shoal/`, its data at `/_shoal/api/state` (every
 * node's state and raw metrics, scraped from each node's /metrics on request), and
 * `POST /_shoal/api/nodes/<name>/signal` for the kill buttons when a supervisor is
 * there to send signals. The server keeps no history: the page computes rates.
 */
export function createDashboard(o: DashboardOptions): DashboardHandler {
  const base = (o.basePath ?? '/_shoal').replace(/\/+$/, '');
  const timeoutMs = o.scrapeTimeoutMs ?? 800;
  const token = o.token;
  const authorized = (req: IncomingMessage) => !token || hasBearer(req, token);

  const report = async ({ host, ...node }: DashboardNode): Promise<NodeReport> => {
    if (node.state === 'dead') return { ...node, state: 'dead', metrics: null, error: 'not running' };
    const url = `http://${host}:${node.port}`;
    const [metrics, state] = await Promise.all([
      scrapeMetrics(url, timeoutMs).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))),
      node.state ?? readinessOf(url, timeoutMs),
    ]);
    return metrics instanceof Error
      ? { ...node, state, metrics: null, error: metrics.message }
      : { ...node, state, metrics };
  };
  const state = async (): Promise<DashboardState> => ({
    at: Date.now(),
    canSignal: Boolean(o.signal),
    nodes: await Promise.all(o.nodes().map(report)),
  });

  return (req, res) => {
    const path = pathOf(req.url);
    if (path !== base && !path.startsWith(`${base}/`)) return false;
    const rest = path.slice(base.length);
    if (rest === '') {
      redirect(res, `${base}/`);
      return true;
    }
    if (rest === '/' || rest === '/index.html') {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        sendJson(res, 405, { error: 'GET only' });
        return true;
      }
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'content-security-policy':
          "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:",
        'x-frame-options': 'DENY',
      });
      res.end(dashboardPage({ base, tokenRequired: Boolean(token) }));
      return true;
    }
    if (rest.startsWith('/assets/')) {
      void serveAsset(res, rest.slice('/assets/'.length));
      return true;
    }
    if (!authorized(req)) {
      sendJson(res, 401, { error: 'unauthorized', message: 'send "Authorization: Bearer <SHOAL_DASHBOARD_TOKEN>"' });
      return true;
    }
    if (rest === '/api/state' && req.method === 'GET') {
      state().then(
        (s) => sendJson(res, 200, s),
        (err: Error) => sendJson(res, 500, { error: err.message }),
      );
      return true;
    }
    const kill = /^\/api\/nodes\/([A-Za-z0-9_.-]+)\/signal$/.exec(rest);
    if (kill && req.method === 'POST') {
      void handleSignal(req, res, kill[1] as string);
      return true;
    }
    sendJson(res, 404, { error: 'not found' });
    return true;
  };

  /** The page's script and styles are public, like the page: the data behind them needs the token. */
  async function serveAsset(res: ServerResponse, name: string): Promise<void> {
    try {
      const asset = await dashboardAsset(name);
      if (!asset) return sendJson(res, 404, { error: 'not found' });
      res.writeHead(200, {
        'content-type': asset.type,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
      });
      res.end(asset.body);
    } catch (err) {
      sendJson(res, 500, { error: `dashboard asset ${name}: ${(err as Error).message}` });
    }
  }

  async function handleSignal(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    if (!o.signal) return sendJson(res, 404, { error: 'signals are only available in a local cluster (shoal start)' });
    // A cross-site form cannot send JSON without a CORS preflight, which this server never grants.
    if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
      return sendJson(res, 415, { error: 'send {"signal": "SIGTERM" | "SIGKILL"} as application/json' });
    }
    const origin = req.headers.origin;
    if (origin && origin !== `http://${req.headers.host}` && origin !== `https://${req.headers.host}`) {
      return sendJson(res, 403, { error: `origin ${origin} may not send signals` });
    }
    let signal: unknown;
    try {
      signal = (JSON.parse(await readBody(req, 1024)) as { signal?: unknown }).signal;
    } catch {
      return sendJson(res, 400, { error: 'body must be {"signal": "SIGTERM" | "SIGKILL"}' });
    }
    if (signal !== 'SIGTERM' && signal !== 'SIGKILL') {
      return sendJson(res, 400, { error: 'signal must be "SIGTERM" or "SIGKILL"' });
    }
    if (!o.nodes().some((n) => n.name === name)) return sendJson(res, 404, { error: `no node named ${name}` });
    const sent = o.signal(name, signal);
    sendJson(res, sent ? 200 : 409, sent ? { ok: true, node: name, signal } : { error: `${name} is not running` });
  }
}

/**
 * Puts the dashboard in front of a server's existing request handler (the dev
 * balancer): requests under its base path never reach the upstream nodes.
 */
export function mountDashboard(server: Server, dashboard: DashboardHandler): void {
  const previous = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (dashboard(req, res)) return;
    for (const listener of previous) listener.call(server, req, res);
  });
}

/**
 * The nodes a node-served dashboard watches, from SHOAL_DASHBOARD_NODES:
 * `web/web-1=http://10.0.0.5:3000,gateway/gw-a=http://10.0.0.6:4000` (role/name=URL).
 */
export function dashboardNodesFromEnv(value: string | undefined): DashboardNode[] {
  const nodes: DashboardNode[] = [];
  for (const entry of (value ?? '').split(',').map((s) => s.trim())) {
    if (!entry) continue;
    const m = /^(web|gateway)\/([A-Za-z0-9_.-]+)=(https?:\/\/[^\s,]+)$/.exec(entry);
    const url = m ? new URL(m[3] as string) : undefined;
    if (!m || !url || url.protocol !== 'http:') {
      throw new ConfigError(
        `SHOAL_DASHBOARD_NODES entry "${entry}" is not role/name=http://host:port (role is web or gateway), ` +
          'e.g. web/web-1=http://10.0.0.5:3000',
      );
    }
    nodes.push({
      role: m[1] as 'web' | 'gateway',
      name: m[2] as string,
      host: url.hostname,
      port: Number(url.port || 80),
    });
  }
  return nodes;
}

/** The request's path, or '' for a target that is no URL (`GET //[ HTTP/1.1` parses, and must not throw). */
function pathOf(target: string | undefined): string {
  try {
    return new URL(target ?? '/', 'http://x').pathname;
  } catch {
    return '';
  }
}

async function readinessOf(url: string, timeoutMs: number): Promise<NodeState> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(timeoutMs) });
    if (res.ok) return 'ready';
    const body = (await res.json().catch(() => ({}))) as { problem?: string };
    return body.problem === 'draining' ? 'draining' : 'not-ready';
  } catch {
    return 'dead';
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > limit) {
        reject(new Error('body too large'));
        req.destroy();
      }
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

function redirect(res: ServerResponse, location: string): void {
  res.writeHead(301, { location }).end();
}
