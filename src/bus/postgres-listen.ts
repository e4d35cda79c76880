import type { Client, ClientConfig } from 'pg';

type PgModule = typeof import('pg');

export interface ListenerOptions {
  pg: PgModule;
  connection: ClientConfig;
  timeoutMs: number;
  /** Shows up in pg_stat_activity, so an operator (or a test) can find this connection. */
  applicationName: string;
  /** The LISTEN channel: a plain identifier. */
  channel: string;
  onNotify(payload: string): void;
  /** Called after a lost connection is back: notifications sent meanwhile are gone, the owner re-reads. */
  onReconnect(): void;
  /** How often an idle connection proves it is alive; default 15 s. */
  heartbeatMs?: number;
}

export interface Listener {
  /** Resolves once LISTEN is in place; after that the connection is kept up until close(). */
  ready(): Promise<void>;
  close(): Promise<void>;
}

/**
 * One dedicated LISTEN connection that comes back: on error, end or a failed
 * heartbeat it reconnects with capped exponential backoff and tells the owner.
 * A heartbeat is needed because a silently dropped connection (no RST) otherwise
 * looks idle forever, and an idle listener is exactly what a quiet channel has.
 */
export function pgListener(o: ListenerOptions): Listener {
  let current: Promise<Client> | undefined;
  let wanted = false;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  // query_timeout is read per query by pg; the types only list it on the client config
  const probe = { text: 'SELECT 1', query_timeout: o.timeoutMs };
  const heartbeat = setInterval(() => {
    const attempt = current;
    attempt?.then((c) => c.query(probe)).catch(() => drop(attempt, true));
  }, o.heartbeatMs ?? 15_000);
  heartbeat.unref();

  /** Forgets a connection; one that had been up is replaced (a failed attempt backs off in schedule()). */
  const drop = (attempt: Promise<Client> | undefined, wasUp: boolean) => {
    if (!attempt || current !== attempt) return;
    current = undefined;
    void attempt.then((c) => c.end()).catch(() => {});
    if (wasUp && wanted && !closed) schedule(100);
  };

  const connect = (): Promise<Client> => {
    if (current) return current;
    const client = new o.pg.Client({
      ...o.connection,
      connectionTimeoutMillis: o.timeoutMs,
      application_name: o.applicationName.slice(0, 63),
    });
    let up = false;
    const attempt: Promise<Client> = (async () => {
      // connectionTimeoutMillis covers the TCP connect, not a server that accepts and then stalls
      const timer = setTimeout(() => void client.end().catch(() => {}), o.timeoutMs);
      try {
        await client.connect();
        await client.query(`LISTEN "${o.channel}"`);
        up = true;
        return client;
      } finally {
        clearTimeout(timer);
      }
    })();
    current = attempt;
    client.on('error', () => drop(attempt, up));
    client.on('end', () => drop(attempt, up));
    client.on('notification', (msg) => o.onNotify(msg.payload ?? ''));
    attempt.catch(() => {
      if (current === attempt) current = undefined;
      client.end().catch(() => {});
    });
    return attempt;
  };

  const schedule = (delay: number) => {
    if (retry || closed) return;
    retry = setTimeout(() => {
      retry = undefined;
      connect().then(
        () => o.onReconnect(),
        () => schedule(Math.min(delay * 2, 5000)),
      );
    }, delay);
    retry.unref();
  };

  return {
    async ready() {
      if (closed) throw new Error('listener closed');
      await connect();
      wanted = true;
    },
    async close() {
      closed = true;
      clearInterval(heartbeat);
      clearTimeout(retry);
      const c = current;
      current = undefined;
      await c?.then((client) => client.end()).catch(() => {});
    },
  };
}
