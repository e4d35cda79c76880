import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from 'jose';

export const TOKEN_SECRET = 'token-secret-for-tests-0123456789abcdef';

/** An HS256 token signed with `secret`, expiring in `ttlSec` (negative: already expired). */
export function hsToken(claims: JWTPayload, ttlSec = 60, secret = TOKEN_SECRET): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
    .sign(new TextEncoder().encode(secret));
}

/** An unsigned token (`alg: none`), built by hand as an attacker would. */
export function noneToken(claims: JWTPayload): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part({ exp: Math.floor(Date.now() / 1000) + 60, ...claims })}.`;
}

/** A real HTTP server serving a JWKS with one key pair of `alg`; `sign` makes tokens with its private key. */
export async function jwksServer(alg: 'RS256' | 'ES256') {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  const jwk = { ...(await exportJWK(publicKey)), kid: `${alg}-1`, alg, use: 'sig' };
  let requests = 0;
  const server: Server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return {
    url,
    requests: () => requests,
    sign: (claims: JWTPayload, ttlSec = 60) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg, kid: jwk.kid })
        .setExpirationTime(Math.floor(Date.now() / 1000) + ttlSec)
        .sign(privateKey),
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
