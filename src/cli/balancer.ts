import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';

const MAX_BODY = 16 * 1024 * 1024;

export interface Upstream {
  name: string;
  host: string;
  port: number;
  /** false while the node is starting, draining, dead or failing its health check. */
  ready: boolean;
}

export interface BalancerOptions {
  web: () => Upstream[];
  /** WebSocket upgrades and SSE streams (Accept: text/event-stream) go here; web nodes otherwise. */
  gateways?: () => Upstream[];
  onError?: (err: Error, upstream: Upstream) => void;
}

/**
 * The development balancer: plain round-robin per request, no stickiness —
 * exactly what a production L7 balancer does, so the app meets the same
 * conditions on a laptop. A request whose upstream refuses the connection is
 * retried on the next node (it never reached the first one).
 */
export function createBalancer(options: BalancerOptions): Server {
  let webTurn = 0;
  let gatewayTurn = 0;
  const pick = (pool: Upstream[], turn: number, skip: Set<Upstream>) => {
    const ready = pool.filter((u) => u.ready && !skip.has(u));
    return ready.length ? (ready[turn % ready.length] as Upstream) : undefined;
  };

  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse, tried: Set<Upstream>) => {
    const sse = req.headers.accept?.includes('text/event-stream') && options.gateways;
    const pool = sse ? (options.gateways?.() ?? []) : options.web();
    const upstream = pick(pool, sse ? gatewayTurn++ : webTurn++, tried);
    if (!upstream) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
      res.end(`no ${sse ? 'gateway' : 'web'} node is ready\n`);
      return;
    }
    const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-forwarded-proto': 'http' };
    const up = request({ host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers });
    let connected = false;
    up.on('socket', (s: Socket) => s.once('connect', () => (connected = true)));
    up.on('response', (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, 'x-shoal-upstream': upstream.name });
      upRes.pipe(res);
      res.on('close', () => upRes.destroy());
    });
    up.on('error', (err) => {
      options.onError?.(err, upstream);
      if (!connected && !res.headersSent) {
        upstream.ready = false; // the health check brings it back
        tried.add(upstream);
        forward(req, body, res, tried);
        return;
      }
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end();
    });
    up.end(body);
  };

  // Bodies are buffered (dev use, bounded) so a request can be replayed on another node
  // when the first one refused the connection.
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' }).end('request body too large\n');
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => forward(req, Buffer.concat(chunks), res, new Set()));
  });

  server.on('upgrade', (req, client: Socket, head: Buffer) => {
    const upstream = pick(options.gateways?.() ?? [], gatewayTurn++, new Set());
    if (!upstream) {
      client.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\n\r\n');
      return;
    }
    const up = connect(upstream.port, upstream.host, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      lines.push(`X-Forwarded-For: ${req.socket.remoteAddress ?? ''}`);
      up.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length) up.write(head);
      up.pipe(client).pipe(up);
    });
    const close = () => {
      up.destroy();
      client.destroy();
    };
    up.on('error', close);
    client.on('error', close);
    up.on('close', close);
    client.on('close', close);
  });
  return server;
}
