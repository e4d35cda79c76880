import type { AppDefinition } from '../app/define.js';
import { listFromEnv, logLevelFromEnv } from '../app/env.js';
import { type NodeConfig, openApp } from '../app/open.js';
import { ConfigError } from '../core/errors.js';
import { createLogger, type Logger, lineWriter } from '../core/logger.js';
import { redact } from '../core/url.js';
import { limitFromEnv } from '../realtime/connection-limits.js';
import { createGateway } from '../realtime/gateway.js';
import { keepSessionAliveFromEnv } from '../realtime/keep-alive.js';
import { allowedOrigins } from '../realtime/origin.js';
import { connectProxyFromEnv, rpcProxyFromEnv, subscribeProxyFromEnv } from '../realtime/proxy-env.js';
import { checkPublishKey } from '../realtime/publish-key.js';
import { tokenOptionsFromEnv } from '../realtime/token-env.js';
import type { RunningNode } from './web-node.js';

export interface GatewayNodeOptions {
  app: AppDefinition;
  /** This node's configuration (the CLI reads it from SHOAL_* variables: nodeConfigFromEnv). */
  config: Omit<NodeConfig, 'role'>;
  port: number;
  host?: string;
  /** Sockets are closed with 1012 spread over this window, so clients reconnect elsewhere gradually. */
  drainWindowMs?: number;
  /** Default: pino JSON lines on stdout at SHOAL_LOG_LEVEL. */
  logger?: Logger;
}

/**
 * Runs one realtime gateway: WebSocket + SSE on one port, the same store and
 * bus as the web nodes (SHOAL_STORE, SHOAL_BUS), rooms authorized by the app
 * module's `realtime.authorize`. Connection limits per session and per user
 * (SHOAL_MAX_CONNECTIONS_PER_SESSION, SHOAL_MAX_CONNECTIONS_PER_USER) count this
 * process only. SIGTERM drains (see drain()).
 */
export async function runGatewayNode(o: GatewayNodeOptions): Promise<RunningNode> {
  const env = o.config.env;
  const logger = o.logger ?? createLogger({ node: o.config.nodeId, role: 'gateway' }, logLevelFromEnv(env));
  const log = lineWriter(logger);
  // Each source checked on its own, so the error names the one to fix.
  const origins = [
    ...new Set([
      ...allowedOrigins(listFromEnv(env.SHOAL_ORIGINS) ?? [], 'SHOAL_ORIGINS'),
      ...allowedOrigins(o.app.realtime?.origins ?? [], 'realtime.origins'),
    ]),
  ];
  if (origins.length === 0) {
    throw new ConfigError(
      'no origins: list the origins your pages are served from in SHOAL_ORIGINS, comma-separated ' +
        '(e.g. SHOAL_ORIGINS=https://app.example.com), or in defineApp({ realtime: { origins } }). ' +
        'A gateway refuses WebSocket handshakes from any other origin.',
    );
  }
  // Read before any backend is opened, so a bad value fails fast with nothing to clean up.
  const maxConnectionsPerSession = limitFromEnv(
    'SHOAL_MAX_CONNECTIONS_PER_SESSION',
    env.SHOAL_MAX_CONNECTIONS_PER_SESSION,
  );
  const maxConnectionsPerUser = limitFromEnv('SHOAL_MAX_CONNECTIONS_PER_USER', env.SHOAL_MAX_CONNECTIONS_PER_USER);
  const keepSessionAlive = keepSessionAliveFromEnv(env.SHOAL_KEEP_SESSION_ALIVE) ?? o.app.realtime?.keepSessionAlive;
  const tokens = tokenOptionsFromEnv(env, o.app.realtime?.tokens);
  const connectProxy = connectProxyFromEnv(env, o.app.realtime?.connectProxy);
  const subscribeProxy = subscribeProxyFromEnv(env, o.app.realtime?.subscribeProxy, !!o.app.realtime?.authorize);
  const rpcProxy = rpcProxyFromEnv(env, o.app.realtime?.rpcProxy);
  const publishKey = checkPublishKey(env.SHOAL_PUBLISH_KEY, 'SHOAL_PUBLISH_KEY');
  const rt = o.app.realtime;
  // The same definition and configuration as the web nodes: the same store, bus, secrets and cookie.
  const app = await openApp(o.app, { ...o.config, role: 'gateway', logger });
  const { bus, sessions } = app;
  const authorize = o.app.realtime?.authorize?.bind(o.app.realtime);
  const gateway = await createGateway({
    id: o.config.nodeId,
    bus,
    sessions,
    origins,
    ...(authorize ? { authorize } : {}),
    publishKey,
    ...(keepSessionAlive !== undefined ? { keepSessionAlive } : {}),
    ...(tokens ? { tokens } : {}),
    ...(connectProxy ? { connectProxy } : {}),
    ...(subscribeProxy ? { subscribeProxy } : {}),
    rpc: rt?.rpc,
    rpcProxy,
    canPublish: rt?.canPublish?.bind(rt),
    connectionInfo: rt?.connectionInfo?.bind(rt),
    requestLimits: rt?.requestLimits,
    ...(maxConnectionsPerSession ? { maxConnectionsPerSession } : {}),
    ...(maxConnectionsPerUser ? { maxConnectionsPerUser } : {}),
    logger,
  }).catch(async (err: unknown) => {
    await app.close();
    throw err;
  });
  await gateway.listen(o.port, o.host ?? '127.0.0.1').catch(async (err: unknown) => {
    await gateway.close();
    await app.close();
    throw err;
  });
  log({
    level: 'info',
    msg: 'gateway listening', // the logger carries node and pid
    port: o.port,
    store: redact(app.storeUrl),
    bus: redact(app.busUrl),
  });

  let drained: Promise<void> | undefined;
  const drain = () => {
    drained ??= (async () => {
      const started = Date.now();
      log({ level: 'info', msg: 'draining', connections: gateway.connections() });
      await gateway.drain(o.drainWindowMs ?? 10_000);
      await app.close();
      log({ level: 'info', msg: 'drained', ms: Date.now() - started });
    })();
    return drained;
  };
  return { port: o.port, drain };
}
