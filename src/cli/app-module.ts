import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AppDefinition, checkAppKeys } from '../app/define.js';
import { ConfigError } from '../core/errors.js';
import { importDefault } from './ts-loader.js';

/**
 * Loads the app module `shoal start|web|gateway --app <module>` names: its default export is
 * `defineApp({ session, realtime, web })`, read the same way by web nodes and gateways. A module
 * without web() is for gateways only: requireWeb() says so where a web node would run it.
 */
export async function loadApp(path: string): Promise<AppDefinition> {
  const url = pathToFileURL(isAbsolute(path) ? path : resolve(process.cwd(), path)).href;
  let exported: unknown;
  try {
    exported = await importDefault(url);
  } catch (err) {
    throw new ConfigError(`could not load the app module ${path}: ${(err as Error).message}`, { cause: err });
  }
  const app = exported as Partial<AppDefinition> | undefined;
  // web() is what a web node runs; a module for gateways only may leave it out (docs/server-api.md).
  const gatewaysOnly = app?.web === undefined && app?.realtime !== undefined;
  if (typeof app !== 'object' || app === null || (typeof app.web !== 'function' && !gatewaysOnly)) {
    throw new ConfigError(
      `${path} must default-export defineApp({ web(ctx) { … return handler } }) from 'shoal', or defineApp({ realtime: { … } }) for gateways only — see docs/getting-started.md#the-app-module`,
    );
  }
  // defineApp() checks its keys; a plain object default export is checked here.
  try {
    checkAppKeys(app);
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`, { cause: err });
  }
  return app as AppDefinition;
}

/** A web node runs web(ctx): a gateway-only module is refused with what to add. */
export function requireWeb(app: AppDefinition, path: string): AppDefinition {
  if (typeof app.web === 'function') return app;
  throw new ConfigError(
    `${path} has no web(ctx), so it runs on shoal gateway only: add web(ctx) { … return handler } to its defineApp({ … }) to run it on shoal web, or run its gateways alone (shoal start --web 0) (docs/getting-started.md#the-app-module)`,
  );
}
