import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AppDefinition, checkAppKeys } from '../app/define.js';
import { ConfigError } from '../core/errors.js';
import { importDefault } from './ts-loader.js';

/**
 * Loads the app module `shoal start|web|gateway --app <module>` names: its default export is
 * `defineApp({ session, realtime, web })`, read the same way by web nodes and gateways.
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
  if (!app || typeof app.web !== 'function') {
    throw new ConfigError(
      `${path} must default-export defineApp({ web(ctx) { … return handler } }) from 'shoal' — see docs/getting-started.md#the-app-module`,
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
