import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { NodeContext, ShoalApp } from './app-module.js';

export interface RunningNode {
  port: number;
  /** Starts the graceful drain; resolves when the node has stopped. */
  drain(): Promise<void>;
}

export interface WebNodeOptions {
  app: ShoalApp;
  ctx: NodeContext;
  port: number;
  host?: string;
  /** Time after readiness turns false before the listener closes, so balancers stop sending. */
  drainDelayMs?: number;
  /** Hard limit for the whole drain. */
  drainTimeoutMs?: number;
  log?: (line: Record<string, unknown>) => void;
}

/**
 * Runs one web node: the app's handler plus /healthz (alive) and /readyz
 * (dependencies reachable, not draining). SIGTERM drains: readiness false
 * first, then stop accepting, finish in-flight requests, exit before the deadline.
 */
export async function runWebNode(o: WebNodeOptions): Promise<RunningNode> {
  const web = await o.app.web(o.ctx);
  const log = o.log ?? ((line) => console.log(JSON.stringify(line)));
  let draining = false;
  let inFlight = 0;

  const probe = async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, node: o.ctx.nodeId }));
      return true;
    }
    if (req.url !== '/readyz') return false;
    let problem = draining ? 'draining' : '';
    if (!problem) {
      try {
        await web.ready?.();
      } catch (err) {
        problem = (err as Error).message;
      }
    }
    res
      .writeHead(problem ? 503 : 200, { 'content-type': 'application/json' })
      .end(JSON.stringify({ ready: !problem, node: o.ctx.nodeId, ...(problem ? { problem } : {}) }));
    return true;
  };

  const server = createServer((req, res) => {
    inFlight++;
    res.once('close', () => inFlight--);
    if (draining) res.setHeader('connection', 'close');
    probe(req, res).then(
      (handled) => {
        if (!handled) web.handler(req, res);
      },
      (err: unknown) => {
        log({ level: 'error', msg: 'request failed', err: String(err) });
        if (!res.headersSent) res.writeHead(500).end();
      },
    );
  });
  server.keepAliveTimeout = 65_000; // above common balancer idle timeouts (nginx 60 s)

  await new Promise<void>((resolve) => server.listen(o.port, o.host ?? '127.0.0.1', resolve));
  log({ level: 'info', msg: 'web node listening', node: o.ctx.nodeId, port: o.port, pid: process.pid });

  let drained: Promise<void> | undefined;
  const drain = () => {
    drained ??= (async () => {
      draining = true;
      const started = Date.now();
      const deadline = started + (o.drainTimeoutMs ?? 30_000);
      log({ level: 'info', msg: 'draining', node: o.ctx.nodeId, inFlight });
      await sleep(o.drainDelayMs ?? 0);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      while (inFlight > 0 && Date.now() < deadline) await sleep(20);
      server.closeAllConnections();
      await closed;
      await web.close();
      log({ level: 'info', msg: 'drained', node: o.ctx.nodeId, ms: Date.now() - started, abandoned: inFlight });
    })();
    return drained;
  };
  return { port: o.port, drain };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
