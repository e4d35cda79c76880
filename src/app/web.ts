import type { RequestListener } from 'node:http';
import type { SessionSchema } from '../session/options.js';
import { type AppDefinition, checkApp, checkNodeConfig, type WebNode } from './define.js';
import { type NodeConfig, type OpenedApp, openApp } from './open.js';

/** A web node of an app, ready to be served by any node:http server. */
export interface RunnableWebNode<T extends SessionSchema = SessionSchema> {
  handler: RequestListener;
  /** Rejects with the reason when the store, the bus or the app's own dependency is unreachable. */
  ready(): Promise<void>;
  /** Closes the app's own resources, then the sessions, the bus and the store. */
  close(): Promise<void>;
  app: OpenedApp<T>;
}

/**
 * Opens an app definition as one web node: what `shoal web` serves, and what an app that runs
 * its own server calls (`http.createServer(node.handler)`).
 */
export async function createWebNode<T extends SessionSchema>(
  definition: AppDefinition<T>,
  config: Omit<NodeConfig, 'role'>,
): Promise<RunnableWebNode<T>> {
  checkApp(definition, 'createWebNode()', true);
  checkNodeConfig(config, 'createWebNode()');
  const app = await openApp(definition, { ...config, role: 'web' });
  let web: WebNode;
  try {
    // checkApp made sure of it; the type leaves web() optional for gateway-only definitions.
    const build = definition.web as NonNullable<AppDefinition<T>['web']>;
    const built = await build({
      nodeId: config.nodeId,
      env: config.env,
      sessions: app.sessions,
      clients: app.clients,
      realtime: app.realtime.publisher,
      store: app.store,
      bus: app.bus,
    });
    web = typeof built === 'function' ? { handler: built } : built;
  } catch (err) {
    await app.close();
    throw err;
  }
  return {
    handler: web.handler,
    app,
    async ready() {
      await app.store.ping();
      await app.bus.ping();
      await web.ready?.();
    },
    async close() {
      try {
        await web.close?.();
      } finally {
        await app.close();
      }
    },
  };
}
