import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from 'shoal';
import { afterAll, describe, expect, it } from 'vitest';
import type { AppDefinition } from '../../src/app/define.js';
import { nodeConfigFromEnv } from '../../src/app/env.js';
import { memoryBus } from '../../src/bus/memory.js';
import { runGatewayNode } from '../../src/cli/gateway-node.js';
import { ConfigError } from '../../src/core/errors.js';
import { CloseCode } from '../../src/protocol/index.js';
import { createGateway } from '../../src/realtime/gateway.js';
import { connectProxyFromEnv, rpcProxyFromEnv, subscribeProxyFromEnv } from '../../src/realtime/proxy-env.js';
import { tokenOptionsFromEnv } from '../../src/realtime/token-env.js';
import { SessionManager } from '../../src/session/manager.js';
import { memoryStore } from '../../src/stores/memory.js';
import { freePort } from '../helpers/processes.js';
import { hsToken, TOKEN_SECRET } from './token-helpers.js';
import { connect, handshakeStatus } from './ws-client.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-token-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('token settings for `shoal gateway`', () => {
  it('reads SHOAL_TOKEN_* over the app definition, and nothing without a key', () => {
    expect(tokenOptionsFromEnv({}, undefined)).toBeUndefined();
    expect(
      tokenOptionsFromEnv(
        { SHOAL_TOKEN_SECRET: TOKEN_SECRET, SHOAL_TOKEN_AUDIENCE: 'rt' },
        { audience: 'app', issuer: 'https://app' },
      ),
    ).toMatchObject({ secret: TOKEN_SECRET, audience: 'rt', issuer: 'https://app' });
    expect(tokenOptionsFromEnv({ SHOAL_TOKEN_JWKS_URL: 'https://id.example.com/jwks' }, undefined)).toMatchObject({
      jwksUrl: 'https://id.example.com/jwks',
    });
  });

  it.each([
    [{ SHOAL_TOKEN_SECRET: 'short' }, /at least 32/],
    [{ SHOAL_TOKEN_JWKS_URL: 'ftp://x' }, /http\(s\) URL/],
    [{ SHOAL_TOKEN_AUDIENCE: 'rt' }, /need a key/],
  ])('%o is a ConfigError naming the fix', (env, message) => {
    expect(() => tokenOptionsFromEnv(env, undefined)).toThrow(ConfigError);
    expect(() => tokenOptionsFromEnv(env, undefined)).toThrow(message);
  });

  it('a gateway node started with SHOAL_TOKEN_SECRET admits a token client and checks the audience from the app definition', async () => {
    const app: AppDefinition = { realtime: { tokens: { audience: 'rt' } }, web: () => () => {} };
    const port = await freePort();
    const env = {
      SHOAL_STORE: `sqlite:${join(dir, 'gw.db')}`,
      SHOAL_SECRETS: 'token-env-secret-0123456789abcdefghijkl',
      SHOAL_ORIGINS: 'https://app.example.com',
      SHOAL_COOKIE_SECURE: 'false',
      SHOAL_TOKEN_SECRET: TOKEN_SECRET,
    };
    const node = await runGatewayNode({
      app,
      config: nodeConfigFromEnv(env, 'gateway', 'gw-tokens'),
      port,
      drainWindowMs: 0,
      logger: silentLogger,
    });
    try {
      const url = `ws://127.0.0.1:${port}/ws`;
      const c = await connect(`${url}?token=${await hsToken({ sub: 'ann', aud: 'rt' })}`);
      expect(await c.waitFor((m) => m.type === 'hello')).toMatchObject({ user: 'ann' });
      c.close();
      const other = await hsToken({ sub: 'ann', aud: 'other' });
      expect(await handshakeStatus(`${url}?token=${other}`)).toBe(CloseCode.TokenInvalid);
    } finally {
      await node.drain();
    }
  });
});

describe('connect proxy settings for `shoal gateway`', () => {
  it('reads SHOAL_CONNECT_PROXY_* over the app definition', () => {
    expect(connectProxyFromEnv({}, undefined)).toBeUndefined();
    expect(
      connectProxyFromEnv(
        { SHOAL_CONNECT_PROXY_URL: 'http://app:8080/rt', SHOAL_CONNECT_PROXY_TIMEOUT: '2s' },
        { url: 'http://ignored', headers: ['authorization'] },
      ),
    ).toEqual({ url: 'http://app:8080/rt', headers: ['authorization'], timeoutMs: 2000 });
    expect(connectProxyFromEnv({ SHOAL_CONNECT_PROXY_HEADERS: 'x-a, x-b' }, { url: 'https://app/rt' })).toEqual({
      url: 'https://app/rt',
      headers: ['x-a', 'x-b'],
    });
  });

  it.each([
    [{ SHOAL_CONNECT_PROXY_URL: 'app:8080' }, /http\(s\) URL/],
    [{ SHOAL_CONNECT_PROXY_URL: 'http://app', SHOAL_CONNECT_PROXY_TIMEOUT: 'soon' }, /not a duration/],
    [{ SHOAL_CONNECT_PROXY_TIMEOUT: '2s' }, /need SHOAL_CONNECT_PROXY_URL/],
  ])('%o is a ConfigError naming the fix', (env, message) => {
    expect(() => connectProxyFromEnv(env, undefined)).toThrow(ConfigError);
    expect(() => connectProxyFromEnv(env, undefined)).toThrow(message);
  });
});

describe('subscribe proxy settings for `shoal gateway`', () => {
  it('reads SHOAL_SUBSCRIBE_PROXY_* over the app definition, and refuses it next to authorize', () => {
    expect(subscribeProxyFromEnv({}, undefined, true)).toBeUndefined();
    expect(
      subscribeProxyFromEnv(
        { SHOAL_SUBSCRIBE_PROXY_URL: 'http://app/sub', SHOAL_SUBSCRIBE_PROXY_TIMEOUT: '1s' },
        undefined,
        false,
      ),
    ).toEqual({ url: 'http://app/sub', timeoutMs: 1000 });
    expect(() => subscribeProxyFromEnv({ SHOAL_SUBSCRIBE_PROXY_URL: 'http://app/sub' }, undefined, true)).toThrow(
      /keep one/,
    );
    expect(() => subscribeProxyFromEnv({ SHOAL_SUBSCRIBE_PROXY_URL: 'app/sub' }, undefined, false)).toThrow(
      ConfigError,
    );
  });
});

describe('RPC proxy settings for `shoal gateway`', () => {
  it('reads SHOAL_RPC_PROXY_* over the app definition', () => {
    expect(rpcProxyFromEnv({}, undefined)).toBeUndefined();
    expect(
      rpcProxyFromEnv(
        { SHOAL_RPC_PROXY_URL: 'http://app/rpc', SHOAL_RPC_PROXY_TIMEOUT: '1500ms' },
        { url: 'http://ignored', headers: ['authorization'] },
      ),
    ).toEqual({ url: 'http://app/rpc', headers: ['authorization'], timeoutMs: 1500 });
    expect(rpcProxyFromEnv({}, { url: 'https://app/rpc', timeoutMs: 200 })).toEqual({
      url: 'https://app/rpc',
      timeoutMs: 200,
    });
  });

  it.each([
    [{ SHOAL_RPC_PROXY_URL: 'app/rpc' }, /http\(s\) URL/],
    [{ SHOAL_RPC_PROXY_URL: 'http://app', SHOAL_RPC_PROXY_TIMEOUT: 'soon' }, /not a duration/],
    [{ SHOAL_RPC_PROXY_TIMEOUT: '2s' }, /needs SHOAL_RPC_PROXY_URL/],
  ])('%o is a ConfigError naming the fix', (env, message) => {
    expect(() => rpcProxyFromEnv(env, undefined)).toThrow(ConfigError);
    expect(() => rpcProxyFromEnv(env, undefined)).toThrow(message);
  });
});

describe('allowed origins for `shoal gateway` and createGateway', () => {
  const SECRETS = 'origins-env-secret-0123456789abcdefghijkl';
  const webOnly: AppDefinition = { web: () => () => {} };
  const settings = (origins: string) => ({
    SHOAL_STORE: `sqlite:${join(dir, 'origins.db')}`,
    SHOAL_SECRETS: SECRETS,
    SHOAL_ORIGINS: origins,
    SHOAL_COOKIE_SECURE: 'false',
  });
  /** Starts a gateway node and drains it at once: the error it refused to start with, if any. */
  async function startError(origins: string, app = webOnly): Promise<unknown> {
    try {
      const node = await runGatewayNode({
        app,
        config: nodeConfigFromEnv(settings(origins), 'gateway', 'gw-origins'),
        port: await freePort(),
        drainWindowMs: 0,
        logger: silentLogger,
      });
      await node.drain();
      return undefined;
    } catch (err) {
      return err;
    }
  }

  it.each([
    [
      '127.0.0.1:23100',
      /^SHOAL_ORIGINS has "127\.0\.0\.1:23100", which no browser sends as an Origin.*; write it as the browser sends it: http:\/\/127\.0\.0\.1:23100$/,
    ],
    [
      'not-a-url',
      /^SHOAL_ORIGINS has "not-a-url", which no browser sends .*; write it as scheme:\/\/host\[:port\] with no path/,
    ],
    ['https://app.example.com/login', /"https:\/\/app\.example\.com\/login".*: https:\/\/app\.example\.com$/],
    ['https://*.example.com', /"https:\/\/\*\.example\.com".*; list each origin on its own: they are matched exactly/],
    ['https://app.example.com, localhost:3000', /^SHOAL_ORIGINS has "localhost:3000",.*: http:\/\/localhost:3000$/],
  ])(
    'SHOAL_ORIGINS=%s stops the gateway at its start with a ConfigError saying how to write it',
    async (origins, message) => {
      const err = await startError(origins);
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(message);
      expect((err as Error).message).not.toMatch(/\n/);
    },
  );

  it("names the app definition's realtime.origins when the entry comes from there", async () => {
    const app: AppDefinition = { realtime: { origins: ['app.example.com'] }, web: () => () => {} };
    const err = await startError('https://app.example.com', app);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /^realtime\.origins has "app\.example\.com", .*; write it as the browser sends it: https:\/\/app\.example\.com$/,
    );
  });

  it('createGateway refuses an origin no browser sends with a ConfigError', async () => {
    const sessions = new SessionManager({ store: memoryStore(), secrets: [SECRETS], sweep: { enabled: false } });
    const bus = memoryBus({ namespace: `origins-${Math.random()}` });
    try {
      const err = await createGateway({ bus, sessions, origins: ['127.0.0.1:23100'], logger: silentLogger }).then(
        (gateway) => gateway.close(),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(
        /^origins has "127\.0\.0\.1:23100", .*; write it as the browser sends it: http:\/\/127\.0\.0\.1:23100$/,
      );
    } finally {
      await bus.close();
    }
  });

  it('accepts an origin with a trailing slash, another case or its default port as the origin it is, and "*"', async () => {
    const port = await freePort();
    const node = await runGatewayNode({
      app: webOnly,
      config: nodeConfigFromEnv(settings('HTTPS://App.Example.com:443/'), 'gateway', 'gw-origins-ok'),
      port,
      drainWindowMs: 0,
      logger: silentLogger,
    });
    try {
      const url = `ws://127.0.0.1:${port}/ws`;
      // Past the Origin check, closed for want of a session (4401); a foreign origin never gets that far.
      expect(await handshakeStatus(url, { origin: 'https://app.example.com' })).toBe(CloseCode.Unauthorized);
      expect(await handshakeStatus(url, { origin: 'https://other.example.com' })).toBe(403);
    } finally {
      await node.drain();
    }

    const anyPort = await freePort();
    const any = await runGatewayNode({
      app: webOnly,
      config: nodeConfigFromEnv(settings('*'), 'gateway', 'gw-origins-any'),
      port: anyPort,
      drainWindowMs: 0,
      logger: silentLogger,
    });
    try {
      const status = await handshakeStatus(`ws://127.0.0.1:${anyPort}/ws`, { origin: 'https://other.example.com' });
      expect(status).toBe(CloseCode.Unauthorized);
    } finally {
      await any.drain();
    }
  });
});
