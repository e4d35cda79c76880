import { createHash } from 'node:crypto';
import type { Client, Response, Server } from 'memjs';
import { DeadlineQueue } from '../core/deadlines.js';
import { ConfigError, SessionValueError, StoreUnavailableError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';

/**
 * The few memcached binary-protocol operations the session store needs, on top
 * of memjs's connections. memjs 1.x has no gets/cas (its set/add/delete leave the
 * CAS field zero), so requests are built here and sent through memjs's servers,
 * which keeps its socket handling, SASL auth and key → server hashing.
 */

type Memjs = typeof import('memjs');

const OP = { get: 0x00, set: 0x01, add: 0x02, version: 0x0b } as const;
const STATUS = { ok: 0x00, notFound: 0x01, exists: 0x02, tooLarge: 0x03, notStored: 0x05 } as const;
/** Past this many seconds memcached reads an expiry as a Unix timestamp. */
const MAX_RELATIVE_EXPIRY_S = 30 * 24 * 3600;
const MAX_KEY_BYTES = 250;

export interface McItem {
  value: string;
  /** Opaque version: a write carrying it succeeds only if nobody wrote since. */
  cas: Buffer;
}

/** ok · exists: someone wrote since the read (CAS mismatch) · missing: the item expired or was evicted. */
export type McWriteOutcome = 'ok' | 'exists' | 'missing';

export interface McConnection {
  get(key: string): Promise<McItem | null>;
  /** Stores only if the key is absent; false when it exists. */
  add(key: string, value: string, untilMs: number): Promise<boolean>;
  /** Stores only if the item is still at version `cas`. */
  casSet(key: string, value: string, untilMs: number, cas: Buffer): Promise<McWriteOutcome>;
  /** Resolves when every server answers. */
  ping(): Promise<void>;
  /** Bumped on every transport failure, so callers queued behind a failed call can fail fast. */
  readonly failures: number;
  close(): void;
}

interface ServerAddress {
  host: string;
  port: number;
  username?: string;
  password?: string;
}

/** `memcached://[user:pass@]host[:port][,host[:port]…]` → servers (port 11211 by default). */
export function parseMemcachedUrl(url: string): ServerAddress[] {
  const prefix = 'memcached://';
  const list = url.startsWith(prefix) ? url.slice(prefix.length).split(/[/?#]/)[0] : undefined;
  const servers = (list ?? '').split(',').map((entry) => {
    const at = entry.lastIndexOf('@');
    const hostPort = entry.slice(at + 1);
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(hostPort);
    const host = m?.[1] ?? m?.[2];
    if (!host) {
      throw new ConfigError(
        `memcached store URL has an invalid server "${hostPort}": use memcached://host:11211[,host2:11211].`,
      );
    }
    const address: ServerAddress = { host, port: Number(m?.[3] ?? 11211) };
    if (at >= 0) {
      const [user = '', pass = ''] = entry.slice(0, at).split(':');
      address.username = decodeURIComponent(user);
      address.password = decodeURIComponent(pass);
    }
    return address;
  });
  return servers;
}

/** Memcached keys are at most 250 bytes of printable ASCII without spaces; longer or odd keys are hashed. */
export function itemKey(raw: string): string {
  if (/^[\x21-\x7e]+$/.test(raw) && raw.length <= MAX_KEY_BYTES) return raw;
  return `shoal:h:${createHash('sha256').update(raw).digest('base64url')}`;
}

/** Expiry field for an item that may be dropped at `untilMs` (never 0, which would mean "never"). */
export function expiryFor(untilMs: number, now = Date.now()): number {
  const seconds = Math.max(1, Math.ceil((untilMs - now) / 1000));
  return seconds <= MAX_RELATIVE_EXPIRY_S ? seconds : Math.ceil(untilMs / 1000);
}

export async function connectMemcached(url: string, timeoutMs: number): Promise<McConnection> {
  const addresses = parseMemcachedUrl(url);
  const loaded = await importOptional<Memjs & { default?: Memjs }>('memjs', 'The memcached session store');
  const memjs = loaded.default ?? loaded;
  const serverOptions = { timeout: timeoutMs / 1000, conntimeout: timeoutMs / 1000, keepAlive: true };
  const servers = addresses.map((a) => new memjs.Server(a.host, a.port, a.username, a.password, serverOptions));
  // retries: 1 = no silent resend: a resent CAS write whose first copy landed would read as a conflict.
  const client: Client = new memjs.Client(servers, { retries: 1, failover: false, logger: { log() {} } });
  const where = addresses.map((a) => `${a.host}:${a.port}`).join(',');
  let failures = 0;
  let closed = false;

  const unavailable = (what: string, cause: unknown) =>
    new StoreUnavailableError(
      'memcached',
      `${what} failed at ${where}: ${cause instanceof Error ? cause.message : String(cause)}. Check that memcached is running and SHOAL_STORE points at it.`,
      { cause },
    );

  // memjs's own timers lose requests when a socket closes without an error, so these are the real bound.
  const deadlines = new DeadlineQueue(timeoutMs);
  const exchange = (server: Server, what: string, request: Buffer, seq: number): Promise<Response> =>
    new Promise((resolve, reject) => {
      const failed = (cause: unknown) => {
        failures += 1;
        reject(unavailable(what, cause));
      };
      const deadline = deadlines.add(() => failed(new Error(`no answer within ${timeoutMs} ms`)));
      const fail = (cause: unknown) => {
        if (deadline.done) return;
        deadlines.settle(deadline);
        failed(cause);
      };
      server.onResponse(seq, (response) => {
        if (deadline.done) return;
        deadlines.settle(deadline);
        resolve(response);
      });
      server.onError(seq, fail);
      try {
        server.write(request);
      } catch (err) {
        fail(err);
      }
    });

  const call = (
    what: string,
    opcode: number,
    key: string,
    extras: Buffer | string = '',
    value: string = '',
    cas?: Buffer,
  ): Promise<Response> => {
    if (closed) return Promise.reject(unavailable(what, new Error('the store was closed')));
    const server = client.server(key);
    if (!server) return Promise.reject(unavailable(what, new Error('no server available')));
    client.incrSeq();
    const request = memjs.Utils.makeRequestBuffer(opcode, key, extras, value, client.seq);
    cas?.copy(request, 16);
    return exchange(server, what, request, client.seq);
  };

  const storeExtras = (untilMs: number) => {
    const extras = Buffer.alloc(8); // flags (0) + expiry
    extras.writeUInt32BE(expiryFor(untilMs), 4);
    return extras;
  };

  // No key in messages: session keys carry the session id, which logs must not.
  const unexpected = (what: string, r: Response): Error => {
    if (r.header.status === STATUS.tooLarge) {
      return new SessionValueError(
        `memcached refused to store a session: it is larger than its item size limit (1 MiB by default). Store less in the session or start memcached with a larger -I (e.g. -I 4m).`,
      );
    }
    return unavailable(what, new Error(`status 0x${r.header.status.toString(16)} ${r.val.toString()}`));
  };

  return {
    get failures() {
      return failures;
    },

    async get(key) {
      const r = await call('get', OP.get, key);
      if (r.header.status === STATUS.notFound) return null;
      if (r.header.status !== STATUS.ok) throw unexpected('get', r);
      return { value: r.val.toString('utf8'), cas: Buffer.from(r.header.cas) };
    },

    async add(key, value, untilMs) {
      const r = await call('add', OP.add, key, storeExtras(untilMs), value);
      if (r.header.status === STATUS.exists || r.header.status === STATUS.notStored) return false;
      if (r.header.status !== STATUS.ok) throw unexpected('add', r);
      return true;
    },

    async casSet(key, value, untilMs, cas) {
      const r = await call('cas', OP.set, key, storeExtras(untilMs), value, cas);
      if (r.header.status === STATUS.ok) return 'ok';
      if (r.header.status === STATUS.exists) return 'exists';
      if (r.header.status === STATUS.notFound) return 'missing';
      throw unexpected('cas', r);
    },

    async ping() {
      if (closed) throw unavailable('ping', new Error('the store was closed'));
      await Promise.all(
        client.servers.map((server) => {
          client.incrSeq();
          const request = memjs.Utils.makeRequestBuffer(OP.version, '', '', '', client.seq);
          return exchange(server, 'ping', request, client.seq);
        }),
      );
    },

    close() {
      closed = true;
      client.close();
    },
  };
}
