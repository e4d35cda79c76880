import type { Bus } from '../bus/contract.js';
import { busFromUrl } from '../bus/from-url.js';
import { busUrlFor } from '../bus/index.js';
import type { Logger } from '../core/logger.js';
import { redact } from '../core/url.js';
import { createRealtime, type Realtime } from '../realtime/realtime.js';
import { defineClientScope } from '../session/client-scope.js';
import { SessionManager } from '../session/manager.js';
import type { SessionOptions, SessionSchema } from '../session/options.js';
import type { SessionStore } from '../stores/contract.js';
import { storeFromUrl } from '../stores/from-url.js';
import { createStore, DEFAULT_STORE_URL } from '../stores/index.js';
import {
  type AppDefinition,
  type AppSessionOptions,
  checkApp,
  checkAppKeys,
  checkAppSessionKeys,
  checkNodeConfig,
  type NodeContext,
  type RealtimeApp,
} from './define.js';

/** How one node of the cluster is configured (the CLI builds it from SHOAL_* variables). */
export interface NodeConfig extends NodeContext {
  /** "web" nodes run the lifecycle sweeper (onSessionEnd); gateways only read sessions. */
  role: 'web' | 'gateway';
  /** Session store URL. Default sqlite:.shoal/shoal.db. */
  store?: string | undefined;
  /** Message bus URL. Default: the store's URL when that backend is also a bus (see busUrlFor). */
  bus?: string | undefined;
  /** Keeps this app's sessions apart from other apps' on a shared store. Default "session". */
  namespace?: string | undefined;
  /** Session settings from the node's environment; the app definition's own settings win. */
  session?: Partial<SessionOptions> | undefined;
  /** Where the node's bus and sessions log (the app definition's session logger wins for sessions). */
  logger?: Logger | undefined;
}

/** An app definition opened on one node: its backends, sessions and realtime link. */
export interface OpenedApp<T extends SessionSchema = SessionSchema> {
  storeUrl: string;
  busUrl: string;
  store: SessionStore;
  bus: Bus;
  sessions: SessionManager<T>;
  clients: SessionManager | undefined;
  realtime: Realtime;
  realtimeApp: RealtimeApp | undefined;
  /** Stops the sweepers and the realtime link, then closes the bus and the stores. */
  close(): Promise<void>;
}

/**
 * Opens what an app definition needs on one node. Web nodes and gateways both call this with
 * the same definition and configuration, so they resolve the same store, bus, secrets and cookie.
 */
export async function openApp<T extends SessionSchema>(
  app: AppDefinition<T>,
  config: NodeConfig,
): Promise<OpenedApp<T>> {
  checkApp(app, 'openApp()');
  checkAppKeys(app);
  checkNodeConfig(config, 'openApp()');
  const storeUrl = config.store ?? DEFAULT_STORE_URL;
  const busUrl = config.bus ?? busUrlFor(storeUrl);
  const own = appSessionOptions(app, config);
  // Settings are resolved before anything is opened, so a bad value leaves nothing to clean up.
  const options = mergeSessionOptions(config, own);
  const opened: Array<{ close(): Promise<void> }> = [];
  const closeAll = async () => {
    for (const thing of opened.reverse()) await thing.close().catch(() => {});
  };
  try {
    const store =
      own.store ??
      (await storeFromUrl(storeUrl, { namespace: config.namespace ?? 'session' }, urlSource(config, 'store')));
    if (!own.store) opened.push(store);
    // The namespace that keeps apps' sessions apart on a shared backend keeps their messages apart too:
    // otherwise one app's realtime.to({ user }) would reach the same user id's sockets of another.
    const bus = await busFromUrl(
      busUrl,
      {
        ...(config.logger ? { logger: config.logger } : {}),
        ...(config.namespace ? { namespace: config.namespace } : {}),
      },
      urlSource(config, 'bus'),
    );
    opened.push(bus);
    const sessions = new SessionManager<T>({
      ...options,
      store,
      ...(own.store ? {} : { storeLabel: redact(storeUrl) }),
    });
    opened.push(sessions);
    // Gateways never serve the client scope: only web nodes open it.
    const clients =
      app.client && config.role === 'web' ? await openClientScope(app, config, storeUrl, options) : undefined;
    if (clients) opened.push(clients.store, clients.sessions);
    const realtime = createRealtime({ bus, sessions });
    opened.push(realtime);
    return {
      storeUrl,
      busUrl,
      store,
      bus,
      sessions,
      clients: clients?.sessions,
      realtime,
      realtimeApp: app.realtime,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * What names the node's store or bus URL when its scheme is unknown: the variable when the URL is the
 * one the node's environment holds (nodeConfigFromEnv read it there, and that is what to correct),
 * else the setting the code passed it in.
 */
function urlSource(config: NodeConfig, key: 'store' | 'bus'): string {
  const variable = key === 'store' ? 'SHOAL_STORE' : 'SHOAL_BUS';
  return config[key] !== undefined && config.env?.[variable] === config[key] ? variable : `the node config's ${key}`;
}

export function appSessionOptions<T extends SessionSchema>(
  app: AppDefinition<T>,
  ctx: NodeContext,
): AppSessionOptions<T> {
  const own = (typeof app.session === 'function' ? app.session(ctx) : app.session) ?? {};
  checkAppSessionKeys(own);
  return own;
}

/** The node's settings under the app's own: the definition wins, cookie attributes one by one. */
export function mergeSessionOptions<T extends SessionSchema>(
  config: NodeConfig,
  own: AppSessionOptions<T>,
): Omit<SessionOptions<T>, 'store'> {
  const base = (config.session ?? {}) as Partial<SessionOptions<T>>;
  const { store: _store, ...settings } = own;
  return {
    ...base,
    ...settings,
    nodeId: settings.nodeId ?? config.nodeId,
    ...((settings.logger ?? base.logger ?? config.logger)
      ? { logger: settings.logger ?? base.logger ?? config.logger }
      : {}),
    cookie: { ...base.cookie, ...settings.cookie },
    // Gateways read sessions but never claim ended ones: the app's onSessionEnd runs on web nodes.
    ...(config.role === 'gateway' ? { sweep: { ...settings.sweep, enabled: false } } : {}),
  };
}

async function openClientScope<T extends SessionSchema>(
  app: AppDefinition<T>,
  config: NodeConfig,
  storeUrl: string,
  session: Omit<SessionOptions<T>, 'store'>,
): Promise<{ store: SessionStore; sessions: SessionManager }> {
  const namespace = config.namespace ? `${config.namespace}-client` : 'client';
  const store = await createStore(storeUrl, { namespace });
  const own = app.client === true ? {} : (app.client ?? {});
  try {
    const sessions = defineClientScope({
      // The client scope shares the node's secrets, encryption and size budget, not the session's timeouts.
      ...pick(session, ['secrets', 'encryption', 'maxSize', 'nodeId', 'metrics']),
      ...own,
      cookie: { ...(session.cookie?.secure === undefined ? {} : { secure: session.cookie.secure }), ...own.cookie },
      store,
    });
    return { store, sessions };
  } catch (err) {
    await store.close();
    throw err;
  }
}

function pick<O extends object, K extends keyof O>(o: O, keys: K[]): Partial<Pick<O, K>> {
  const out: Partial<Pick<O, K>> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
