import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { isWebSocketUpgrade, serveAsPlainRequest } from '../core/upgrade.js';

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
  /**
   * WebSocket upgrades and `/sse` go here; web nodes otherwise. The same split as
   * deploy/nginx/shoal.conf (`/ws`, `/sse`), except that every WebSocket upgrade goes to a gateway:
   * web nodes serve no WebSocket. An app's own event stream on another path reaches the web
   * nodes, as behind nginx.
   */
  gateways?: () => Upstream[];
  /**
   * With no web node in the cluster (`shoal start --web 0`: gateways for a backend in another language),
   * plain HTTP requests to these paths go to the gateways too: their server API (POST /publish, …).
   * Any other request is answered 503 saying that the cluster has no web nodes.
   */
  gatewayPaths?: readonly string[];
  onError?: (err: Error, upstream: Upstream) => void;
  /**
   * A connection to an upstream not established within this is treated like a refused one: the upstream
   * is marked not ready and the next node gets the request. Without it a blackholed node (a zone cut off,
   * packets dropped) holds each request for the kernel's SYN retries, minutes. Default 1 s.
   */
  connectTimeoutMs?: number;
  /**
   * No response headers within this after the request reached the node → 504 naming the node, which is
   * marked not ready. The request is not replayed: the node may have acted on it. Default 60 s (nginx's
   * proxy_read_timeout).
   */
  responseTimeoutMs?: number;
}

/**
 * The development balancer: plain round-robin per request, no stickiness —
 * exactly what a production L7 balancer does, so the app meets the same
 * conditions on a laptop. A request whose upstream refuses the connection (or
 * does not accept it within the connect timeout) is retried on the next node
 * (it never reached the first one).
 */
export function createBalancer(options: BalancerOptions): Server {
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const responseTimeoutMs = options.responseTimeoutMs ?? 60_000;
  let webTurn = 0;
  let gatewayTurn = 0;
  const pick = (pool: Upstream[], turn: number, skip: Set<Upstream>) => {
    const ready = pool.filter((u) => u.ready && !skip.has(u));
    return ready.length ? (ready[turn % ready.length] as Upstream) : undefined;
  };
  const connectTimeout = (upstream: Upstream) =>
    new Error(`${upstream.name} (${upstream.host}:${upstream.port}) did not accept within ${connectTimeoutMs} ms`);

  const gatewayPaths = new Set(options.gatewayPaths ?? []);
  const forward = (req: IncomingMessage, body: Buffer, res: ServerResponse, tried: Set<Upstream>) => {
    const web = options.web();
    const path = req.url?.split('?', 1)[0] ?? '';
    const toGateway = options.gateways && (isGatewayStream(req.url) || (web.length === 0 && gatewayPaths.has(path)));
    const pool = toGateway ? (options.gateways?.() ?? []) : web;
    const upstream = pick(pool, toGateway ? gatewayTurn++ : webTurn++, tried);
    if (!upstream) {
      if (pool.length === 0) {
        // Not a node that is down for a moment: there is none to wait for, so no Retry-After.
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end(toGateway ? NO_GATEWAYS : noWebNodes([...gatewayPaths]));
        return;
      }
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '1' });
      res.end(`no ${toGateway ? 'gateway' : 'web'} node is ready\n`);
      return;
    }
    const headers = { ...req.headers, 'x-forwarded-for': req.socket.remoteAddress ?? '', 'x-forwarded-proto': 'http' };
    const up = request({ host: upstream.host, port: upstream.port, method: req.method, path: req.url, headers });
    let connected = false;
    let timedOut = false;
    up.on('socket', (s: Socket) => {
      // A kept-alive connection is already established: a request on it may have reached the node.
      if (!s.connecting) {
        connected = true;
        return;
      }
      const timer = setTimeout(() => up.destroy(connectTimeout(upstream)), connectTimeoutMs);
      s.once('connect', () => {
        connected = true;
        clearTimeout(timer);
      });
      s.once('close', () => clearTimeout(timer));
    });
    const responseTimer = setTimeout(() => {
      timedOut = true;
      up.destroy(new Error(`${upstream.name} sent no response within ${responseTimeoutMs} ms`));
    }, responseTimeoutMs);
    up.on('response', (upRes) => {
      clearTimeout(responseTimer);
      res.writeHead(upRes.statusCode ?? 502, { ...upRes.headers, 'x-shoal-upstream': upstream.name });
      upRes.pipe(res);
      res.on('close', () => upRes.destroy());
      // pipe() forwards only a clean end. An upstream that dies mid-response (a SIGKILLed gateway under
      // an SSE stream, a crash in a chunked body) makes `upRes` error or close early while `up` stays
      // silent, so the client would hold a response that never ends. Cut the client's connection instead:
      // ending it cleanly would make a truncated body look complete; a cut is what a proxy reports
      // (nginx does the same) and what an EventSource reconnects on.
      upRes.on('error', () => {});
      upRes.on('close', () => {
        if (!upRes.complete) res.destroy();
      });
    });
    up.on('error', (err) => {
      clearTimeout(responseTimer);
      options.onError?.(err, upstream);
      if (res.destroyed) return; // the client went away: nobody to answer, nothing to replay
      if (!connected && !res.headersSent) {
        upstream.ready = false; // the health check brings it back
        tried.add(upstream);
        forward(req, body, res, tried);
        return;
      }
      if (timedOut) upstream.ready = false;
      // Mid-response: the status is gone; only a cut tells the client the body is incomplete.
      if (res.headersSent) return void res.destroy();
      res.writeHead(timedOut ? 504 : 502, { 'content-type': 'text/plain', 'x-shoal-upstream': upstream.name });
      res.end();
    });
    // A client that gives up frees the upstream request instead of leaving it to hang.
    res.on('close', () => {
      if (!res.writableFinished) up.destroy();
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
    // Another protocol offered (h2c, as Java's HttpClient does on every request): a web request all the same.
    if (!isWebSocketUpgrade(req)) return serveAsPlainRequest(server, req, client, head);
    let up: Socket | undefined;
    const close = () => {
      up?.destroy();
      client.destroy();
    };
    client.on('error', close);
    client.on('close', close);
    const tried = new Set<Upstream>();
    const attempt = () => {
      const pool = options.gateways?.() ?? [];
      const upstream = pick(pool, gatewayTurn++, tried);
      if (!upstream) {
        const why = pool.length === 0 ? NO_GATEWAYS : 'no gateway node is ready\n';
        client.end(
          `HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(why)}\r\nconnection: close\r\n\r\n${why}`,
        );
        return;
      }
      let tunnelled = false;
      const socket = connect(upstream.port, upstream.host, () => {
        clearTimeout(timer);
        tunnelled = true;
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        lines.push(`X-Forwarded-For: ${req.socket.remoteAddress ?? ''}`);
        socket.write(`${lines.join('\r\n')}\r\n\r\n`);
        if (head.length) socket.write(head);
        socket.pipe(client).pipe(socket);
      });
      up = socket;
      const timer = setTimeout(() => socket.destroy(connectTimeout(upstream)), connectTimeoutMs);
      socket.on('error', (err) => {
        clearTimeout(timer);
        options.onError?.(err, upstream);
        if (tunnelled || client.destroyed) return close();
        // Not connected: the handshake never reached this gateway, so the next one may take it.
        upstream.ready = false;
        tried.add(upstream);
        attempt();
      });
      socket.on('close', () => {
        if (tunnelled) close();
      });
    };
    attempt();
  });
  return server;
}

const NO_GATEWAYS =
  'this cluster runs no gateway (--gateways 0, the default for an app module with web()): WebSocket and /sse have nowhere to go; give shoal start --gateways N\n';

function noWebNodes(gatewayPaths: string[]): string {
  const served = ['WebSocket', '/sse', ...gatewayPaths].join(', ');
  return `this cluster runs no web node (the app module has no web(), or --web 0 was given): only the gateways' paths are served here (${served})\n`;
}

/** `/sse` with any query: the gateways' event stream (the path nginx routes to them). */
function isGatewayStream(url: string | undefined): boolean {
  const path = url?.split('?', 1)[0];
  return path === '/sse';
}
