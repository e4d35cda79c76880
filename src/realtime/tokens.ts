import { createRemoteJWKSet, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { ConfigError } from '../core/errors.js';
import { isValidChannel } from '../protocol/channels.js';
import { CloseCode } from '../protocol/messages.js';
import { checkConnectionInfo } from './connection-info.js';

/**
 * How a gateway checks signed connection and subscription tokens (JWT). At least one key source:
 * `secret` (HS256) and/or `jwksUrl` (RS256, ES256, keys fetched from the URL and cached).
 */
export interface TokenOptions {
  /** Shared secret for HS256 tokens, at least 32 characters. */
  secret?: string | undefined;
  /** JWKS URL the RS256/ES256 verification keys come from (fetched on demand, cached, refetched for an unknown `kid`). */
  jwksUrl?: string | undefined;
  /** When set, a token's `aud` must contain it. */
  audience?: string | undefined;
  /** When set, a token's `iss` must be it. */
  issuer?: string | undefined;
  /** Seconds of clock skew allowed on `exp`/`nbf` (default 0). */
  clockToleranceSec?: number | undefined;
  /** How long a JWKS fetch may take before the handshake is closed with 4013 (default 3000 ms). */
  jwksTimeoutMs?: number | undefined;
}

/** What a verified token says. */
export interface TokenClaims {
  /** `sub`; an empty `sub` is an anonymous connection. */
  user: string | null;
  /** `exp`, in ms since the epoch. */
  expiresAt: number;
  /** The `info` claim (connection tokens): what the connection shows in presence answers, or null. */
  info: unknown;
  /** The `channels` claim (connection tokens): channels it may join without `authorize`. */
  channels: string[];
  /** The `channel` claim (subscription tokens). */
  channel: string | null;
}

/** Why a token was refused: the metric's `reason`, and the close code that says so to the client. */
export type TokenRefusal = {
  reason: 'expired' | 'malformed' | 'algorithm' | 'signature' | 'audience' | 'issuer' | 'claims' | 'unavailable';
  code: number;
  message: string;
};

export type TokenVerdict = { ok: TokenClaims } | { refused: TokenRefusal };

export interface TokenVerifier {
  verify(token: string): Promise<TokenVerdict>;
}

/** Refuses every token: the gateway was given no key (tokens are then not a way in). */
const NO_KEYS: TokenVerifier = {
  verify: async () => ({ refused: refusal('algorithm', 'this gateway accepts no connection tokens') }),
};

export function createTokenVerifier(o: TokenOptions | undefined): TokenVerifier {
  if (!o || (!o.secret && !o.jwksUrl)) return NO_KEYS;
  if (o.secret !== undefined && o.secret.length < 32) {
    throw new ConfigError(
      'the token secret must be at least 32 characters (HS256 keys shorter than that can be guessed)',
    );
  }
  const secret = o.secret ? new TextEncoder().encode(o.secret) : undefined;
  const jwks = o.jwksUrl
    ? createRemoteJWKSet(jwksUrlOf(o.jwksUrl), { timeoutDuration: o.jwksTimeoutMs ?? 3000 })
    : undefined;
  // An HS256 token is never checked against a JWKS key and an RS/ES token never against the secret.
  const algorithms = [...(secret ? ['HS256'] : []), ...(jwks ? ['RS256', 'ES256'] : [])];
  const key: JWTVerifyGetKey = (header, token) => {
    if (header.alg === 'HS256' && secret) return secret;
    if (jwks) return jwks(header, token);
    return secret as Uint8Array;
  };
  return {
    async verify(token) {
      try {
        const { payload } = await jwtVerify(token, key, {
          algorithms,
          requiredClaims: ['exp', 'sub'],
          clockTolerance: o.clockToleranceSec ?? 0,
          ...(o.audience ? { audience: o.audience } : {}),
          ...(o.issuer ? { issuer: o.issuer } : {}),
        });
        return claimsOf(payload);
      } catch (err) {
        return { refused: classify(err) };
      }
    },
  };
}

function jwksUrlOf(text: string): URL {
  try {
    const url = new URL(text);
    if (url.protocol === 'https:' || url.protocol === 'http:') return url;
  } catch {}
  throw new ConfigError(`the JWKS URL must be an http(s) URL, got ${JSON.stringify(text)}`);
}

function claimsOf(p: JWTPayload): TokenVerdict {
  if (typeof p.sub !== 'string' || typeof p.exp !== 'number') {
    return { refused: refusal('claims', 'the token needs a string sub and a numeric exp') };
  }
  const channels = p.channels ?? [];
  if (!Array.isArray(channels) || !channels.every(isValidChannel)) {
    return { refused: refusal('claims', 'the channels claim must be a list of valid channel names') };
  }
  if (p.channel !== undefined && !isValidChannel(p.channel)) {
    return { refused: refusal('claims', 'the channel claim must be a valid channel name') };
  }
  const info = checkConnectionInfo(p.info);
  if ('error' in info) return { refused: refusal('claims', `the info claim: ${info.error}`) };
  return {
    ok: {
      info: info.info,
      user: p.sub === '' ? null : p.sub,
      expiresAt: p.exp * 1000,
      channels,
      channel: typeof p.channel === 'string' ? p.channel : null,
    },
  };
}

function refusal(reason: TokenRefusal['reason'], message: string): TokenRefusal {
  const code =
    reason === 'expired'
      ? CloseCode.TokenExpired
      : reason === 'unavailable'
        ? CloseCode.AuthUnavailable
        : CloseCode.TokenInvalid;
  return { reason, code, message };
}

/** jose's error codes, sorted into what the client is told. Anything else is a key source that failed. */
function classify(err: unknown): TokenRefusal {
  const code = (err as { code?: unknown }).code;
  const claim = (err as { claim?: unknown }).claim;
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return refusal('expired', 'token expired');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return refusal('algorithm', 'token algorithm not accepted');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return refusal('signature', 'token signature not valid');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'aud') return refusal('audience', 'token audience not accepted');
      if (claim === 'iss') return refusal('issuer', 'token issuer not accepted');
      return refusal('claims', `token claim ${String(claim)} not valid`);
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return refusal('malformed', 'token is not a valid JWT');
    default:
      return refusal('unavailable', 'token keys could not be fetched; retry');
  }
}
