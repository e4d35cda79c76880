import { hostname } from 'node:os';
import { checkKnownKeys, type KeyShape } from '../core/did-you-mean.js';
import { parseDuration, parsePositiveDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import { defaultLogger, type Logger } from '../core/logger.js';
import { type MetricsOption, registryOf, type ShoalMetrics, metrics as shoalMetrics } from '../core/metrics.js';
import { isSessionStore, type SessionStore } from '../stores/contract.js';
import { instrumentStore } from '../stores/instrument.js';
import { type EncryptionOptions, ValueCipher } from './encryption.js';
import { SessionEvents } from './events.js';
import type { SessionEndHandler } from './lifecycle.js';
import { createNearCache, type NearCache, type NearCacheOptions } from './near-cache.js';
import { secretList } from './signing.js';

/** Default size budget: 512 KiB of JSON per attribute value and per commit. */
export const DEFAULT_MAX_SIZE = 512 * 1024;

/** Counters a /metrics endpoint can read (`manager.stats`); they only ever grow. */
export interface SessionStats {
  /** session.lock() calls that got their lock. */
  lockAcquired: number;
  /** …of which had to wait for another holder first. */
  lockWaited: number;
  /** Total milliseconds spent waiting for locks. */
  lockWaitMs: number;
  /** session.lock() calls that gave up (LockTimeoutError). */
  lockTimeouts: number;
  /** Releases the store refused or missed (the lock then lapses at the end of its lease). */
  lockReleaseFailures: number;
}

/** Attribute name → value type of a session. */
export type SessionSchema = Record<string, unknown>;

/** Runtime validation per attribute: return the value (possibly parsed) or throw. Works with zod's `.parse`. */
export type SessionValidators<T extends SessionSchema> = { [K in keyof T]?: (value: unknown) => T[K] };

export interface SessionStartContext {
  /** The request's client summary (user agent / IP), when the adapter knows it. */
  client?: string | undefined;
}

export interface SessionOptions<T extends SessionSchema = SessionSchema> {
  store: SessionStore;
  /** Signing secrets, newest first (CLI nodes: SHOAL_SECRETS). Required. */
  secrets?: string[];
  cookie?: {
    /** Default "__Host-shoal" when secure, "shoal.sid" otherwise. */
    name?: string;
    /** Default true; false only for plain-HTTP development. */
    secure?: boolean;
    sameSite?: 'Lax' | 'Strict' | 'None';
    /** Seconds; default: none (ends with the browser session). */
    maxAge?: number;
  };
  /** Ends a session after this much inactivity. Default 30m (CLI nodes: SHOAL_IDLE_TIMEOUT). */
  idleTimeout?: string | number;
  /** Ends a session this long after it started, active or not. Default 12h (CLI nodes: SHOAL_ABSOLUTE_TIMEOUT). */
  absoluteTimeout?: string | number;
  /** Minimum time between two touches of an unchanged session. Default: a tenth of idleTimeout, at most 60s. */
  touchInterval?: string | number;
  /** Compare-and-swap attempts of session.update() before ConflictError. Default 20. */
  updateRetries?: number;
  validate?: SessionValidators<T>;
  onSessionStart?: (session: { id: string; userId: string | null }, ctx: SessionStartContext) => void | Promise<void>;
  /**
   * Called exactly once per session for the whole cluster when it ends (idle-timeout,
   * absolute-timeout, destroyed), with the last committed attributes. Rotation
   * (regenerate) is not an end. Needs a store with the lifecycle capability.
   */
  onSessionEnd?: SessionEndHandler;
  /** Sweeper tuning: how often this node looks for ended sessions (250ms), and the claim lease (30s). CLI nodes: SHOAL_SWEEP_INTERVAL, SHOAL_SWEEP_LEASE. */
  sweep?: { interval?: string | number; lease?: string | number; enabled?: boolean };
  /** Names this node in claims and logs. Default host:pid (CLI nodes: SHOAL_NODE_ID). */
  nodeId?: string;
  /**
   * Where store calls, conflicts, lock waits, near-cache reads and refused cookies are counted: by
   * default the process registry (`metricsRegistry()`, what CLI nodes serve on /metrics),
   * `{ registry }` a prom-client Registry of yours, `false` nowhere. The same option as a gateway's and a store's.
   */
  metrics?: MetricsOption;
  /**
   * How logs name the store, e.g. its URL with the password redacted (openApp passes SHOAL_STORE's).
   * Default: the store's kind.
   */
  storeLabel?: string;
  /** Where the manager reports what it cannot tell a request (sweeper failures, lost lock releases). Default: pino at info on stdout. */
  logger?: Logger;
  /**
   * Largest encoded (JSON, before encryption) size in bytes of one attribute value, and of all
   * values one commit writes. Over it, set() — or commit(), for a nested mutation — throws a
   * SessionValueError naming the attribute, and nothing is written. Default 512 KiB (CLI nodes: SHOAL_MAX_SIZE).
   */
  maxSize?: number;
  /**
   * AES-256-GCM encryption of every attribute value at rest. Default off (CLI nodes: on when
   * SHOAL_ENCRYPTION_KEYS is set). `false` turns it off whatever the node's environment says.
   * With encryption, increment() runs as a compare-and-swap update() (the store cannot add to ciphertext).
   */
  encryption?: EncryptionOptions | false;
  /**
   * Which scope this manager serves: "session" (default) or e.g. "client" (see defineClientScope).
   * Cookies are signed per scope, so one scope's cookie is never accepted as another's.
   */
  scope?: string;
  /**
   * Per-process LRU of recently loaded sessions, validated by `rev` on every read: a read still asks
   * the store, in one round trip, but gets only the meta back when nothing changed. Pays off for
   * large sessions and with encryption (see docs/sessions.md#near-cache). Default off. Stores without
   * `loadIfChanged` (memcached) ignore it and load in full.
   */
  nearCache?: NearCacheOptions | false;
}

type Keys<O> = Record<keyof Required<O>, true | KeyShape>;

/** Every option of a session manager, nested ones by their own keys: what unknown keys are checked against. */
export const SESSION_OPTION_KEYS = {
  store: true,
  secrets: true,
  cookie: { name: true, secure: true, sameSite: true, maxAge: true } satisfies Keys<
    NonNullable<SessionOptions['cookie']>
  >,
  idleTimeout: true,
  absoluteTimeout: true,
  touchInterval: true,
  updateRetries: true,
  validate: true,
  onSessionStart: true,
  onSessionEnd: true,
  sweep: { interval: true, lease: true, enabled: true } satisfies Keys<NonNullable<SessionOptions['sweep']>>,
  nodeId: true,
  metrics: true,
  storeLabel: true,
  logger: true,
  maxSize: true,
  encryption: { keys: true, allowPlaintext: true } satisfies Keys<EncryptionOptions>,
  scope: true,
  nearCache: { maxEntries: true, maxBytes: true } satisfies Keys<NearCacheOptions>,
} as const satisfies Keys<SessionOptions>;

/**
 * Refuses a session option that is not one ("unknown option session.idleTimout; did you mean
 * idleTimeout?"): misspelt in plain JavaScript, it would leave the setting it meant at its default.
 */
export function checkSessionKeys(o: unknown, where = ''): void {
  checkKnownKeys(o, SESSION_OPTION_KEYS, where);
}

/** Settings resolved once per manager; frozen, so nothing can change them under a running node. */
export interface SessionConfig<T extends SessionSchema = SessionSchema> {
  readonly secrets: readonly string[];
  readonly cookieName: string;
  readonly secure: boolean;
  readonly sameSite: 'Lax' | 'Strict' | 'None';
  readonly maxAge: number | undefined;
  readonly idleMs: number;
  readonly absoluteMs: number;
  readonly touchMs: number;
  readonly updateRetries: number;
  readonly validate: Readonly<SessionValidators<T>>;
  readonly onSessionStart: SessionOptions<T>['onSessionStart'];
  readonly onSessionEnd: SessionEndHandler | undefined;
  readonly sweepEnabled: boolean;
  readonly sweepIntervalMs: number;
  readonly sweepLeaseMs: number;
  readonly nodeId: string;
  readonly maxSize: number;
  readonly scope: string;
  readonly storeLabel: string;
}

/** What a manager works with: the (instrumented) store and the per-manager helpers and counters. */
export interface SessionServices {
  readonly store: SessionStore;
  readonly cipher: ValueCipher | null;
  /** null when off or when the store cannot check a rev in one round trip. */
  readonly nearCache: NearCache | null;
  /** null with `metrics: false`. */
  readonly metrics: ShoalMetrics | null;
  readonly logger: Logger;
  readonly stats: SessionStats;
}

/** Everything one request's Session needs from its manager. */
export interface SessionContext<T extends SessionSchema = SessionSchema> {
  readonly config: SessionConfig<T>;
  readonly services: SessionServices;
  readonly events: SessionEvents;
}

export function resolveSession<T extends SessionSchema>(o: SessionOptions<T>): SessionContext<T> {
  const call = checkStore(o);
  checkSessionKeys(o);
  checkShapes(o as SessionOptions<SessionSchema>, call);
  const logger = o.logger ?? defaultLogger();
  const events = new SessionEvents((err, event) => logger.warn({ err, event }, `a session ${event} listener failed`));
  const secure = o.cookie?.secure ?? true;
  const idleMs = parsePositiveDuration(o.idleTimeout ?? '30m', 'idleTimeout', "'30m'");
  const scope = o.scope ?? 'session';
  const config: SessionConfig<T> = Object.freeze({
    secrets: Object.freeze([...secretList(o.secrets)]),
    cookieName: o.cookie?.name ?? (secure ? '__Host-shoal' : 'shoal.sid'),
    secure,
    sameSite: sameSiteOf(o.cookie?.sameSite) ?? 'Lax',
    maxAge: o.cookie?.maxAge,
    idleMs,
    absoluteMs: parsePositiveDuration(o.absoluteTimeout ?? '12h', 'absoluteTimeout', "'12h'"),
    touchMs: parseDuration(o.touchInterval ?? Math.min(Math.floor(idleMs / 10), 60_000), 'touchInterval'),
    updateRetries: o.updateRetries ?? 20,
    // No prototype: a key such as "toString" or "constructor" must not find Object's methods as its validator.
    validate: Object.freeze(Object.assign(Object.create(null), o.validate)) as SessionValidators<T>,
    onSessionStart: o.onSessionStart,
    onSessionEnd: o.onSessionEnd,
    sweepEnabled: o.sweep?.enabled ?? true,
    sweepIntervalMs: parsePositiveDuration(o.sweep?.interval ?? 250, 'sweep.interval', "'250ms'"),
    sweepLeaseMs: parsePositiveDuration(o.sweep?.lease ?? '30s', 'sweep.lease', "'30s'"),
    nodeId: o.nodeId ?? `${hostname()}:${process.pid}`,
    maxSize: resolveMaxSize(o.maxSize),
    scope,
    storeLabel: o.storeLabel ? `${o.store.kind} ${o.storeLabel}` : o.store.kind,
  });
  // Every store call is counted and timed (/metrics) unless turned off.
  const registry = registryOf(o.metrics);
  const m = registry ? shoalMetrics(registry) : null;
  const store = m ? instrumentStore(o.store, m) : o.store;
  if (m) events.on('cookieRejected', (reason) => m.cookiesRejected.inc({ scope, reason }));
  const services: SessionServices = Object.freeze({
    store,
    cipher: o.encryption ? new ValueCipher(o.encryption) : null,
    nearCache: createNearCache(store, o.nearCache, m ? (result) => m.nearCacheReads.inc({ scope, result }) : undefined),
    metrics: m,
    logger,
    stats: { lockAcquired: 0, lockWaited: 0, lockWaitMs: 0, lockTimeouts: 0, lockReleaseFailures: 0 },
  });
  return { config, services, events };
}

/**
 * Plain JavaScript can leave out the one option TypeScript requires; say which, and how to make one.
 * Returns the call the errors name (defineSession or defineClientScope).
 */
function checkStore(o: SessionOptions<SessionSchema> | undefined): string {
  const scope = o?.scope === 'client' ? 'defineClientScope' : 'defineSession';
  if (typeof o !== 'object' || o === null) {
    throw new ConfigError(
      `${scope}() takes an options object: ${scope}({ store: await createStore(url), secrets: [secret] })`,
    );
  }
  if (isSessionStore(o.store)) return scope;
  const got = o.store === undefined ? 'no store was given' : `got ${kindOf(o.store)}`;
  throw new ConfigError(
    `${scope}() needs \`store\`, a session store: store: await createStore('redis://127.0.0.1:6379') (any URL createStore takes, or createStore() for the embedded SQLite file); ${got}`,
  );
}

/**
 * The options plain JavaScript can get wrong without a word: an object where one goes, functions in
 * `validate` and the hooks, a SameSite browsers know. Spread or called later, a wrong one would
 * fail far from here, or not at all.
 */
function checkShapes(o: SessionOptions<SessionSchema>, scope: string): void {
  const refuse = (name: string, value: unknown, use: string): never => {
    throw new ConfigError(`${scope}(): ${name} is ${kindOf(value)}; ${use}`);
  };
  for (const name of ['cookie', 'validate', 'sweep'] as const) {
    const value = o[name];
    if (value !== undefined && (typeof value !== 'object' || value === null)) refuse(name, value, 'pass an object');
  }
  for (const [key, fn] of Object.entries(o.validate ?? {})) {
    if (typeof fn !== 'function') refuse(`validate.${key}`, fn, 'pass a function that returns the value or throws');
  }
  for (const name of ['onSessionStart', 'onSessionEnd'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'function') refuse(name, o[name], 'pass a function');
  }
  const sameSite = o.cookie?.sameSite;
  if (sameSite !== undefined && sameSiteOf(sameSite) === undefined) {
    throw new ConfigError(`${scope}(): cookie.sameSite is ${JSON.stringify(sameSite)}; use 'Lax', 'Strict' or 'None'`);
  }
  const retries = o.updateRetries;
  if (retries !== undefined && !(Number.isInteger(retries) && retries >= 0)) {
    refuse('updateRetries', retries, 'use a whole number of retries, 0 or more');
  }
}

/** SameSite as the cookie writes it; browsers read the attribute in any case, so 'lax' is Lax. */
function sameSiteOf(value: unknown): 'Lax' | 'Strict' | 'None' | undefined {
  if (typeof value !== 'string') return undefined;
  const v = value.toLowerCase();
  return v === 'lax' ? 'Lax' : v === 'strict' ? 'Strict' : v === 'none' ? 'None' : undefined;
}

function resolveMaxSize(value: number | undefined): number {
  if (value === undefined) return DEFAULT_MAX_SIZE;
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigError(`maxSize must be a positive whole number of bytes, got ${value}`);
  }
  return value;
}
