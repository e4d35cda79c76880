import { nearestName } from '../core/did-you-mean.js';
import { parseDuration, parsePositiveDuration } from '../core/duration.js';
import { ConfigError } from '../core/errors.js';
import type { SessionOptions } from '../session/options.js';
import type { NodeConfig } from './open.js';

/** "a, b,,c" → ["a", "b", "c"]; undefined when nothing is left. */
export function listFromEnv(value: string | undefined): string[] | undefined {
  const items = (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** "true" / "false" (any case) → boolean; unset → undefined; anything else names the variable. */
export function booleanFromEnv(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  const v = value.trim().toLowerCase();
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}

/** SHOAL_SECRETS="newest,older" → ["newest", "older"] ([] when unset). */
export function secretsFromEnv(value: string | undefined): string[] {
  return listFromEnv(value) ?? [];
}

/** SHOAL_ENCRYPTION_KEYS="newest,older" → ["newest", "older"], or undefined when unset. */
export function encryptionKeysFromEnv(value: string | undefined): string[] | undefined {
  return listFromEnv(value);
}

/** A duration variable ("30m", "250ms"; a unit is required), in milliseconds; undefined when unset or empty. */
export function durationFromEnv(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const value = env[name];
  return value ? parseDuration(value, name) : undefined;
}

/** durationFromEnv for a setting that must be longer than 0. */
function positiveDurationFromEnv(env: NodeJS.ProcessEnv, name: string, example: string): number | undefined {
  const value = env[name];
  return value ? parsePositiveDuration(value, name, example) : undefined;
}

/** SHOAL_LOG_LEVEL (pino's levels: fatal, error, warn, info, debug, trace, silent); default info. */
export function logLevelFromEnv(env: NodeJS.ProcessEnv): string {
  return env.SHOAL_LOG_LEVEL || 'info';
}

/**
 * The session settings a node takes from its environment. The library itself never reads
 * process.env: the CLI calls this once per node and hands the result to the app definition,
 * so web nodes and gateways resolve every setting the same way.
 *
 * SHOAL_SECRETS, SHOAL_ENCRYPTION_KEYS, SHOAL_IDLE_TIMEOUT, SHOAL_ABSOLUTE_TIMEOUT,
 * SHOAL_SWEEP_INTERVAL, SHOAL_SWEEP_LEASE, SHOAL_NODE_ID, SHOAL_MAX_SIZE, SHOAL_COOKIE_SECURE.
 */
export function sessionOptionsFromEnv(env: NodeJS.ProcessEnv): Partial<SessionOptions> {
  const out: Partial<SessionOptions> = {};
  const secrets = secretsFromEnv(env.SHOAL_SECRETS);
  if (secrets.length) out.secrets = secrets;
  const keys = encryptionKeysFromEnv(env.SHOAL_ENCRYPTION_KEYS);
  if (keys) out.encryption = { keys };
  // Parsed here, so an error names the variable to fix rather than the option it feeds.
  const idle = positiveDurationFromEnv(env, 'SHOAL_IDLE_TIMEOUT', '30m');
  if (idle !== undefined) out.idleTimeout = idle;
  const absolute = positiveDurationFromEnv(env, 'SHOAL_ABSOLUTE_TIMEOUT', '12h');
  if (absolute !== undefined) out.absoluteTimeout = absolute;
  const interval = positiveDurationFromEnv(env, 'SHOAL_SWEEP_INTERVAL', '250ms');
  const lease = positiveDurationFromEnv(env, 'SHOAL_SWEEP_LEASE', '30s');
  if (interval !== undefined || lease !== undefined) {
    out.sweep = {
      ...(interval !== undefined ? { interval } : {}),
      ...(lease !== undefined ? { lease } : {}),
    };
  }
  if (env.SHOAL_NODE_ID) out.nodeId = env.SHOAL_NODE_ID;
  if (env.SHOAL_MAX_SIZE) {
    const n = Number(env.SHOAL_MAX_SIZE);
    if (!Number.isInteger(n) || n < 1) {
      throw new ConfigError(
        `SHOAL_MAX_SIZE must be a positive whole number of bytes, got "${env.SHOAL_MAX_SIZE}" (e.g. 524288)`,
      );
    }
    out.maxSize = n;
  }
  const secure = booleanFromEnv('SHOAL_COOKIE_SECURE', env.SHOAL_COOKIE_SECURE);
  if (secure !== undefined) out.cookie = { secure };
  return out;
}

/** What the shipped deploy files (deploy/k8s/secret.yaml) put in every secret, to be replaced. */
export const PLACEHOLDER_MARKER = 'CHANGE-ME';

/** The variables that hold secrets or keys (the store and bus URLs may hold a password). */
const SECRET_VARIABLES = [
  'SHOAL_SECRETS',
  'SHOAL_ENCRYPTION_KEYS',
  'SHOAL_PUBLISH_KEY',
  'SHOAL_TOKEN_SECRET',
  'SHOAL_DASHBOARD_TOKEN',
  'SHOAL_STORE',
  'SHOAL_BUS',
] as const;

/** The secret variables that still hold a deploy file's placeholder: they were never replaced. */
export function placeholderSecrets(env: NodeJS.ProcessEnv): string[] {
  return SECRET_VARIABLES.filter((name) => env[name]?.includes(PLACEHOLDER_MARKER));
}

/** The line that names them; doctor and node startup say the same. */
export function placeholderSecretsMessage(names: readonly string[]): string {
  return (
    `${names.join(', ')} still ${names.length === 1 ? 'holds' : 'hold'} the placeholder "${PLACEHOLDER_MARKER}" ` +
    'of the shipped deploy files, which anyone can read: replace it where the nodes read it (a secret or ' +
    "key with a random one, e.g. `openssl rand -base64 32`; a URL with your server's real password)"
  );
}

/**
 * Refuses, under NODE_ENV=production, secrets that still hold a deploy file's placeholder: a node
 * would otherwise sign cookies, or accept server API calls, with a key everyone has.
 */
export function refusePlaceholderSecrets(env: NodeJS.ProcessEnv): void {
  if (env.NODE_ENV !== 'production') return;
  const names = placeholderSecrets(env);
  if (names.length) throw new ConfigError(placeholderSecretsMessage(names));
}

/**
 * A node's whole configuration from SHOAL_* variables: SHOAL_STORE, SHOAL_BUS (default: the
 * store's URL when that backend is also a bus), SHOAL_NAMESPACE, SHOAL_NODE_ID and the session
 * settings above. Web nodes and gateways call this with the same environment and agree. Under
 * NODE_ENV=production a secret that still holds the deploy files' placeholder (CHANGE-ME) is refused.
 */
export function nodeConfigFromEnv(env: NodeJS.ProcessEnv, role: NodeConfig['role'], nodeId?: string): NodeConfig {
  refusePlaceholderSecrets(env);
  return {
    role,
    nodeId: env.SHOAL_NODE_ID || nodeId || `${role}-${process.pid}`,
    env,
    store: env.SHOAL_STORE || undefined,
    bus: env.SHOAL_BUS || undefined,
    namespace: env.SHOAL_NAMESPACE || undefined,
    session: sessionOptionsFromEnv(env),
  };
}

/** Every SHOAL_* variable the shoal command reads (docs/getting-started.md#6-configuration and the commands' --help). */
export const SHOAL_VARIABLES: readonly string[] = [
  'SHOAL_STORE',
  'SHOAL_BUS',
  'SHOAL_NAMESPACE',
  'SHOAL_NODE_ID',
  // Set by shoal start for the nodes it runs: the process whose loss drains them.
  'SHOAL_SUPERVISOR_PID',
  'SHOAL_SECRETS',
  'SHOAL_ENCRYPTION_KEYS',
  'SHOAL_IDLE_TIMEOUT',
  'SHOAL_ABSOLUTE_TIMEOUT',
  'SHOAL_SWEEP_INTERVAL',
  'SHOAL_SWEEP_LEASE',
  'SHOAL_MAX_SIZE',
  'SHOAL_COOKIE_SECURE',
  'SHOAL_LOG_LEVEL',
  'SHOAL_ORIGINS',
  'SHOAL_PUBLISH_KEY',
  'SHOAL_KEEP_SESSION_ALIVE',
  'SHOAL_MAX_CONNECTIONS_PER_SESSION',
  'SHOAL_MAX_CONNECTIONS_PER_USER',
  'SHOAL_TOKEN_SECRET',
  'SHOAL_TOKEN_JWKS_URL',
  'SHOAL_TOKEN_AUDIENCE',
  'SHOAL_TOKEN_ISSUER',
  'SHOAL_CONNECT_PROXY_URL',
  'SHOAL_CONNECT_PROXY_HEADERS',
  'SHOAL_CONNECT_PROXY_TIMEOUT',
  'SHOAL_SUBSCRIBE_PROXY_URL',
  'SHOAL_SUBSCRIBE_PROXY_TIMEOUT',
  'SHOAL_RPC_PROXY_URL',
  'SHOAL_RPC_PROXY_TIMEOUT',
  'SHOAL_DRAIN_TIMEOUT',
  'SHOAL_DRAIN_DELAY',
  'SHOAL_DRAIN_WINDOW',
  'SHOAL_DASHBOARD_TOKEN',
  'SHOAL_DASHBOARD_NODES',
];

/**
 * SHOAL_* variables shoal does not read, each with the setting it is likely a misspelling of (or
 * undefined: then it may be the app's own, as SHOAL_DEMO_SHIP_DELAY is the demo's).
 */
export function unknownShoalVariables(env: NodeJS.ProcessEnv): Array<{ name: string; near: string | undefined }> {
  return Object.keys(env)
    .filter((name) => name.startsWith('SHOAL_') && !SHOAL_VARIABLES.includes(name))
    .sort()
    .map((name) => ({ name, near: nearestName(name, SHOAL_VARIABLES) }));
}

/** The line that names a misspelt SHOAL_* variable (one with a near setting); doctor and node startup say the same. */
export function misspeltVariableMessage(name: string, near: string): string {
  return `${name} is not a shoal setting, so it is ignored; did you mean ${near}?`;
}

/** Prints a warning for each misspelt SHOAL_* variable (what a node, or `shoal start`, says as it starts). */
export function warnMisspeltVariables(env: NodeJS.ProcessEnv): void {
  for (const { name, near } of unknownShoalVariables(env)) {
    if (near) console.error(`shoal: warning: ${misspeltVariableMessage(name, near)}`);
  }
}
