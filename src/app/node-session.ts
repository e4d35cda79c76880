import { silentLogger } from '../core/logger.js';
import { resolveSession, type SessionConfig } from '../session/options.js';
import { memoryStore } from '../stores/memory.js';
import type { AppDefinition } from './define.js';
import { sessionOptionsFromEnv } from './env.js';
import { appSessionOptions, mergeSessionOptions, type NodeConfig } from './open.js';

/**
 * The session settings a web node of `app` would run with under `env`, resolved without opening a
 * store: throws the ConfigError the node would refuse to start with (a duration that is not one, an
 * encryption key that is not 32 bytes, a size that is not a number). For `shoal doctor`.
 */
export function resolveNodeSession(app: AppDefinition | undefined, env: NodeJS.ProcessEnv): SessionConfig {
  const config: NodeConfig = { role: 'web', nodeId: 'doctor', env, session: sessionOptionsFromEnv(env) };
  const own = app ? appSessionOptions(app, config) : {};
  return resolveSession({
    ...mergeSessionOptions(config, own),
    store: memoryStore(),
    metrics: false,
    logger: silentLogger,
  }).config;
}
