import { describe, expect, it } from 'vitest';
import { type ClientOptions, connect, type WebSocketLike } from '../../src/client/index.js';
import { ConfigError } from '../../src/core/errors.js';

/** Records what the client opened; never opens, so nothing reaches the network. */
const opened: string[] = [];
class QuietWebSocket implements WebSocketLike {
  readonly readyState = 0;
  onopen = null;
  onmessage = null;
  onclose = null;
  onerror = null;
  constructor(url: string) {
    opened.push(url);
  }
  send(): void {}
  close(): void {}
}
class QuietEventSource {
  readonly readyState = 0;
  onopen = null;
  onmessage = null;
  onerror = null;
  constructor(url: string) {
    opened.push(url);
  }
  close(): void {}
  addEventListener(): void {}
}
const injected = { WebSocket: QuietWebSocket, EventSource: QuietEventSource };

/** Options as plain JavaScript may pass them, past the types. */
const loose = (options: Record<string, unknown>) => ({ ...injected, ...options }) as ClientOptions;

describe('connect() options from plain JavaScript', () => {
  it.each(['SSE', 'ws', 'eventsource', ''])(
    'refuses transport "%s" at once, naming the ones there are',
    (transport) => {
      opened.length = 0;
      const attempt = () => connect('ws://127.0.0.1:1/', loose({ transport }));
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(`connect(): options.transport is "${transport}"; use 'websocket', 'sse' or 'auto'`);
      expect(opened).toEqual([]);
    },
  );

  it('refuses it before reading the URL, as a page would pass "/"', () => {
    expect(() => connect('/', loose({ transport: 'SSE' }))).toThrow(/options\.transport is "SSE"/);
  });

  it.each([
    ['pingMs', '25000'],
    ['sseAfterFailures', 'three'],
    ['sseTimeoutMs', Number.NaN],
  ])('refuses %s given %j: a number goes there', (name, value) => {
    const shown = typeof value === 'string' ? `"${value}"` : String(value);
    expect(() => connect('ws://127.0.0.1:1/', loose({ [name]: value }))).toThrow(
      `connect(): options.${name} is ${shown}; use a number, or leave it out`,
    );
  });

  it('refuses a backoff setting that is not a number', () => {
    expect(() => connect('ws://127.0.0.1:1/', loose({ backoff: { base: '500ms' } }))).toThrow(
      'connect(): options.backoff.base is "500ms"; use a number, or leave it out',
    );
  });

  it.each([
    [{ backoff: null }, 'options.backoff is null; use { base, cap, stableMs } in ms'],
    [{ WebSocket: 'x' }, 'options.WebSocket is "x"; use a function, or leave it out'],
    [{ sseUrl: 42 }, 'options.sseUrl is 42; use a string, or leave it out'],
    [{ token: { jwt: 'x' } }, 'options.token is an object; use a string, or leave it out'],
    [{ getToken: 'abc' }, 'options.getToken is "abc"; use a function, or leave it out'],
  ])('refuses %j at once', (options, message) => {
    expect(() => connect('ws://127.0.0.1:1/', loose(options))).toThrow(`connect(): ${message}`);
  });

  it('refuses options that are not an object (a transport passed on its own)', () => {
    expect(() => connect('ws://127.0.0.1:1/', 'websocket' as unknown as ClientOptions)).toThrow(
      `connect(): options is "websocket"; use an object, e.g. connect('/ws', { transport: 'auto' })`,
    );
  });

  it.each(['websocket', 'sse', 'auto', undefined])('opens with transport %s', async (transport) => {
    opened.length = 0;
    const rt = connect('ws://127.0.0.1:1/', loose({ transport, pingMs: 5000, backoff: { base: 100 } }));
    await new Promise((resolve) => setTimeout(resolve, 0));
    rt.close();
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatch(transport === 'sse' ? /^http:\/\/127\.0\.0\.1:1\/sse/ : /^ws:\/\/127\.0\.0\.1:1\//);
  });
});
