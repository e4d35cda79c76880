import { inspect } from 'node:util';
import type { Cluster, ClusterOptions, Redis, RedisOptions } from 'ioredis';
import { withDeadline } from './deadline.js';
import { ConfigError } from './errors.js';
import { importOptional } from './lazy-import.js';
import { NotSentError } from './redis-ready.js';
import { SentinelMasterNameError, sentinelNameErrors } from './redis-sentinel-name.js';

/** host:port of one server a URL lists. */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * What a Redis URL names:
 * - `redis://[user:pass@]host:6379[/db]` (or `rediss://`, TLS): one server, database `db` (0 when left out);
 * - `redis+cluster://[user:pass@]h1:p1,h2:p2` (or `rediss+cluster://`): a Redis Cluster, by any of its nodes
 *   (seeds; the client learns the rest from them);
 * - `redis+sentinel://[user:pass@]s1:p1,s2:p2/mymaster[/db]` (or `rediss+sentinel://`): the primary the
 *   sentinels name `mymaster`, followed across failovers. user:pass authenticate to the data servers;
 *   `?sentinelPassword=…` (and `sentinelUsername`) to the sentinels.
 */
export type RedisTarget =
  | { kind: 'single'; url: string; db: number }
  | { kind: 'cluster'; nodes: HostPort[]; tls: boolean; username?: string; password?: string }
  | {
      kind: 'sentinel';
      sentinels: HostPort[];
      name: string;
      db: number;
      tls: boolean;
      username?: string;
      password?: string;
      sentinelUsername?: string;
      sentinelPassword?: string;
    };

const FORMS =
  'redis://host:6379, redis+cluster://host1:6379,host2:6379 or redis+sentinel://host1:26379,host2:26379/mymaster';

/** Parses a Redis URL (see RedisTarget); a malformed one is a ConfigError saying what to write. */
export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(rediss?)(\+cluster|\+sentinel)?:\/\/([^/?#]*)([^?#]*)(\?[^#]*)?$/i.exec(url.trim());
  if (!m) throw new ConfigError(`"${redactUrl(url)}" is not a Redis URL. Write ${FORMS}.`);
  const [, scheme = '', variant = '', authority = '', path = '', query = ''] = m;
  if (!variant) return { kind: 'single', url, db: singleDatabase(url, path, query) };
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at);
  const colon = userinfo.indexOf(':');
  const username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon)) || undefined;
  const password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
  const tls = scheme.toLowerCase() === 'rediss';
  const cluster = variant.toLowerCase() === '+cluster';
  const hosts = parseHosts(authority.slice(at + 1), cluster ? 6379 : 26379, url);
  const auth = { ...(username ? { username } : {}), ...(password !== undefined ? { password } : {}) };
  if (cluster) {
    // ioredis's Cluster ignores a path: /3 would quietly mean database 0, the only one a Cluster has.
    if (path && !/^\/0?$/.test(path))
      throw new ConfigError(
        `"${redactUrl(url)}": a Redis Cluster has only database 0: remove "${path}" from the URL (apps sharing it are kept apart by SHOAL_NAMESPACE).`,
      );
    return { kind: 'cluster', nodes: hosts, tls, ...auth };
  }
  const [name, db = '0', ...rest] = path.split('/').filter(Boolean);
  if (!name || rest.length > 0 || !/^\d+$/.test(db)) {
    throw new ConfigError(
      `"${redactUrl(url)}" names no primary: write redis+sentinel://host1:26379,host2:26379/<master name>[/<db>].`,
    );
  }
  const params = new URLSearchParams(query);
  const sentinelUsername = params.get('sentinelUsername') ?? undefined;
  const sentinelPassword = params.get('sentinelPassword') ?? undefined;
  return {
    kind: 'sentinel',
    sentinels: hosts,
    name: decodeURIComponent(name),
    db: Number(db),
    tls,
    ...auth,
    ...(sentinelUsername ? { sentinelUsername } : {}),
    ...(sentinelPassword ? { sentinelPassword } : {}),
  };
}

/** A connection of its own to one sentinel, to ask it something once: no retries, no queue. */
export function sentinelConnection(
  ioredis: typeof import('ioredis'),
  target: Extract<RedisTarget, { kind: 'sentinel' }>,
  sentinel: HostPort,
  timeoutMs: number,
  extra: RedisOptions = {},
): Redis {
  return new ioredis.Redis({
    host: sentinel.host,
    port: sentinel.port,
    ...(target.sentinelUsername ? { username: target.sentinelUsername } : {}),
    ...(target.sentinelPassword ? { password: target.sentinelPassword } : {}),
    ...(target.tls ? { tls: {} } : {}),
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    ...extra,
  });
}

/**
 * The database a one-server URL names. ioredis reads the path with parseInt, so `/abc` would be
 * database 0 and `/5x` database 5 without a word: only digits pass. `?db=` is ioredis's other spelling.
 */
function singleDatabase(url: string, path: string, query: string): number {
  const fromQuery = new URLSearchParams(query).get('db');
  const fromPath = path && path !== '/' ? path.slice(1) : null;
  if (fromPath !== null && fromQuery !== null && fromPath !== fromQuery) {
    throw new ConfigError(
      `"${redactUrl(url)}" names two databases, /${fromPath} and ?db=${fromQuery}: keep one (ioredis would take /${fromPath}).`,
    );
  }
  const db = fromPath ?? fromQuery ?? '0';
  if (!/^\d{1,9}$/.test(db)) {
    throw new ConfigError(
      `"${redactUrl(url)}": "${db}" is not a database number. Write redis://host:6379/<number>, e.g. /1, or leave it out for database 0.`,
    );
  }
  return Number(db);
}

function parseHosts(list: string, defaultPort: number, url: string): HostPort[] {
  const hosts = list.split(',').map((part) => {
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(part.trim());
    const port = Number(m?.[2] ?? defaultPort);
    if (!m?.[1] || port < 1 || port > 65535) {
      throw new ConfigError(`"${redactUrl(url)}": "${part}" is not host:port. Write ${FORMS}.`);
    }
    return { host: m[1].replace(/^\[|\]$/g, ''), port };
  });
  return hosts;
}

/** A URL with its password masked, also for the multi-host forms WHATWG URL cannot parse. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z+]+:\/\/[^:@/]*:)[^@/]*@/i, '$1***@').replace(/(sentinelPassword=)[^&#]*/i, '$1***');
}

/**
 * A Redis connection the store or the bus opens for itself: one server, a Cluster or the primary
 * behind Sentinel, as the URL says. `extra` adds a caller's own settings; connection errors go to
 * `onError` (failures surface per call, and without a listener ioredis would print every reconnect error).
 */
export async function openRedis(
  url: string,
  feature: string,
  timeoutMs: number,
  onError: (err: Error) => void,
  extra: RedisOptions = {},
): Promise<Redis | Cluster> {
  const target = parseRedisUrl(url);
  const ioredis = await importOptional<typeof import('ioredis')>('ioredis', feature);
  const settings: RedisOptions = {
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    // Queue briefly while (re)connecting, but fail each command after one reconnect attempt.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    // A script whose reply was lost may have run: resending it could apply a commit or a publish twice.
    autoResendUnfulfilledCommands: false,
    // Reconnect forever: the caller heals by itself when Redis comes back.
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
    ...extra,
  };
  let client: Redis | Cluster;
  let report = onError;
  if (target.kind === 'single') client = new ioredis.Redis(url, settings);
  else if (target.kind === 'sentinel') {
    // A wrong master name is a configuration mistake the sentinels name: say so, not "unreachable".
    report = sentinelNameErrors(
      {
        name: target.name,
        sentinels: target.sentinels,
        timeoutMs,
        open: (s) => sentinelConnection(ioredis, target, s, timeoutMs),
      },
      onError,
    );
    client = new ioredis.Redis({
      ...settings,
      sentinels: target.sentinels,
      name: target.name,
      db: target.db,
      role: 'master',
      ...(target.username ? { username: target.username } : {}),
      ...(target.password !== undefined ? { password: target.password } : {}),
      ...(target.sentinelUsername ? { sentinelUsername: target.sentinelUsername } : {}),
      ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
      ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
      // Hear +switch-master from the sentinels instead of waiting for the old primary's socket to fail.
      failoverDetector: true,
      // A failover is over in seconds: ask the sentinels again soon rather than backing off to 2 s.
      retryStrategy: (times) => Math.min(50 * 2 ** times, 500),
      sentinelRetryStrategy: (times) => Math.min(50 * 2 ** times, 500),
      // A demoted primary that is still up answers READONLY: reconnect, and the sentinels name the new one.
      reconnectOnError: (err) => err.message.startsWith('READONLY'),
    });
  } else {
    const { enableAutoPipelining, ...perNode } = settings;
    const options: ClusterOptions = {
      redisOptions: {
        ...perNode,
        ...(target.username ? { username: target.username } : {}),
        ...(target.password !== undefined ? { password: target.password } : {}),
        ...(target.tls ? { tls: {} } : {}),
      },
      enableOfflineQueue: true,
      ...(enableAutoPipelining ? { enableAutoPipelining } : {}),
      slotsRefreshTimeout: timeoutMs,
      // While a master fails over, its slots answer CLUSTERDOWN or nothing: retry after a short pause
      // (each call stays bounded by the caller's timeout) and re-learn the slots.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      clusterRetryStrategy: (times) => Math.min(100 * 2 ** times, 2000),
    };
    client = new ioredis.Cluster(target.nodes, options);
  }
  client.on('error', report);
  const db = target.kind === 'cluster' ? 0 : target.db;
  // Database 0 needs no SELECT, so only another one can be refused.
  if (db !== 0) await refuseMissingDatabase(client as Redis, db, redactUrl(url), timeoutMs, report);
  return client;
}

/**
 * ioredis sends SELECT as it connects and, when the server refuses the database (`ERR DB index is out
 * of range`, or SELECT on a Cluster node), only emits 'error' and goes on in database 0: sessions and
 * messages would land where nobody else reads them. So a refused database ends the connection: at open
 * (the first connection's answer is awaited, up to timeoutMs) as a ConfigError; on a later reconnect
 * every call fails, naming it. A server that does not answer at open is left to reconnect as before.
 */
function refuseMissingDatabase(
  client: Redis,
  db: number,
  where: string,
  timeoutMs: number,
  onError: (err: Error) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let refused = false;
    let settled = false;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.off('ready', answered);
      if (err) reject(err);
      else resolve();
    };
    const answered = () => {
      // The ready check's INFO is answered after the refused SELECT: not a sign the database was taken.
      if (!refused) settle();
    };
    const timer = setTimeout(() => settle(), timeoutMs);
    client.on('ready', answered);
    client.on('error', (err: Error & { command?: { name?: string } }) => {
      if (err.command?.name?.toLowerCase() !== 'select') return settle();
      refused = true;
      void databaseRefusal(client, db, where, err, timeoutMs).then((refusal) => {
        client.disconnect();
        onError(refusal);
        settle(refusal);
      });
    });
  });
}

/** One line: the URL, the database, the server's words and, when the server says, the ones it has. */
async function databaseRefusal(
  client: Redis,
  db: number,
  where: string,
  err: Error,
  timeoutMs: number,
): Promise<ConfigError> {
  const refused = `${where}: Redis refused database ${db} (${err.message})`;
  if (/cluster/i.test(err.message)) {
    return new ConfigError(
      `${refused}; a Redis Cluster has only database 0: write redis+cluster://host:6379 without one`,
    );
  }
  // CONFIG may be refused (managed Redis, ACLs) or slow: then the message goes without the count.
  const count = await withDeadline(() => client.config('GET', 'databases'), timeoutMs).then(
    (reply) => Number((reply as string[])[1]),
    () => Number.NaN,
  );
  const which =
    Number.isInteger(count) && count > 0
      ? `this server has ${count} database${count === 1 ? '' : 's'} (the "databases" setting in redis.conf): use 0–${count - 1}`
      : 'use a database this server has (the "databases" setting in redis.conf, 16 by default)';
  return new ConfigError(`${refused}; ${which}`, { cause: err });
}

/**
 * Whether the last connection attempt was refused: nothing listens at the host and port, so no
 * timeout would help; Redis must be started there, or the URL must name where it runs.
 */
export function connectionRefused(lastError: Error | undefined): boolean {
  return (lastError as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';
}

/** What a call that found nothing listening at the host and port says, on every backend that can tell. */
export const NOTHING_LISTENS = 'no connection could be made: nothing accepts connections there';

/** A failed call's message, plus the last connection error when that one says something else. */
export function failureDetail(err: unknown, lastError: Error | undefined): string {
  // The sentinels' own answer says why better than "no answer within": the name is wrong.
  if (lastError instanceof SentinelMasterNameError) return lastError.message;
  // ioredis's words for "the connection dropped and the command was not retried" name its own option.
  // The connection was lost under the command: sent on it, or queued by ioredis as its socket closed
  // (a call made while it is not ready waits at the ReadyGate instead). "No connection could be made"
  // alone would say too little.
  const detail =
    err instanceof Error && err.name === 'MaxRetriesPerRequestError'
      ? connectionRefused(lastError)
        ? `the connection was lost before an answer came, and ${NOTHING_LISTENS.replace('no connection', 'no new one')}`
        : 'the connection was lost before an answer came'
      : err instanceof NotSentError && connectionRefused(lastError)
        ? `${NOTHING_LISTENS}; nothing was sent`
        : err instanceof Error
          ? err.message
          : // A client library that rejects with a plain object (amqplib does with some broker replies).
            typeof err === 'object' && err !== null
            ? inspect(err, { breakLength: Number.POSITIVE_INFINITY, depth: 3 })
            : String(err);
  const last = lastError && lastError.message !== detail ? ` (last connection error: ${lastError.message})` : '';
  return `${detail}${last}`;
}
