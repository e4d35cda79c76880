import type { LogLine } from '../core/logger.js';
import { type AuthorizeContext, authorizeContext } from './authorize-context.js';
import type { Identity } from './identity.js';

/** The most a connection's info may weigh as JSON: it travels in presence answers, once per connection. */
export const MAX_CONNECTION_INFO_BYTES = 1024;

/**
 * What a connection shows others in presence answers (a display name, an avatar URL, a device):
 * the app chooses it. From a connection token's `info` claim, the connect proxy's `info`, or
 * else the gateway's `connectionInfo(who)` (a session cookie's connections), given what `authorize` is.
 */
export type ConnectionInfoHook = (who: AuthorizeContext) => unknown;

/** The info as stored (plain JSON), or why it is refused, in one line. */
export function checkConnectionInfo(value: unknown): { info: unknown } | { error: string } {
  if (value === undefined || value === null) return { info: null };
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {}
  if (json === undefined) return { error: 'connection info must be plain JSON (an object, a string, a number)' };
  if (Buffer.byteLength(json) > MAX_CONNECTION_INFO_BYTES) {
    return {
      error: `connection info is ${Buffer.byteLength(json)} bytes as JSON; keep it within ${MAX_CONNECTION_INFO_BYTES}`,
    };
  }
  return { info: JSON.parse(json) as unknown };
}

/**
 * The identity with its info: the credential's own (token, connect proxy), else the hook's. A hook
 * that throws (an attribute it reads that cannot be decoded included) or answers something unfit is
 * the app's bug or the store's damage, not the user's: the connection opens without info and the
 * reason is logged.
 */
export function withConnectionInfo(
  who: Identity,
  hook: ConnectionInfoHook | undefined,
  log: (line: LogLine) => void,
): Identity {
  if (who.info !== null || hook === undefined) return who;
  let checked: { info: unknown } | { error: string };
  try {
    checked = checkConnectionInfo(hook(authorizeContext(who)));
  } catch (err) {
    checked = { error: `connectionInfo threw: ${String(err)}` };
  }
  if ('error' in checked) {
    log({ level: 'warn', msg: `${checked.error}; the connection shows no info in presence` });
    return who;
  }
  return checked.info === null ? who : { ...who, info: checked.info };
}
