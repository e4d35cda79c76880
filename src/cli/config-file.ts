import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ShoalConfig } from '../app/config.js';
import { nearestName } from '../core/did-you-mean.js';
import { ConfigError } from '../core/errors.js';
import { ensureTypeScript, importDefault } from './ts-loader.js';

export { defineConfig, type ShoalConfig } from '../app/config.js';

const NAMES = ['shoal.config.ts', 'shoal.config.mjs', 'shoal.config.js'];
const KEYS = new Set(['app', 'web', 'gateways', 'port', 'env']);

export async function loadConfigFile(dir = process.cwd()): Promise<{ path: string | null; config: ShoalConfig }> {
  const name = NAMES.find((n) => existsSync(join(dir, n)));
  if (!name) return { path: null, config: {} };
  const path = join(dir, name);
  await ensureTypeScript(path, dir);
  let loaded: unknown;
  try {
    loaded = await importDefault(pathToFileURL(path).href);
  } catch (err) {
    throw new ConfigError(`could not load ${path}: ${firstLine(err)}`, { cause: err });
  }
  if (typeof loaded !== 'object' || loaded === null) {
    throw new ConfigError(`${path} must default-export an object: export default defineConfig({ app: './app.ts', … })`);
  }
  const config = loaded as Record<string, unknown>;
  const unknown = Object.keys(config).filter((k) => !KEYS.has(k));
  if (unknown.length) {
    const [one] = unknown;
    const near = unknown.length === 1 && one ? nearestName(one, KEYS) : undefined;
    throw new ConfigError(
      near
        ? `${path}: unknown setting ${one}; did you mean ${near}?`
        : `${path}: unknown setting(s) ${unknown.join(', ')}; allowed: ${[...KEYS].join(', ')}`,
    );
  }
  // The same bounds as the flags: a port a balancer can listen on; 0 web nodes runs gateways alone.
  for (const [key, min, max] of [
    ['web', 0, 1000],
    ['gateways', 0, 1000],
    ['port', 1, 65_535],
  ] as const) {
    const v = config[key];
    if (v !== undefined && !(Number.isInteger(v) && (v as number) >= min && (v as number) <= max)) {
      throw new ConfigError(`${path}: ${key} must be a whole number from ${min} to ${max}, got ${JSON.stringify(v)}`);
    }
  }
  const env = config.env;
  if (env !== undefined) {
    if (typeof env !== 'object' || env === null) throw new ConfigError(`${path}: env must be an object of strings`);
    for (const [k, v] of Object.entries(env)) {
      if (!k.startsWith('SHOAL_') || typeof v !== 'string') {
        throw new ConfigError(`${path}: env.${k} must be a SHOAL_* name with a string value`);
      }
    }
  }
  return { path, config: config as ShoalConfig };
}

/** Fills process.env with the file's SHOAL_* values that the environment does not already set. */
export function applyConfigEnv(config: ShoalConfig, env: NodeJS.ProcessEnv = process.env): void {
  for (const [k, v] of Object.entries(config.env ?? {})) if (env[k] === undefined) env[k] = v;
}

/** Import errors carry a stack and sometimes a code frame: the first line says what went wrong. */
function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0] ?? '';
}
