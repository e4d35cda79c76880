import type { Client, ClientConfig } from 'pg';
import { ConfigError } from './errors.js';

/**
 * PostgreSQL URLs with several hosts, as libpq writes them:
 * `postgres://user@h1:5432,h2:5432/db?target_session_attrs=read-write`. node-postgres connects to one
 * host, so shoal picks it: each new connection goes to the host that last answered as a primary; if
 * it does not answer, or answers as a standby (after a failover), the hosts are tried in order and
 * the first that accepts writes is used from then on. One query per new connection
 * (`pg_is_in_recovery()`) proves it, so a demoted primary is left as soon as a connection to it is
 * replaced. With one host nothing changes.
 */
export interface PgHosts {
  /** The URL with only the first host, for node-postgres. */
  url: string;
  hosts: Array<{ host: string; port: number }>;
  /** `read-write` (the default with several hosts: sessions are written) or `any`. */
  attrs: 'read-write' | 'any';
  /** The URL naming only `host` (its settings, user and database kept). */
  urlFor(host: { host: string; port: number }): string;
}

const ATTRS = ['read-write', 'primary', 'any'] as const;

export function parsePgHosts(url: string): PgHosts {
  const m = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/i.exec(url.trim());
  if (!m) return { url, hosts: [], attrs: 'any', urlFor: () => url };
  const [, scheme = '', auth = '', hostList = '', rest = ''] = m;
  // No host (a Unix socket given as ?host=…) or one host and nothing asked of it: node-postgres reads it as it is.
  const plain = { url, hosts: [], attrs: 'any' as const, urlFor: () => url };
  if (
    !hostList ||
    (!hostList.includes(',') && !/[?&]target_session_attrs=/.test(rest) && /^[^:]*(:\d{1,5})?$/.test(hostList))
  )
    return plain;
  const hosts = hostList.split(',').map((h) => {
    const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(h);
    const [host, port] = v6 ? [v6[1] ?? '', v6[2]] : [h.split(':')[0] ?? '', h.split(':')[1]];
    return { host, port: port === undefined ? 5432 : Number(port) };
  });
  if (hosts.some((h) => !h.host || !Number.isInteger(h.port) || h.port < 1 || h.port > 65535)) {
    throw new ConfigError(
      `"${hostList}" is not a list of PostgreSQL hosts: write postgres://user@host1:5432,host2:5432/db`,
    );
  }
  const query = new URLSearchParams(/\?([^#]*)/.exec(rest)?.[1] ?? '');
  const wanted = query.get('target_session_attrs') ?? (hosts.length > 1 ? 'read-write' : 'any');
  if (!(ATTRS as readonly string[]).includes(wanted)) {
    throw new ConfigError(`target_session_attrs=${wanted} is not supported: use read-write (or primary) or any`);
  }
  query.delete('target_session_attrs');
  const q = query.toString();
  const path = rest.replace(/\?[^#]*/, '') + (q ? `?${q}` : '');
  const first = hostList.split(',')[0] ?? '';
  const urlFor = (h: { host: string; port: number }) =>
    `${scheme}${auth}${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}${path}`;
  return { url: `${scheme}${auth}${first}${path}`, hosts, attrs: wanted === 'any' ? 'any' : 'read-write', urlFor };
}

type PgModule = typeof import('pg');
type Host = PgHosts['hosts'][number];

/** Whether `host` accepts writes, asked with the settings (user, password, TLS…) of the connection that wants to know. */
type Probe = (host: Host, settings: ClientConfig) => Promise<boolean>;

/**
 * Where new connections go, shared by every connection of one pool (and its LISTEN connection):
 * the host last proven a primary, or, after a failure, the first host (from that one on) that a
 * probe finds accepting writes.
 */
class Target {
  #index = 0;
  #verified: boolean;
  #probing: Promise<Host> | undefined;
  constructor(
    private readonly hosts: Host[],
    private readonly probe: Probe,
  ) {
    // Several hosts: the first connection finds the primary rather than assume the first host is one.
    this.#verified = hosts.length <= 1;
  }

  /** The host to connect to; `settings` are the connecting client's, for a probe it may need first. */
  async resolve(settings: ClientConfig): Promise<Host> {
    const current = this.hosts[this.#index] as Host;
    if (this.#verified) return current;
    this.#probing ??= this.#find(settings).finally(() => {
      this.#probing = undefined;
    });
    return this.#probing;
  }

  /** The host failed or turned out a standby: the next connection probes for the primary. */
  invalidate(): void {
    this.#verified = false;
  }

  async #find(settings: ClientConfig): Promise<Host> {
    const errors: string[] = [];
    for (let k = 0; k < this.hosts.length; k++) {
      const i = (this.#index + k) % this.hosts.length;
      const host = this.hosts[i] as Host;
      try {
        if (await this.probe(host, settings)) {
          this.#index = i;
          this.#verified = true;
          return host;
        }
        errors.push(`${host.host}:${host.port} is a standby`);
      } catch (err) {
        errors.push(`${host.host}:${host.port}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    throw new Error(`no PostgreSQL host accepts writes (${errors.join('; ')})`);
  }
}

/**
 * The `pg` module as the store and bus use it (`Pool`, `Client`), its Client going to the hosts'
 * primary; the module itself when the URL names one host and asks nothing of it.
 */
export function pgForHosts(pg: PgModule, hosts: PgHosts): PgModule {
  if (hosts.hosts.length <= 1 && hosts.attrs === 'any') return pg;
  const target = new Target(hosts.hosts, async (at, settings) => {
    // The URL names the host: node-postgres lets a connection string win over host and port.
    const probe = new pg.Client({ ...settings, connectionString: hosts.urlFor(at) });
    probe.on('error', () => {});
    try {
      await probe.connect();
      return !(await isStandby(probe, hosts.attrs));
    } finally {
      await probe.end().catch(() => {});
    }
  });

  class HostClient extends pg.Client {
    /** What this client was made with, which a probe for the primary connects with too. */
    readonly #settings: ClientConfig;
    constructor(config?: ClientConfig | string) {
      super(config as ClientConfig);
      this.#settings = typeof config === 'string' ? { connectionString: config } : (config ?? {});
    }

    override connect(): Promise<Client>;
    override connect(callback: (err: Error | null, client?: Client) => void): void;
    override connect(callback?: (err: Error | null, client?: Client) => void): Promise<Client> | undefined {
      const done = this.#connectToPrimary().then(() => this as Client);
      if (!callback) return done;
      done.then((c) => callback(null, c), callback);
      return undefined;
    }

    async #connectToPrimary(): Promise<void> {
      const at = await target.resolve(this.#settings);
      // node-postgres reads the address from these when it opens the socket.
      Object.assign(this, { host: at.host, port: at.port });
      Object.assign((this as unknown as { connectionParameters: object }).connectionParameters, at);
      try {
        await super.connect();
        if (await isStandby(this, hosts.attrs)) {
          await this.end().catch(() => {});
          throw new Error(
            `PostgreSQL at ${at.host}:${at.port} is a standby now (read-only); the next connection looks for the primary`,
          );
        }
      } catch (err) {
        target.invalidate();
        throw err;
      }
    }
  }
  class HostPool extends pg.Pool {
    constructor(config?: ConstructorParameters<typeof pg.Pool>[0]) {
      super({ ...config, Client: HostClient });
    }
  }
  return { ...pg, Client: HostClient, Pool: HostPool } as PgModule;
}

async function isStandby(client: Client, attrs: PgHosts['attrs']): Promise<boolean> {
  if (attrs === 'any') return false;
  const r = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
  return r.rows[0]?.standby === true;
}
