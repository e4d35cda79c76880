import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, Server as NetServer, type Socket } from 'node:net';
import type { AppDefinition } from '../app/define.js';
import { logLevelFromEnv } from '../app/env.js';
import type { NodeConfig } from '../app/open.js';
import { createWebNode } from '../app/web.js';
import { answerHealth, type HealthProbes, listen } from '../core/http.js';
import { createLogger, type Logger, lineWriter } from '../core/logger.js';
import { metrics } from '../core/metrics.js';
import { sleep } from '../core/timing.js';
import type { DashboardHandler } from './dashboard.js';
import { type WebDashboardSettings, webNodeDashboard } from './web-dashboard.js';

export interface RunningNode {
  port: number;
  /** Starts the graceful drain; resolves when the node has stopped. */
  drain(): Promise<void>;
}

export interface WebNodeOptions {
  app: AppDefinition;
  /** This node's configuration (the CLI reads it from SHOAL_* variables: nodeConfigFromEnv). */
  config: Omit<NodeConfig, 'role'>;
  port: number;
  host?: string;
  /** Time after readiness turns false before the listener closes, so balancers stop sending. */
  drainDelayMs?: number;
  /** Hard limit for the whole drain. */
  drainTimeoutMs?: number;
  /** Default: pino JSON lines on stdout at SHOAL_LOG_LEVEL. */
  logger?: Logger;
  /** Serves the ops dashboard at /_shoal/ (see web-dashboard.ts); off when undefined. */
  dashboard?: WebDashboardSettings | undefined;
}

/**
 * Runs one web node: the app's handler plus /healthz (alive) and /readyz
 * (dependencies reachable, not draining). SIGTERM drains: readiness false
 * first, then stop accepting, finish in-flight requests, exit before the deadline.
 * With dashboard settings it also answers /_shoal/ before the app sees the request.
 */
export async function runWebNode(o: WebNodeOptions): Promise<RunningNode> {
  const logger = o.logger ?? createLogger({ node: o.config.nodeId, role: 'web' }, logLevelFromEnv(o.config.env));
  const web = await createWebNode(o.app, { ...o.config, logger });
  const log = lineWriter(logger);
  const m = metrics();
  let draining = false;
  /** Set once the listener is closed: every response then ends its connection. */
  let closing = false;
  const sockets = new Set<Socket>();
  let inFlight = 0;
  /** Made once the port is known (it may be 0 = any); no request arrives before that. */
  let dashboard: DashboardHandler | undefined;

  /** True when the ops dashboard answered. A failure there must not take the node down with it. */
  const servedByDashboard = (req: IncomingMessage, res: ServerResponse): boolean => {
    if (!dashboard) return false;
    try {
      return dashboard(req, res);
    } catch (err) {
      logger.error({ err: String(err) }, 'dashboard request failed');
      if (!res.headersSent) res.writeHead(500).end();
      return true;
    }
  };

  // The same /healthz, /readyz and /metrics answers as a gateway's.
  const probes: HealthProbes = {
    id: o.config.nodeId,
    async ready() {
      if (draining) throw new Error('draining');
      await web.ready();
    },
    metrics: { contentType: m.registry.contentType, render: () => m.registry.metrics() },
  };
  const probe = (req: IncomingMessage, res: ServerResponse): Promise<boolean> =>
    answerHealth(req.url ?? '', res, probes);

  const server = createServer((req, res) => {
    inFlight++;
    if (closing) res.setHeader('connection', 'close');
    // The dashboard's own requests are not the app's traffic: they stay out of the request metrics.
    // (Its scrapes of /metrics and /readyz count, as every probe does.) 'close' comes later, always.
    if (servedByDashboard(req, res)) {
      res.once('close', () => inFlight--);
      return;
    }
    m.inFlight.inc();
    const stop = m.httpDuration.startTimer({ method: req.method ?? 'GET' });
    res.once('close', () => {
      inFlight--;
      m.inFlight.dec();
      stop();
      m.httpRequests.inc({ method: req.method ?? 'GET', status: String(res.statusCode) });
    });
    probe(req, res).then(
      (handled) => {
        if (!handled) web.handler(req, res);
      },
      (err: unknown) => {
        logger.error({ err: String(err) }, 'request failed');
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  });
  server.keepAliveTimeout = 65_000; // above common balancer idle timeouts (nginx 60 s)
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  const host = o.host ?? '127.0.0.1';
  await listen(server, o.port, host).catch(async (err: unknown) => {
    await web.close();
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  if (o.dashboard) dashboard = webNodeDashboard(o.dashboard, { name: o.config.nodeId, host, port });
  log({
    msg: 'web node listening',
    port,
    ...(o.dashboard ? { dashboard: '/_shoal/', watching: o.dashboard.nodes.length || 'itself' } : {}),
  });

  let drained: Promise<void> | undefined;
  const drain = () => {
    drained ??= (async () => {
      draining = true;
      const started = Date.now();
      const deadline = started + (o.drainTimeoutMs ?? 30_000);
      log({ msg: 'draining', inFlight });
      // 1. Readiness is false: balancers that poll it stop sending. Serve as usual meanwhile.
      const delay = o.drainDelayMs ?? 0;
      await sleep(delay);
      // 2. Stop accepting. A balancer that learns only from refused connections (nginx) retries
      //    them elsewhere, safe for any method. Not http.Server#close(): it also drops idle
      //    keep-alive connections, one of which the balancer may be writing a POST into.
      closing = true;
      const closed = new Promise<void>((resolve) => NetServer.prototype.close.call(server, () => resolve()));
      // 3. Leave idle connections to the balancer to close (nginx: upstream keepalive_timeout),
      //    for up to the drain delay again; each busy one ends after its response.
      const idleUntil = Math.min(deadline, Date.now() + delay);
      while (sockets.size > 0 && Date.now() < idleUntil) await sleep(20);
      server.closeIdleConnections();
      // 4. In-flight requests finish, up to the deadline.
      while (inFlight > 0 && Date.now() < deadline) await sleep(20);
      server.closeAllConnections();
      await closed;
      await web.close();
      log({ msg: 'drained', ms: Date.now() - started, abandoned: inFlight });
    })();
    return drained;
  };
  return { port, drain };
}
