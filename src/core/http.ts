import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server } from 'node:net';
import { ConfigError } from './errors.js';

/** A JSON answer no cache keeps: every JSON endpoint of a node answers through this. `headers` adds to it. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/**
 * The token of an `Authorization: Bearer <token>` header, or '' when there is none. The scheme
 * is case-insensitive (RFC 9110 §11.1), surrounding spaces are not part of the token.
 */
export function bearerToken(header: string | undefined): string {
  return /^Bearer\s+(.+)$/i.exec(header ?? '')?.[1]?.trim() ?? '';
}

/** Compares the request's bearer token with `key` in constant time. */
export function hasBearer(req: IncomingMessage, key: string): boolean {
  const given = Buffer.from(bearerToken(req.headers.authorization));
  const expected = Buffer.from(key);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface HealthProbes {
  /** What the answers name the node by (`node` in the body). */
  id: string;
  /** Throws with the reason when the node must not get traffic. */
  ready(): Promise<void>;
  /** Extra fields of a ready answer (e.g. connection count). */
  readyDetails?: () => Record<string, unknown>;
  /** null when metrics are off (`metrics: false`): /metrics answers 404. */
  metrics: { contentType: string; render(): Promise<string> } | null;
}

/**
 * `/healthz` (alive), `/readyz` (may get traffic) and `/metrics` (Prometheus). Resolves to
 * false when the path is none of them. The health answers carry the process id: `shoal start`
 * counts a node ready only when the answer comes from the process it spawned, not from another
 * program that holds the node's port (another cluster's node of the same name, say).
 */
export async function answerHealth(path: string, res: ServerResponse, p: HealthProbes): Promise<boolean> {
  if (path === '/healthz') {
    sendJson(res, 200, { ok: true, node: p.id, pid: process.pid });
    return true;
  }
  if (path === '/readyz') {
    try {
      await p.ready();
      sendJson(res, 200, { ready: true, node: p.id, pid: process.pid, ...p.readyDetails?.() });
    } catch (err) {
      const problem = err instanceof Error ? err.message : String(err);
      sendJson(res, 503, { ready: false, node: p.id, pid: process.pid, problem });
    }
    return true;
  }
  if (path === '/metrics') {
    if (!p.metrics) {
      sendJson(res, 404, { error: 'metrics are off on this node (metrics: false)' });
      return true;
    }
    const text = await p.metrics.render();
    res.writeHead(200, { 'content-type': p.metrics.contentType }).end(text);
    return true;
  }
  return false;
}

/**
 * Starts listening, or rejects with a one-line ConfigError when the address cannot be taken
 * (in use, no permission, unknown host): a node that cannot listen is a configuration problem.
 */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      server.off('listening', listening);
      reject(new ConfigError(`cannot listen on ${host}:${port}: ${listenProblem(err)}`, { cause: err }));
    };
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen(port, host);
  });
}

function listenProblem(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'EADDRINUSE':
      return 'the port is in use by another process; stop it or choose another port (--port or PORT)';
    case 'EACCES':
      return 'permission denied; ports below 1024 need privileges, choose a port above 1023';
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return 'no such address on this machine; listen on 127.0.0.1, 0.0.0.0 or one of its own addresses';
    default:
      return err.message;
  }
}
