import type { RequestListener } from 'node:http';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.js';
import type { AuthorizeContext } from '../realtime/gateway.js';
import type { SessionOptions } from '../session/options.js';

export interface NodeContext {
  /** Stable name of this node in the cluster, e.g. "web-2". */
  nodeId: string;
  env: NodeJS.ProcessEnv;
}

export interface WebNode {
  handler: RequestListener;
  /** Rejects when a dependency (store, bus) is unreachable: /readyz answers 503. */
  ready?(): Promise<void>;
  close(): Promise<void>;
}

/** The session settings a gateway must share with the web nodes to read their cookie. */
export type GatewaySessionOptions = Pick<
  SessionOptions,
  'secrets' | 'cookie' | 'idleTimeout' | 'absoluteTimeout' | 'touchInterval'
>;

/** The app's realtime rules, imported by `shoal gateway --app <module>`. */
export interface RealtimeApp {
  /**
   * May this session join this channel? `user:<own id>` and `session:<own id>` are
   * always allowed and other `user:`/`session:` channels never; everything else is up to you.
   */
  authorize?(session: AuthorizeContext, channel: string): boolean | Promise<boolean>;
  /**
   * Cookie name/security and secrets as the web nodes use them. Default: SHOAL_SECRETS,
   * and a secure cookie unless SHOAL_COOKIE_SECURE=false.
   */
  session?(ctx: NodeContext): GatewaySessionOptions;
}

/** What an app module exports (default export) for `shoal start|web|gateway --app <module>`. */
export interface ShoalApp {
  web(ctx: NodeContext): Promise<WebNode>;
  realtime?: RealtimeApp;
}

export function defineApp(app: ShoalApp): ShoalApp {
  return app;
}

export async function loadApp(path: string): Promise<ShoalApp> {
  const url = pathToFileURL(isAbsolute(path) ? path : resolve(process.cwd(), path)).href;
  let mod: { default?: unknown };
  try {
    mod = (await import(url)) as { default?: unknown };
  } catch (err) {
    throw new ConfigError(`could not load the app module ${path}: ${(err as Error).message}`, { cause: err });
  }
  const app = mod.default as Partial<ShoalApp> | undefined;
  if (!app || typeof app.web !== 'function') {
    throw new ConfigError(
      `${path} must default-export defineApp({ web(ctx) { … return { handler, close } } }) — see docs/architecture.md#app-modules`,
    );
  }
  return app as ShoalApp;
}
