import type { Bus } from '../bus/contract.js';
import { checkKnownKeys, type KeyShape } from '../core/did-you-mean.js';
import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import { defaultLogger, type Logger, type LogLine, lineWriter } from '../core/logger.js';
import type { MetricsOption } from '../core/metrics.js';
import { checkReadable } from '../session/attribute-values.js';
import type { SessionManager } from '../session/manager.js';
import { failingClosed } from './access.js';
import type { AuthorizeContext, AuthorizeHook, SessionAttributes } from './authorize-context.js';
import type { ConnectProxyOptions } from './connect-proxy.js';
import type { ConnectionInfoHook } from './connection-info.js';
import {
  ConnectionLimits,
  DEFAULT_MAX_CONNECTIONS_PER_SESSION,
  DEFAULT_MAX_CONNECTIONS_PER_USER,
} from './connection-limits.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { KeepSessionAlive } from './keep-alive.js';
import { allowedOrigins } from './origin.js';
import { checkPublishKey } from './publish-key.js';
import { createPublisher, type Publisher } from './publisher.js';
import {
  type RequestContext,
  type RequestLimits,
  type ResolvedRequestLimits,
  type RpcHandler,
  type RpcProxyOptions,
  resolveRequestLimits,
} from './rpc-types.js';
import { type SubscribeProxyOptions, subscribeProxyAuthorize } from './subscribe-proxy.js';
import { createTokenVerifier, type TokenOptions, type TokenVerifier } from './tokens.js';

export type { AuthorizeContext, SessionAttributes };

export interface GatewayOptions {
  id?: string;
  bus: Bus;
  sessions: SessionManager;
  /**
   * Allowed Origin values, e.g. ["https://app.example.com"], each as a browser sends it (scheme://host[:port],
   * a trailing slash is dropped), or "*" for any. Required for WebSocket handshakes. An entry no browser
   * sends (no scheme, a path) is a ConfigError.
   */
  origins: string[];
  /**
   * May this session join this channel? `user:<own id>` and `session:<own id>` are always allowed.
   * `session.attributes` are the session's values as `session.get()` returns them; one that cannot
   * be decoded throws where it is read, and the join is then denied and logged.
   */
  authorize?: AuthorizeHook | undefined;
  /**
   * Signed connection and subscription tokens (JWT, `?token=` on the connect URL, `token` on a
   * `sub`): HS256 with `secret`, RS256/ES256 with keys from `jwksUrl`. Unset: tokens are refused
   * with 4410 and only the session cookie lets a client in.
   */
  tokens?: TokenOptions;
  /**
   * The app answers who connects (instead of shoal's session cookie): handshakes without a token
   * are POSTed to it. No answer in time, an error status or malformed JSON closes with 4013.
   */
  connectProxy?: ConnectProxyOptions | undefined;
  /** `authorize` as an HTTP call to the app (used when `authorize` is not given): see subscribe-proxy.ts. */
  subscribeProxy?: SubscribeProxyOptions | undefined;
  /** Methods clients call with `rpc`, answered in this process: `{ [method]: async (ctx, data) => result }`. */
  rpc?: Record<string, RpcHandler> | undefined;
  /** Methods without an in-process handler are POSTed to the app: see rpc-proxy.ts. */
  rpcProxy?: RpcProxyOptions | undefined;
  /**
   * What a connection shows others in presence answers (e.g. `(who) => ({ name: who.attributes.name })`),
   * at most 1 KiB as JSON; used when its credential carries none (a token's `info` claim, the connect
   * proxy's `info`). `who` is what `authorize` gets; a hook that throws leaves the connection without info.
   */
  connectionInfo?: ConnectionInfoHook | undefined;
  /** May this client publish `event` on `channel` (a `pub` frame)? Unset: clients may not publish. */
  canPublish?: ((ctx: RequestContext, channel: string, event: string) => boolean | Promise<boolean>) | undefined;
  /** Bounds on `rpc`, `pub` and `history` frames per connection. */
  requestLimits?: RequestLimits | undefined;
  /**
   * Bearer key for POST /publish and the rest of the server API (producers in other languages), at
   * least 16 characters. Unset: the endpoints answer 404.
   */
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
  /**
   * What keeps the session alive on the gateway, the same for WebSocket and SSE: `'open'`
   * (default: an open connection, touched at most once per the session's touch interval),
   * `'inbound'` (only frames from the client) or `false` (only web requests). See docs/sessions.md.
   */
  keepSessionAlive?: KeepSessionAlive;
  /**
   * How often this gateway tells the others it is alive (default 5 s), and after how long without
   * a word the others drop its users (default 15 s: three heartbeats). Changes go out at once.
   */
  presence?: { heartbeatMs?: number; ttlMs?: number };
  /** Where the gateway logs (pino-shaped; default a pino logger at info). `silentLogger` drops everything. */
  logger?: Logger;
  /**
   * Where the gateway counts (connections, messages, refusals), served on its /metrics: by default
   * the process registry (`metricsRegistry()`), `{ registry }` a prom-client Registry of yours,
   * `false` nowhere (/metrics answers 404). The same option as a session manager's and a store's.
   */
  metrics?: MetricsOption;
}

type Keys<O> = Record<keyof Required<O>, true | KeyShape>;

/** The keys of the options objects a gateway and an app's `realtime` share, for unknown-key checks. */
export const REALTIME_OPTION_SHAPES = {
  tokens: {
    secret: true,
    jwksUrl: true,
    audience: true,
    issuer: true,
    clockToleranceSec: true,
    jwksTimeoutMs: true,
  } satisfies Keys<TokenOptions>,
  connectProxy: { url: true, headers: true, timeoutMs: true } satisfies Keys<ConnectProxyOptions>,
  subscribeProxy: { url: true, timeoutMs: true } satisfies Keys<SubscribeProxyOptions>,
  rpcProxy: { url: true, timeoutMs: true, headers: true } satisfies Keys<RpcProxyOptions>,
  requestLimits: {
    maxBytes: true,
    perSecond: true,
    maxInFlight: true,
    maxHistory: true,
    handlerTimeoutMs: true,
  } satisfies Keys<RequestLimits>,
} as const;

const GATEWAY_OPTION_KEYS = {
  ...REALTIME_OPTION_SHAPES,
  id: true,
  bus: true,
  sessions: true,
  origins: true,
  authorize: true,
  rpc: true,
  connectionInfo: true,
  canPublish: true,
  publishKey: true,
  maxMessageBytes: true,
  maxBufferedBytes: true,
  rateLimit: true,
  heartbeatMs: true,
  canaryMs: true,
  maxConnectionsPerSession: true,
  maxConnectionsPerUser: true,
  keepSessionAlive: true,
  presence: { heartbeatMs: true, ttlMs: true },
  logger: true,
  metrics: true,
} as const satisfies Keys<GatewayOptions>;

/** Refuses an option createGateway() does not take, naming the nearest one it does. */
export function checkGatewayKeys(o: unknown): void {
  checkKnownKeys(o, GATEWAY_OPTION_KEYS);
}

/** The options with every default applied: what the gateway's parts are built from. */
export interface GatewaySettings {
  id: string;
  bus: Bus;
  sessions: SessionManager;
  origins: readonly string[];
  authorize: GatewayOptions['authorize'];
  tokens: TokenVerifier;
  connectProxy: ConnectProxyOptions | undefined;
  connectionInfo: ConnectionInfoHook | undefined;
  publishKey: string | undefined;
  requests: {
    handlers: Record<string, RpcHandler>;
    proxy: RpcProxyOptions | undefined;
    /** Headers each connection keeps from its handshake for the RPC proxy (besides Cookie). */
    forward: string[] | undefined;
    canPublish: GatewayOptions['canPublish'];
    limits: ResolvedRequestLimits;
    publisher: Publisher;
  };
  maxMessageBytes: number;
  maxBufferedBytes: number;
  rateLimit: number;
  heartbeatMs: number;
  canaryMs: number;
  limits: ConnectionLimits;
  keepSessionAlive: KeepSessionAlive;
  presence: { heartbeatMs: number; ttlMs: number };
  /** `{ level, msg, …fields }` lines to the logger. */
  log: (line: LogLine) => void;
}

export function resolveGatewayOptions(o: GatewayOptions, defaultId: string, metrics: GatewayMetrics): GatewaySettings {
  // The hooks read session values through the manager's own settings (encryption, validate).
  checkReadable(o.sessions);
  const log = lineWriter(o.logger ?? defaultLogger());
  const authorize = o.authorize ?? (o.subscribeProxy ? subscribeProxyAuthorize(o.subscribeProxy, metrics) : undefined);
  return {
    id: o.id ?? defaultId,
    bus: o.bus,
    sessions: o.sessions,
    // One no browser sends is a configuration error: the gateway would answer 403 to every handshake.
    origins: allowedOrigins(o.origins, 'origins'),
    authorize: failingClosed(authorize, log),
    // A bad secret or JWKS URL is a configuration error, thrown before anything is started.
    tokens: createTokenVerifier(o.tokens),
    connectProxy: o.connectProxy,
    connectionInfo: o.connectionInfo,
    publishKey: checkPublishKey(o.publishKey, 'publishKey'),
    requests: {
      handlers: o.rpc ?? {},
      proxy: o.rpcProxy,
      forward: o.rpcProxy ? (o.rpcProxy.headers ?? o.connectProxy?.headers ?? []) : undefined,
      canPublish: o.canPublish,
      limits: resolveRequestLimits(o.requestLimits),
      publisher: createPublisher(o.bus),
    },
    maxMessageBytes: positive(o.maxMessageBytes, 'maxMessageBytes', 64 * 1024),
    maxBufferedBytes: positive(o.maxBufferedBytes, 'maxBufferedBytes', 1024 * 1024),
    rateLimit: positive(o.rateLimit, 'rateLimit', 50),
    heartbeatMs: positive(o.heartbeatMs, 'heartbeatMs', 20_000),
    canaryMs: positive(o.canaryMs, 'canaryMs', 1000),
    // A bad limit is a configuration error, thrown before anything is subscribed or started.
    limits: new ConnectionLimits(
      o.maxConnectionsPerSession ?? DEFAULT_MAX_CONNECTIONS_PER_SESSION,
      o.maxConnectionsPerUser ?? DEFAULT_MAX_CONNECTIONS_PER_USER,
    ),
    keepSessionAlive: o.keepSessionAlive ?? 'open',
    presence: {
      heartbeatMs: positive(o.presence?.heartbeatMs, 'presence.heartbeatMs', 5000),
      ttlMs: positive(o.presence?.ttlMs, 'presence.ttlMs', 15_000),
    },
    log,
  };
}

/**
 * A numeric option, or its default. Types catch a string here, plain JavaScript does not: "5" would
 * reach a timer or a comparison and misbehave quietly, so it is refused at start instead.
 */
function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value === 'number' && Number.isFinite(value) && value > 0) return value;
  throw new ConfigError(
    `createGateway(): ${name} must be a number above 0${name.endsWith('Ms') ? ' (milliseconds)' : ''}, got ${typeof value === 'string' ? JSON.stringify(value) : kindOf(value)}`,
  );
}
