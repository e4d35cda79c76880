import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import type { Bus, BusMessage } from '../bus/contract.js';
import { hashId } from '../core/ids.js';
import type { SessionManager } from '../session/manager.js';
import type { StoredSession } from '../stores/contract.js';
import { Connection, frameOf } from './connection.js';
import {
  ConnectionLimits,
  DEFAULT_MAX_CONNECTIONS_PER_SESSION,
  DEFAULT_MAX_CONNECTIONS_PER_USER,
} from './connection-limits.js';
import { GatewayMetrics } from './gateway-metrics.js';
import { handlePublish } from './http-publish.js';
import { checkOrigin } from './origin.js';
import { PRESENCE_CHANNEL, Presence } from './presence.js';
import { CloseCode, decodeCursors, isValidChannel, parseClientMessage } from './protocol.js';
import { SESSION_ENDED_EVENT, sessionChannel } from './publisher.js';
import { sseTransport, wsTransport } from './transports.js';

export interface AuthorizeContext {
  sessionId: string;
  userId: string | null;
  attributes: Record<string, string>;
}

export interface GatewayOptions {
  id?: string;
  bus: Bus;
  sessions: SessionManager;
  /** Allowed Origin values, e.g. ["https://app.example.com"]. Required for WebSocket handshakes. */
  origins: string[];
  /** May this session join this channel? `user:<own id>` and `session:<own id>` are always allowed. */
  authorize?: (session: AuthorizeContext, channel: string) => boolean | Promise<boolean>;
  /** Bearer key for POST /publish (producers in other languages). Unset: the endpoint answers 404. */
  publishKey?: string | undefined;
  maxMessageBytes?: number;
  maxBufferedBytes?: number;
  /** Client messages per second (burst twice that). */
  rateLimit?: number;
  heartbeatMs?: number;
  canaryMs?: number;
  /**
   * Open connections (WebSocket + SSE) one session may hold on this gateway (default 32). One
   * more is accepted and closed at once with 4429. Counted per gateway process.
   */
  maxConnectionsPerSession?: number;
  /** The same across all sessions of one user (default 128), per gateway process. */
  maxConnectionsPerUser?: number;
  log?: (line: Record<string, unknown>) => void;
}

/** Why a handshake is closed at once with 4401: the page can tell it from a network failure. */
const NO_SESSION_REASON = 'no session: sign in, then connect again';

/**
 * What a handshake comes to: the live session; `no-session`, answered by accepting the
 * connection and closing it with 4401; or an HTTP refusal before any upgrade.
 */
type Verdict = StoredSession | 'no-session' | { refuse: 403 | 503; reason: 'origin' | 'draining' };

export interface Gateway {
  readonly id: string;
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  /** Throws with the reason when the gateway must not receive traffic. */
  ready(): Promise<void>;
  connections(): number;
  listen(port: number, host?: string): Promise<void>;
  /** Closes every socket with 1012 spread over `windowMs`, then stops. */
  drain(windowMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A realtime gateway: WebSocket and SSE on one port, authenticated by the web
 * session cookie, fed by the bus. Holds no state a client cannot get back by
 * reconnecting to another gateway and resuming from its cursors.
 */
export async function createGateway(o: GatewayOptions): Promise<Gateway> {
  const id = o.id ?? `gw-${randomUUID().slice(0, 8)}`;
  const log = o.log ?? ((line) => console.log(JSON.stringify(line)));
  const maxBuffered = o.maxBufferedBytes ?? 1024 * 1024;
  const heartbeatMs = o.heartbeatMs ?? 20_000;
  const canaryMs = o.canaryMs ?? 1000;
  const rate = o.rateLimit ?? 50;
  // First: a bad limit is a configuration error, thrown before anything is subscribed or started.
  const limits = new ConnectionLimits(
    o.maxConnectionsPerSession ?? DEFAULT_MAX_CONNECTIONS_PER_SESSION,
    o.maxConnectionsPerUser ?? DEFAULT_MAX_CONNECTIONS_PER_USER,
  );
  const metrics = new GatewayMetrics();
  const byChannel = new Map<string, Set<Connection>>();
  const all = new Set<Connection>();
  let connectionSeq = 0;
  const canaryChannel = `_shoal:canary:${id}`;
  let lastCanary = Date.now();
  let draining = false;

  const presence = new Presence(o.bus, id, (channel, users) => {
    for (const c of byChannel.get(channel) ?? []) {
      if (c.channels.get(channel)?.presence) c.send({ type: 'presence', channel, users });
    }
  });

  o.bus.onMessage((m: BusMessage) => {
    if (m.channel === canaryChannel) {
      lastCanary = Date.now();
      return;
    }
    if (m.channel === PRESENCE_CHANNEL) return presence.receive(m);
    const subs = byChannel.get(m.channel);
    if (!subs) return;
    if (m.event === SESSION_ENDED_EVENT) {
      for (const c of [...subs])
        if (sessionChannel(c.sessionId) === m.channel) end(c, CloseCode.SessionEnded, 'session ended');
      return;
    }
    metrics.messagesIn.inc();
    const frame = frameOf(m);
    for (const c of subs) c.deliver(m, frame);
    metrics.messagesOut.inc(subs.size);
  });
  await presence.start();
  await o.bus.subscribe(canaryChannel);
  const canaryTimer = setInterval(() => {
    o.bus.publish(canaryChannel, { event: 'canary', data: String(Date.now()) }).catch(() => {});
  }, canaryMs);
  canaryTimer.unref();

  /** channel → the bus subscription in progress or done; every joiner waits for it, not just the first. */
  const subscriptions = new Map<string, Promise<void>>();
  const join = async (c: Connection, channel: string, from?: { epoch: string; offset: number }): Promise<void> => {
    let set = byChannel.get(channel);
    if (!set) {
      set = new Set();
      byChannel.set(channel, set);
    }
    if (set.has(c)) return; // a second `sub` while the first is in flight: the first answers
    // Membership first, so a concurrent last leave cannot unsubscribe the bus under this join.
    set.add(c);
    if (c.userId && hasPresence(channel)) presence.join(channel, c.userId);
    try {
      let subscribed = subscriptions.get(channel);
      if (!subscribed) {
        subscribed = o.bus.subscribe(channel);
        subscriptions.set(channel, subscribed);
        subscribed.catch(() => subscriptions.delete(channel));
      }
      // Until the bus delivers live messages, a position read now could miss the ones in between.
      await subscribed;
      if (c.closed) return leave(c, channel);
      await c.join(channel, from);
    } catch (err) {
      // Half-joined state would buffer live messages forever: undo it, the client may retry.
      leave(c, channel);
      throw err;
    }
  };

  const leave = (c: Connection, channel: string) => {
    const set = byChannel.get(channel);
    if (!set?.has(c)) return;
    c.leave(channel);
    if (c.userId && hasPresence(channel)) presence.leave(channel, c.userId);
    set.delete(c);
    if (set.size === 0) {
      byChannel.delete(channel);
      subscriptions.delete(channel);
      void o.bus.unsubscribe(channel).catch(() => {});
    }
  };

  function end(c: Connection, code: number, reason: string): void {
    if (c.closed) return;
    c.closed = true;
    for (const channel of [...c.channels.keys()]) leave(c, channel);
    all.delete(c);
    // Every close path ends here exactly once (`closed` guards it), so the count cannot leak.
    limits.remove(c.sessionId, c.userId);
    metrics.connections.set(all.size);
    c.transport.close(code, reason);
  }

  const allowed = async (session: StoredSession, channel: string) => {
    if (channel === sessionChannel(session.id)) return true;
    if (session.meta.userId && channel === `user:${session.meta.userId}`) return true;
    if (channel.startsWith('session:') || channel.startsWith('user:') || channel.startsWith('_shoal:')) return false;
    if (!o.authorize) return false;
    return o.authorize({ sessionId: session.id, userId: session.meta.userId, attributes: session.attributes }, channel);
  };

  /**
   * Resolves the handshake. The Origin check comes before anything else, so a foreign page
   * (CSWSH) is refused before any upgrade and learns nothing about the session. A store that
   * cannot answer rejects: the caller refuses with 503, which clients retry.
   */
  const authenticate = async (req: IncomingMessage, requireOrigin: boolean): Promise<Verdict> => {
    if (draining) return { refuse: 503, reason: 'draining' };
    if (!checkOrigin(req.headers.origin, o.origins, requireOrigin)) return { refuse: 403, reason: 'origin' };
    const { id: sid } = o.sessions.idFromCookie(req.headers.cookie);
    if (!sid) return 'no-session';
    return (await o.sessions.load(sid)) ?? 'no-session';
  };

  const rejected = (transport: 'ws' | 'sse', status: number, reason: string) =>
    metrics.handshakeRejected.inc({ transport, status: String(status), reason });

  /** The connection, or null when it went over a connection limit (then closed with 4429). */
  const open = async (
    session: StoredSession,
    transport: Connection['transport'],
    resume: URLSearchParams,
    lastEventId?: string,
  ): Promise<Connection | null> => {
    // Checked and counted with no await in between, so concurrent handshakes cannot all slip under the limit.
    const over = limits.exceeded(session.id, session.meta.userId);
    if (over) {
      metrics.connectionLimited.inc({ transport: transport.kind, limit: over });
      rejected(transport.kind, CloseCode.TooManyConnections, `${over}-limit`);
      transport.close(CloseCode.TooManyConnections, `too many connections for this ${over} on this gateway`);
      return null;
    }
    // A counter, not a UUID: randomUUID() returns a rope of ~13 string pieces, ~400 bytes kept per connection.
    const c = new Connection(
      String(++connectionSeq),
      session.id,
      session.meta.userId,
      transport,
      o.bus,
      maxBuffered,
      (slow) => {
        metrics.slowConsumers.inc();
        end(slow, CloseCode.SlowConsumer, 'send queue overflow');
      },
    );
    all.add(c);
    limits.add(session.id, session.meta.userId);
    metrics.connections.set(all.size);
    const own = [sessionChannel(session.id), ...(session.meta.userId ? [`user:${session.meta.userId}`] : [])];
    c.send({ type: 'hello', gateway: id, user: session.meta.userId, session: hashId(session.id), channels: own });
    const cursors = decodeCursors(lastEventId ?? resume.get('resume') ?? undefined);
    const wanted = new Set([...own, ...cursors.keys(), ...(resume.get('channels')?.split(',') ?? [])]);
    try {
      for (const channel of wanted) {
        if (c.closed) break;
        if (!isValidChannel(channel) || !(await allowed(session, channel))) {
          c.send({ type: 'error', code: 'forbidden', message: `not allowed to join ${channel}`, channel });
          continue;
        }
        await join(c, channel, cursors.get(channel));
      }
      // `presence=a,b`: what an SSE client (which cannot send frames) uses to follow presence.
      for (const channel of resume.get('presence')?.split(',') ?? []) {
        const state = c.channels.get(channel);
        if (!state || c.closed) continue;
        state.presence = true;
        c.send({ type: 'presence', channel, users: presence.list(channel) });
      }
    } catch (err) {
      // Not registered with the caller yet: without this the connection would stay counted and subscribed.
      end(c, 1011, 'the gateway could not reach the bus or store; reconnect');
      throw err;
    }
    return c;
  };

  const touch = async (c: Connection) => {
    const now = Date.now();
    c.lastActivity = now;
    if (now - c.lastTouch < o.sessions.options.touchMs) return;
    c.lastTouch = now;
    const alive = await o.sessions.options.store
      .touch(c.sessionId, now, now + o.sessions.options.idleMs)
      .catch(() => true);
    if (!alive) end(c, CloseCode.SessionEnded, 'session ended');
  };

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: o.maxMessageBytes ?? 64 * 1024,
    perMessageDeflate: false,
  });

  const onSocket = async (ws: WebSocket, req: IncomingMessage, session: StoredSession, socket: Duplex) => {
    ws.on('error', (err) => log({ level: 'warn', msg: 'socket error', gateway: id, err: err.message }));
    const params = new URL(req.url ?? '/', 'http://x').searchParams;
    let tokens = rate * 2;
    let refilled = Date.now();
    const queue: string[] = [];
    let inOrder: Promise<void> = Promise.resolve();
    let c: Connection | undefined;
    ws.on('message', (data, isBinary) => {
      const now = Date.now();
      tokens = Math.min(rate * 2, tokens + ((now - refilled) / 1000) * rate);
      refilled = now;
      if (--tokens < 0) {
        metrics.rateLimited.inc();
        if (c) end(c, CloseCode.RateLimited, 'rate limit');
        else ws.close(CloseCode.RateLimited, 'rate limit');
        return;
      }
      const text = isBinary ? null : data.toString();
      if (text === null) return ws.close(CloseCode.ProtocolError, 'binary frames are not part of the protocol');
      if (!c) queue.push(text);
      // One frame at a time, in order: a `sub` still joining must not be overtaken by its `unsub` or `presence`.
      else inOrder = inOrder.then(() => handleSafely(c as Connection, text));
    });
    ws.on('pong', () => {
      if (c) c.alive = true;
    });
    ws.on('close', () => {
      if (c) end(c, 1000, 'closed');
    });
    c = (await open(session, wsTransport(ws, socket), params)) ?? undefined;
    if (!c) return; // over a connection limit: already closed with 4429
    // The socket may have closed while the session's channels were being joined.
    if (ws.readyState !== ws.OPEN) return end(c, 1000, 'closed');
    const opened = c;
    for (const text of queue.splice(0)) inOrder = inOrder.then(() => handleSafely(opened, text));
  };

  // A store or bus failure while handling one frame is answered on the socket, never left unhandled.
  const handleSafely = (c: Connection, text: string) =>
    handle(c, text).catch((err: unknown) => {
      log({ level: 'warn', msg: 'client message failed', gateway: id, err: String(err) });
      c.send({ type: 'error', code: 'unavailable', message: 'the gateway could not reach the bus or store; retry' });
    });

  const handle = async (c: Connection, text: string) => {
    const m = parseClientMessage(text);
    if ('error' in m) {
      metrics.protocolErrors.inc();
      c.send({ type: 'error', code: 'protocol', message: m.error });
      return;
    }
    void touch(c);
    const session = () => o.sessions.load(c.sessionId);
    switch (m.type) {
      case 'ping':
        c.send({ type: 'pong', ...(m.id !== undefined ? { id: m.id } : {}) });
        return;
      case 'unsub':
        // The session channel is how a session end closes this socket: it cannot be left.
        if (m.channel === sessionChannel(c.sessionId)) {
          return c.send({
            type: 'error',
            code: 'forbidden',
            message: 'the session channel cannot be left',
            channel: m.channel,
          });
        }
        leave(c, m.channel);
        c.send({ type: 'unsubscribed', channel: m.channel });
        return;
      case 'presence': {
        const state = c.channels.get(m.channel);
        if (!state)
          return c.send({
            type: 'error',
            code: 'not-subscribed',
            message: `join ${m.channel} first`,
            channel: m.channel,
          });
        state.presence = true;
        c.send({ type: 'presence', channel: m.channel, users: presence.list(m.channel) });
        return;
      }
      case 'sub': {
        if (c.channels.has(m.channel)) {
          const s = c.channels.get(m.channel);
          return c.send({
            type: 'subscribed',
            channel: m.channel,
            epoch: s?.epoch ?? '',
            offset: s?.offset ?? 0,
            recovered: true,
          });
        }
        const s = await session();
        if (!s) return end(c, CloseCode.SessionEnded, 'session ended');
        if (!(await allowed(s, m.channel))) {
          return c.send({
            type: 'error',
            code: 'forbidden',
            message: `not allowed to join ${m.channel}`,
            channel: m.channel,
          });
        }
        await join(c, m.channel, m.from);
        return;
      }
    }
  };

  const server = createServer((req, res) => void route(req, res));
  const route = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://x');
    try {
      if (url.pathname === '/healthz') return json(res, 200, { ok: true, gateway: id });
      if (url.pathname === '/readyz') {
        try {
          await ready();
          return json(res, 200, { ready: true, gateway: id, connections: all.size });
        } catch (err) {
          return json(res, 503, { ready: false, gateway: id, problem: (err as Error).message });
        }
      }
      if (url.pathname === '/metrics') {
        res.writeHead(200, { 'content-type': metrics.contentType });
        return res.end(await metrics.render());
      }
      if (url.pathname === '/publish' && req.method === 'POST') return handlePublish(req, res, o.bus, o.publishKey);
      if (url.pathname === '/sse' && req.method === 'GET') {
        const session = await authenticate(req, false).catch((err: unknown) => {
          rejected('sse', 503, 'unavailable');
          throw err;
        });
        if (session === 'no-session') {
          rejected('sse', CloseCode.Unauthorized, 'no-session');
          // A 200 stream that says why and ends: an error status would make EventSource report a bare
          // failure, and the SDK reads this close event as it does over WebSocket (no reconnect).
          sseTransport(res, heartbeatMs).close(CloseCode.Unauthorized, NO_SESSION_REASON);
          return;
        }
        if ('refuse' in session) {
          rejected('sse', session.refuse, session.reason);
          return json(res, session.refuse, { error: statusText(session.refuse) });
        }
        const transport = sseTransport(res, heartbeatMs);
        const last = req.headers['last-event-id'];
        const c = await open(session, transport, url.searchParams, typeof last === 'string' ? last : undefined);
        if (!c) return; // over a connection limit: the stream already ended with 4429
        if (res.destroyed) end(c, 1000, 'closed');
        else res.on('close', () => end(c, 1000, 'closed'));
        return;
      }
      json(res, 404, { error: 'not found' });
    } catch (err) {
      log({ level: 'error', msg: 'gateway request failed', gateway: id, err: String(err) });
      if (!res.headersSent) json(res, 503, { error: 'unavailable', message: 'the session store or bus failed; retry' });
      else res.end();
    }
  };

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // Not a closure: one over this scope would keep `req` and `head` alive as long as the socket.
    socket.on('error', destroySelf);
    authenticate(req, true).then(
      (session) => {
        if (session === 'no-session') {
          // Accepted only to close it: a refused handshake reaches the page as 1006 (a network
          // failure, retried forever), a close code says why.
          rejected('ws', CloseCode.Unauthorized, 'no-session');
          wss.handleUpgrade(req, socket, head, closeUnauthorized);
          return;
        }
        if ('refuse' in session) {
          rejected('ws', session.refuse, session.reason);
          const status = session.refuse;
          socket.end(`HTTP/1.1 ${status} ${statusText(status)}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
          return;
        }
        wss.handleUpgrade(
          req,
          socket,
          head,
          (ws) => void onSocket(ws, req, session, socket).catch(() => ws.terminate()),
        );
      },
      () => {
        rejected('ws', 503, 'unavailable');
        socket.end('HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      },
    );
  });

  // Heartbeat: a client that did not answer the previous ping is gone (blackholed or dead).
  const heartbeat = setInterval(() => {
    for (const c of all) {
      if (c.transport.kind !== 'ws') continue;
      if (!c.alive) {
        metrics.timeouts.inc();
        end(c, CloseCode.Timeout, 'heartbeat timeout');
        continue;
      }
      c.alive = false;
      (c.transport as ReturnType<typeof wsTransport>).ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  async function ready(): Promise<void> {
    if (draining) throw new Error('draining');
    await o.bus.ping();
    await o.sessions.options.store.ping();
    const age = Date.now() - lastCanary;
    if (age > canaryMs * 5) throw new Error(`canary not seen for ${age} ms: the bus subscription is not delivering`);
  }

  const stopAll = async () => {
    clearInterval(heartbeat);
    clearInterval(canaryTimer);
    presence.stop();
    for (const c of [...all]) end(c, CloseCode.Restart, 'gateway stopping');
    wss.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    id,
    server,
    metrics,
    ready,
    connections: () => all.size,
    listen: (port, host = '127.0.0.1') => new Promise((resolve) => server.listen(port, host, () => resolve())),
    async drain(windowMs = 10_000) {
      draining = true;
      const conns = [...all];
      const step = conns.length ? windowMs / conns.length : 0;
      // Spread the closes so the reconnect wave does not hit the other gateways at once.
      for (const c of conns) {
        end(c, CloseCode.Restart, 'gateway restarting');
        if (step >= 1) await new Promise((r) => setTimeout(r, step));
      }
      await stopAll();
    },
    close: stopAll,
  };
}

function destroySelf(this: Duplex): void {
  this.destroy();
}

function ignore(): void {}

function closeUnauthorized(ws: WebSocket): void {
  ws.on('error', ignore);
  wsTransport(ws).close(CloseCode.Unauthorized, NO_SESSION_REASON);
}

/** A user's and a session's own channels have no audience to show presence to: announcing them would only load the bus. */
function hasPresence(channel: string): boolean {
  return !channel.startsWith('session:') && !channel.startsWith('user:');
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function statusText(status: number): string {
  return ({ 403: 'Forbidden', 503: 'Service Unavailable' } as Record<number, string>)[status] ?? 'Error';
}
