import { request } from 'node:http';
import { WebSocket } from 'ws';
import type { ServerMessage } from '../../src/protocol/index.js';

/** A test's view of one WebSocket client: every parsed frame, waits with deadlines, the close code. */
export interface TestClient {
  ws: WebSocket;
  messages: ServerMessage[];
  /** Resolves with the close code and reason once the socket is closed, whoever closed it. */
  closed: Promise<{ code: number; reason: string }>;
  send(message: unknown): void;
  /** The first message (already received or still to come) that matches, or a rejection after timeoutMs. */
  waitFor<M extends ServerMessage>(match: (m: ServerMessage) => m is M, timeoutMs?: number): Promise<M>;
  waitFor(match: (m: ServerMessage) => boolean, timeoutMs?: number): Promise<ServerMessage>;
  close(): void;
}

export interface ConnectOptions {
  cookie?: string;
  origin?: string;
  /** Called for every frame (before it is stored), e.g. to time arrivals. */
  onFrame?: (m: ServerMessage) => void;
  /** Keep parsed frames in `messages` (default true); load tests turn it off and use onFrame. */
  keep?: boolean;
  /** Called with every raw frame instead of parsing it (timing tests that must stay cheap). */
  onRaw?: (data: Buffer) => void;
}

/**
 * What arrived (kept or not) and bounded waits for the first that matches, whether it is
 * already here or still to come. `what` names the items in a timeout's message.
 */
function inbox<T>(what: string) {
  const items: T[] = [];
  const waiters = new Set<{ match: (item: T) => boolean; resolve: (item: T) => void }>();
  return {
    items,
    arrived(item: T, keep = true): void {
      if (keep) items.push(item);
      for (const w of waiters) {
        if (w.match(item)) {
          waiters.delete(w);
          w.resolve(item);
        }
      }
    },
    waitFor(match: (item: T) => boolean, ms: number): Promise<T> {
      const found = items.find(match);
      if (found) return Promise.resolve(found);
      return new Promise<T>((resolve, reject) => {
        const w = {
          match,
          resolve: (item: T) => {
            clearTimeout(timer);
            resolve(item);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no matching ${what} within ${ms} ms; got: ${JSON.stringify(items.slice(-5))}`));
        }, ms);
        waiters.add(w);
      });
    },
  };
}

function headersOf(o: ConnectOptions): Record<string, string> {
  return { ...(o.cookie ? { cookie: o.cookie } : {}), ...(o.origin ? { origin: o.origin } : {}) };
}

/** Opens a client; rejects with `HTTP <status>` when the handshake is refused. */
export function connect(url: string, o: ConnectOptions = {}, timeoutMs = 5000): Promise<TestClient> {
  const ws = new WebSocket(url, { headers: headersOf(o), perMessageDeflate: false });
  const inbound = inbox<ServerMessage>('message');
  const keep = o.keep ?? true;
  ws.on('message', (data) => {
    if (o.onRaw) return o.onRaw(data as Buffer);
    const m = JSON.parse(data.toString()) as ServerMessage;
    o.onFrame?.(m);
    inbound.arrived(m, keep);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  ws.on('error', () => {}); // surfaced through `closed` / the open rejection
  const client: TestClient = {
    ws,
    messages: inbound.items,
    closed,
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    close: () => ws.close(),
    waitFor: (match: (m: ServerMessage) => boolean, ms = 3000) => inbound.waitFor(match, ms),
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`handshake to ${url} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(client);
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      res.resume();
      ws.terminate();
      reject(new Error(`HTTP ${res.statusCode}`));
    });
    ws.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * What a WebSocket handshake comes to: the HTTP status when it is refused before any upgrade
 * (403, 503); the close code when the gateway accepts it only to close it before its hello
 * (4401 no session, 4429 over a connection limit); 101 when the gateway says hello. The socket
 * is closed afterwards.
 */
export async function handshakeStatus(url: string, o: ConnectOptions = {}, timeoutMs = 3000): Promise<number> {
  let c: TestClient;
  try {
    c = await connect(url, o);
  } catch (err) {
    const m = /^HTTP (\d+)$/.exec((err as Error).message);
    if (m) return Number(m[1]);
    throw err;
  }
  try {
    const hello = c
      .waitFor((m) => m.type === 'hello', timeoutMs)
      .then(
        () => 101,
        () => 0,
      );
    const outcome = await Promise.race([hello, c.closed.then((closed) => closed.code)]);
    if (outcome === 0) throw new Error(`neither a hello nor a close from ${url} within ${timeoutMs} ms`);
    return outcome;
  } finally {
    c.ws.terminate();
  }
}

export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

export interface SseStream {
  status: number;
  events: SseEvent[];
  /** Resolves when the response ends or fails, whoever ended it. */
  ended: Promise<void>;
  waitFor(match: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  close(): void;
}

/** A minimal EventSource: GET with headers, events parsed as they arrive. */
export function openSse(url: string, headers: Record<string, string>, timeoutMs = 5000): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: 'text/event-stream', ...headers } });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no SSE response from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      const events = inbox<SseEvent>('SSE event');
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let at = buf.indexOf('\n\n'); at >= 0; at = buf.indexOf('\n\n')) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const e: SseEvent = { data: '' };
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) e.id = line.slice(4);
            else if (line.startsWith('event: ')) e.event = line.slice(7);
            else if (line.startsWith('data: ')) data.push(line.slice(6));
          }
          if (data.length === 0) continue; // comments, retry:
          e.data = data.join('\n');
          events.arrived(e);
        }
      });
      res.on('error', () => {});
      const ended = new Promise<void>((done) => res.once('close', () => done()));
      resolve({
        status: res.statusCode ?? 0,
        events: events.items,
        ended,
        close: () => req.destroy(),
        waitFor: (match, ms = 3000) => events.waitFor(match, ms),
      });
    });
    req.end();
  });
}
