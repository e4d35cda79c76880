import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

/** A Lua script and its SHA1, so calls send the digest and the source only when the server lacks it. */
export interface LuaScript {
  readonly lua: string;
  readonly sha: string;
}

export function luaScript(lua: string): LuaScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') };
}

/** EVALSHA, falling back to EVAL once when the server does not know the script. */
export async function runScript(
  client: Redis | Cluster,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await sendScript(client, script, keys, args, false);
  } catch (err) {
    // Script cache flushed or a fresh node (failover, cluster resharding): send the source once.
    if (!isNoScript(err)) throw err;
    return sendScript(client, script, keys, args, true);
  }
}

/**
 * One EVALSHA (or, with `source`, one EVAL): no async frame of its own, for callers that handle
 * NOSCRIPT themselves (isNoScript) in a handler they already have.
 */
export function sendScript(
  client: Redis | Cluster,
  script: LuaScript,
  keys: readonly string[],
  args: readonly (string | number)[],
  source: boolean,
): Promise<unknown> {
  // ioredis flattens array arguments one level: the keys and arguments go as they are, without
  // copying them into one spread list on every call.
  const flat = [keys, args] as unknown as (string | number)[];
  return source ? client.eval(script.lua, keys.length, ...flat) : client.evalsha(script.sha, keys.length, ...flat);
}

/** Whether a script call failed because the server does not have the script (send its source). */
export function isNoScript(err: unknown): boolean {
  return err instanceof Error && err.message.startsWith('NOSCRIPT');
}
