import { ConfigError } from '../core/errors.js';
import type { TokenOptions } from './tokens.js';

/**
 * The gateway's token settings for `shoal gateway`: the app definition's `realtime.tokens`, each
 * overridden by its variable when that is set — SHOAL_TOKEN_SECRET (HS256), SHOAL_TOKEN_JWKS_URL
 * (RS256/ES256), SHOAL_TOKEN_AUDIENCE, SHOAL_TOKEN_ISSUER. Undefined when neither gives a key:
 * tokens are then refused (4410). A bad value is a ConfigError naming the variable.
 */
export function tokenOptionsFromEnv(
  env: Record<string, string | undefined>,
  fromApp: TokenOptions | undefined,
): TokenOptions | undefined {
  const pick = (name: string, own: string | undefined) => {
    const value = env[name]?.trim();
    return value ? value : own;
  };
  const o: TokenOptions = {
    ...fromApp,
    secret: pick('SHOAL_TOKEN_SECRET', fromApp?.secret),
    jwksUrl: pick('SHOAL_TOKEN_JWKS_URL', fromApp?.jwksUrl),
    audience: pick('SHOAL_TOKEN_AUDIENCE', fromApp?.audience),
    issuer: pick('SHOAL_TOKEN_ISSUER', fromApp?.issuer),
  };
  if (!o.secret && !o.jwksUrl) {
    if (o.audience || o.issuer) {
      throw new ConfigError(
        'SHOAL_TOKEN_AUDIENCE / SHOAL_TOKEN_ISSUER need a key to check tokens with: set SHOAL_TOKEN_SECRET (HS256) or SHOAL_TOKEN_JWKS_URL (RS256/ES256)',
      );
    }
    return undefined;
  }
  if (o.secret !== undefined && o.secret.length < 32) {
    throw new ConfigError('SHOAL_TOKEN_SECRET must be at least 32 characters (e.g. `openssl rand -base64 48`)');
  }
  if (o.jwksUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(o.jwksUrl)) {
    throw new ConfigError(`SHOAL_TOKEN_JWKS_URL must be an http(s) URL, got ${JSON.stringify(o.jwksUrl)}`);
  }
  return o;
}
