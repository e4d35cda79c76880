import { describe, expect, it } from 'vitest';
import { endpoints } from '../../src/client/endpoints.js';

/**
 * One rule for where the SDK looks: a gateway serves `<base>/ws` and `<base>/sse`
 * (deploy/nginx/shoal.conf and deploy/k8s/ingress.yaml route exactly these), and the
 * connect URL names either `<base>/ws` or `<base>`.
 */
describe('SDK endpoints', () => {
  it.each([
    ['wss://rt.example.com/ws', 'wss://rt.example.com/ws', 'https://rt.example.com/sse'],
    ['https://app.example.com/ws', 'wss://app.example.com/ws', 'https://app.example.com/sse'],
    ['ws://127.0.0.1:8080/ws/', 'ws://127.0.0.1:8080/ws/', 'http://127.0.0.1:8080/sse'],
    ['wss://rt.example.com/', 'wss://rt.example.com/', 'https://rt.example.com/sse'],
    ['wss://rt.example.com', 'wss://rt.example.com/', 'https://rt.example.com/sse'],
    ['https://example.com/realtime/ws', 'wss://example.com/realtime/ws', 'https://example.com/realtime/sse'],
    ['https://example.com/realtime/', 'wss://example.com/realtime/', 'https://example.com/realtime/sse'],
    ['https://example.com/realtime', 'wss://example.com/realtime', 'https://example.com/realtime/sse'],
    ['https://example.com/news', 'wss://example.com/news', 'https://example.com/news/sse'],
    ['https://example.com/ws?x=1', 'wss://example.com/ws?x=1', 'https://example.com/sse?x=1'],
  ])('%s → %s and %s', (url, ws, sse) => {
    expect(endpoints(url)).toEqual({ ws, sse });
  });

  it('takes sseUrl as given, relative to the connect URL', () => {
    expect(endpoints('wss://a.example.com/ws', '/events').sse).toBe('https://a.example.com/events');
    expect(endpoints('wss://a.example.com/ws', 'https://b.example.com/s').sse).toBe('https://b.example.com/s');
  });

  it('refuses a URL that is neither http(s) nor ws(s), saying what it needs', () => {
    expect(() => endpoints('ftp://example.com/ws')).toThrow(/needs an http\(s\) or ws\(s\) URL, got "ftp:/);
  });
});
