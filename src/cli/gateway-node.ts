import { createBus } from '../bus/index.js';
import { ConfigError } from '../core/errors.js';
import { limitFromEnv } from '../realtime/connection-limits.js';
import { createGateway } from '../realtime/gateway.js';
import { busUrlFromEnv } from '../realtime/realtime.js';
import { SessionManager } from '../session/manager.js';
import { secretsFromEnv } from '../session/signing.js';
import { createStore, DEFAULT_STORE_URL, redact } from '../stores/index.js';
import type { GatewaySessionOptions, NodeContext, ShoalApp } from './app-module.js';
import type { RunningNode } from './web-node.js';

export interface GatewayNodeOptions {
  app: ShoalApp;
  ctx: NodeContext;
  port: number;
  host?: string;
  /** Sockets are closed with 1012 spread over this window, so clients reconnect elsewhere gradually. */
  drainWindowMs?: number;
  log?: (line: Record<string, unknown>) => void;
}

/**
 * Runs one realtime gateway: WebSocket + SSE on one port, the same store and
 * bus as the web nodes (SHOAL_STORE, SHOAL_BUS), rooms authorized by the app
 * module's `realtime.authorize`. Connection limits per session and per user
 * (SHOAL_MAX_CONNECTIONS_PER_SESSION, SHOAL_MAX_CONNECTIONS_PER_USER) count this
 * process only. SIGTERM drains (see drain()).
 */
export async function runGatewayNode(o: GatewayNodeOptions): Promise<RunningNode> {
  const env = o.ctx.env;
  const log = o.log ?? ((line) => console.log(JSON.stringify(line)));
  const origins = (env.SHOAL_ORIGINS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (origins.length === 0) {
    throw new ConfigError(
      'SHOAL_ORIGINS is not set: list the origins your pages are served from, comma-separated ' +
        '(e.g. SHOAL_ORIGINS=https://app.example.com). A gateway refuses WebSocket handshakes from any other origin.',
    );
  }
  // Read before any backend is opened, so a bad value fails fast with nothing to clean up.
  const maxConnectionsPerSession = limitFromEnv(
    'SHOAL_MAX_CONNECTIONS_PER_SESSION',
    env.SHOAL_MAX_CONNECTIONS_PER_SESSION,
  );
  const maxConnectionsPerUser = limitFromEnv('SHOAL_MAX_CONNECTIONS_PER_USER', env.SHOAL_MAX_CONNECTIONS_PER_USER);
  const storeUrl = env.SHOAL_STORE ?? DEFAULT_STORE_URL;
  const busUrl = busUrlFromEnv(env);
  const store = await createStore(storeUrl);
  const bus = await createBus(busUrl).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const session: GatewaySessionOptions = o.app.realtime?.session?.(o.ctx) ?? {
    secrets: secretsFromEnv(env.SHOAL_SECRETS),
    cookie: { secure: env.SHOAL_COOKIE_SECURE !== 'false' },
  };
  // No sweeper here: ended sessions are claimed by web nodes, which run the app's onSessionEnd.
  const sessions = new SessionManager({ ...session, store, nodeId: o.ctx.nodeId, sweep: { enabled: false } });
  const authorize = o.app.realtime?.authorize?.bind(o.app.realtime);
  const gateway = await createGateway({
    id: o.ctx.nodeId,
    bus,
    sessions,
    origins,
    ...(authorize ? { authorize } : {}),
    publishKey: env.SHOAL_PUBLISH_KEY || undefined,
    ...(maxConnectionsPerSession ? { maxConnectionsPerSession } : {}),
    ...(maxConnectionsPerUser ? { maxConnectionsPerUser } : {}),
    log,
  });
  await gateway.listen(o.port, o.host ?? '127.0.0.1');
  log({
    level: 'info',
    msg: 'gateway listening',
    node: o.ctx.nodeId,
    port: o.port,
    pid: process.pid,
    store: redact(storeUrl),
    bus: redact(busUrl),
  });

  let drained: Promise<void> | undefined;
  const drain = () => {
    drained ??= (async () => {
      const started = Date.now();
      log({ level: 'info', msg: 'draining', node: o.ctx.nodeId, connections: gateway.connections() });
      await gateway.drain(o.drainWindowMs ?? 10_000);
      await sessions.close();
      await Promise.allSettled([bus.close(), store.close()]);
      log({ level: 'info', msg: 'drained', node: o.ctx.nodeId, ms: Date.now() - started });
    })();
    return drained;
  };
  return { port: o.port, drain };
}
