import type { RequestListener } from 'node:http';
import type { Bus } from '../bus/contract.js';
import { checkKnownKeys, type KeyShape } from '../core/did-you-mean.js';
import { ConfigError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import type { ConnectProxyOptions } from '../realtime/connect-proxy.js';
import type { AuthorizeContext } from '../realtime/gateway.js';
import { REALTIME_OPTION_SHAPES } from '../realtime/gateway-options.js';
import type { KeepSessionAlive } from '../realtime/keep-alive.js';
import type { EventMap, Publisher } from '../realtime/publisher.js';
import type { RequestContext, RequestLimits, RpcHandler, RpcProxyOptions } from '../realtime/rpc-types.js';
import type { SubscribeProxyOptions } from '../realtime/subscribe-proxy.js';
import type { TokenOptions } from '../realtime/tokens.js';
import type { ClientScopeOptions } from '../session/client-scope.js';
import type { SessionData } from '../session/data.js';
import type { SessionManager } from '../session/manager.js';
import { checkSessionKeys, SESSION_OPTION_KEYS, type SessionOptions, type SessionSchema } from '../session/options.js';
import type { SessionStore } from '../stores/contract.js';

export type { AuthorizeContext };

/** Where a node runs: its name in the cluster and its environment (the CLI passes process.env). */
export interface NodeContext {
  /** Stable name of this node in the cluster, e.g. "web-2". */
  nodeId: string;
  env: NodeJS.ProcessEnv;
}

/**
 * Session settings shared by web nodes and gateways. The store and the signing secrets come
 * from the node's configuration (SHOAL_STORE, SHOAL_SECRETS) unless given here.
 */
export type AppSessionOptions<T extends SessionSchema = SessionSchema> = Omit<SessionOptions<T>, 'store'> & {
  store?: SessionStore;
};

/** What the runtime hands to `web(ctx)`: everything is open and closed for you. */
export interface WebContext<T extends SessionSchema = SessionSchema, E extends EventMap = EventMap>
  extends NodeContext {
  /** The session manager both tiers share: `app.use(session(ctx.sessions))`. */
  sessions: SessionManager<T>;
  /** The client scope (long-lived per-browser data), when the definition has `client`. */
  clients: SessionManager | undefined;
  /**
   * Reaches sockets on every gateway: `ctx.realtime.to({ user }).send('order.shipped', data)`.
   * Sessions that end here (logout, login rotation, expiry) close their sockets everywhere.
   */
  realtime: Publisher<E>;
  store: SessionStore;
  bus: Bus;
}

/**
 * What `web(ctx)` returns: a request handler (an Express app is one; a Hono app through
 * `getRequestListener(app.fetch)` of `@hono/node-server`; a Fastify app as `{ handler: app.routing }`
 * after `await app.ready()`), or a node.
 */
export interface WebNode {
  handler: RequestListener;
  /** Rejects when a dependency of the app's own is unreachable: /readyz answers 503. */
  ready?(): Promise<void>;
  /** Closes what the app opened itself; the store, bus and sessions are closed by the runtime. */
  close?(): Promise<void>;
}

/**
 * The schema the realtime hooks of `defineApp<T>()` read `who.attributes` by: `T` when the app
 * names one, else the `SessionData` it declares (`declare module 'shoal' { interface SessionData … }`).
 */
export type RealtimeSchema<T extends SessionSchema> = SessionSchema extends T ? SessionData & SessionSchema : T;

/**
 * The app's realtime rules, read by `shoal gateway --app <module>`. `T` types `who.attributes` in
 * `authorize` and `connectionInfo`: inside `defineApp<T>()` it is the app's schema.
 */
export interface RealtimeApp<T extends SessionSchema = SessionData & SessionSchema> {
  /**
   * May this session join this channel? `user:<own id>` and `session:<own id>` are
   * always allowed and other `user:`/`session:` channels never; everything else is up to you.
   * `session.attributes` are the session's values as `session.get()` returns them (typed by the
   * schema of `defineApp<Schema>()`, else SessionData); one that cannot be decoded denies the join,
   * and the gateway logs why.
   */
  authorize?(session: AuthorizeContext<T>, channel: string): boolean | Promise<boolean>;
  /** Page origins allowed to open realtime connections, added to SHOAL_ORIGINS. */
  origins?: string[];
  /**
   * What keeps a session alive while it has a realtime connection (SHOAL_KEEP_SESSION_ALIVE
   * overrides it): `'open'` (default) an open connection, `'inbound'` only frames from the
   * client, `false` only web requests.
   */
  keepSessionAlive?: KeepSessionAlive;
  /**
   * Signed connection tokens for clients without the session cookie (see docs/client.md):
   * `{ secret }` (HS256) and/or `{ jwksUrl }` (RS256/ES256), optional `audience`, `issuer`.
   * SHOAL_TOKEN_SECRET, SHOAL_TOKEN_JWKS_URL, SHOAL_TOKEN_AUDIENCE, SHOAL_TOKEN_ISSUER override each.
   */
  tokens?: TokenOptions;
  /**
   * Let the app's own endpoint answer who connects (docs/client.md, "Connect proxy"):
   * `{ url, headers?, timeoutMs? }`. SHOAL_CONNECT_PROXY_URL, SHOAL_CONNECT_PROXY_HEADERS,
   * SHOAL_CONNECT_PROXY_TIMEOUT override each.
   */
  connectProxy?: ConnectProxyOptions;
  /**
   * `authorize` as an HTTP call to the app (`{ url, timeoutMs? }`; not together with `authorize`).
   * SHOAL_SUBSCRIBE_PROXY_URL and SHOAL_SUBSCRIBE_PROXY_TIMEOUT override each.
   */
  subscribeProxy?: SubscribeProxyOptions;
  /**
   * Methods clients call with `client.rpc(method, data)`, answered on the gateway:
   * `{ [method]: async (ctx, data) => result }`. Throw `RpcError(code, message)` to answer an error.
   */
  rpc?: Record<string, RpcHandler>;
  /**
   * Methods without a handler here are POSTed to the app (`{ url, timeoutMs?, headers? }`, see
   * docs/client.md). SHOAL_RPC_PROXY_URL and SHOAL_RPC_PROXY_TIMEOUT override each.
   */
  rpcProxy?: RpcProxyOptions;
  /**
   * What a connection shows others in presence answers (`client.presenceInfo`, the server API's
   * `/presence` with `clients`), e.g. `(who) => ({ name: who.attributes.name })`; at most 1 KiB as
   * JSON. `who` is what `authorize` gets. A connection token's `info` claim or the connect proxy's
   * `info` takes its place.
   */
  connectionInfo?(who: AuthorizeContext<T>): unknown;
  /** May this client publish `event` on `channel` (`client.publish`)? Unset: clients may not publish. */
  canPublish?(ctx: RequestContext, channel: string, event: string): boolean | Promise<boolean>;
  /** Bounds on client requests (rpc, publish, history) per connection. */
  requestLimits?: RequestLimits;
}

/**
 * One definition of an app, read by web nodes and gateways alike, so the two tiers cannot
 * disagree on the store, the bus, the cookie or the secrets.
 */
export interface AppDefinition<T extends SessionSchema = SessionSchema, E extends EventMap = EventMap> {
  /** Session settings (timeouts, cookie, onSessionStart/End…), or a function of the node's context. */
  session?: AppSessionOptions<T> | ((ctx: NodeContext) => AppSessionOptions<T>);
  /** Turns on the client scope (its own cookie and store namespace "client"). */
  client?: Omit<ClientScopeOptions, 'store'> | true;
  realtime?: RealtimeApp<RealtimeSchema<T>>;
  /**
   * Builds the web tier's request handler. Called once per web node. A definition without it runs
   * on `shoal gateway` only: gateways for an app written in another language (docs/server-api.md).
   */
  web?(ctx: WebContext<T, E>): WebNode | RequestListener | Promise<WebNode | RequestListener>;
}

/** The default export of an app module: `export default defineApp({ session, realtime, web })`. */
export function defineApp<T extends SessionSchema = SessionSchema, E extends EventMap = EventMap>(
  app: AppDefinition<T, E>,
): AppDefinition<T, E> {
  checkApp(app, 'defineApp()');
  checkAppKeys(app);
  return app;
}

type Keys<O> = Record<keyof Required<O>, true | KeyShape>;

const REALTIME_APP_KEYS = {
  ...REALTIME_OPTION_SHAPES,
  authorize: true,
  origins: true,
  keepSessionAlive: true,
  rpc: true,
  connectionInfo: true,
  canPublish: true,
} as const satisfies Keys<RealtimeApp>;

const APP_KEYS = {
  // A function of the node's context is checked when a node calls it (appSessionOptions).
  session: SESSION_OPTION_KEYS,
  client: SESSION_OPTION_KEYS,
  realtime: REALTIME_APP_KEYS,
  web: true,
} as const satisfies Keys<AppDefinition>;

/**
 * Refuses a key the definition does not take, at any depth ("unknown option session.idleTimout; did
 * you mean idleTimeout?"): plain JavaScript would otherwise leave the setting it meant at its default.
 */
export function checkAppKeys(app: unknown): void {
  checkKnownKeys(app, APP_KEYS);
}

/** The session settings a definition's `session` function returned, checked as defineApp checks an object. */
export function checkAppSessionKeys(session: unknown): void {
  checkSessionKeys(session, 'session.');
}

/**
 * Plain JavaScript can hand over something that is no definition, or a web that is no function,
 * which a node would only trip on as "definition.web is not a function". `call` names the function
 * that was given it; `needsWeb` when it runs a web node, which calls web(ctx).
 */
export function checkApp(app: unknown, call: string, needsWeb = false): void {
  const given = typeof app === 'object' && app !== null ? (app as { web?: unknown; realtime?: unknown }) : undefined;
  const web = given?.web;
  if (typeof web === 'function') return;
  // Gateways only: realtime rules and no web(), for an app whose pages another server answers.
  if (!needsWeb && web === undefined && given?.realtime !== undefined) return;
  const got = given ? `its web is ${web === undefined ? 'missing' : kindOf(web)}` : `got ${kindOf(app)}`;
  const gatewaysOnly = needsWeb ? '' : ', or defineApp({ realtime: { … } }) for one that runs on gateways only';
  throw new ConfigError(
    `${call} needs an app with web(ctx), which builds the request handler: defineApp({ web(ctx) { … return handler } }) from 'shoal' (docs/getting-started.md#the-app-module)${gatewaysOnly}; ${got}`,
  );
}

/** The node settings as plain JavaScript may leave them out. */
export function checkNodeConfig(config: unknown, call: string): void {
  if (typeof config === 'object' && config !== null) return;
  throw new ConfigError(
    `${call} needs the node's settings as its second argument, e.g. nodeConfigFromEnv(process.env, 'web') from 'shoal'`,
  );
}
