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
  // ioredis flattens array arguments one level: the keys and arguments go as they are, without
  // copying them into one spread list on every call.
  const flat = [keys, args] as unknown as (string | number)[];
  try {
    return await client.evalsha(script.sha, keys.length, ...flat);
  } catch (err) {
    // Script cache flushed or a fresh node (failover, cluster resharding): send the source once.
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return client.eval(script.lua, keys.length, ...flat);
  }
}
