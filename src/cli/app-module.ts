import type { RequestListener } from 'node:http';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../core/errors.js';

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

/** What an app module exports (default export) for `shoal start|web --app <module>`. */
export interface ShoalApp {
  web(ctx: NodeContext): Promise<WebNode>;
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
