import { createServer } from 'node:http';
import { createStore, defineSession, type SessionManager, StoreUnavailableError } from 'shoal';
import { nodeSessions } from 'shoal/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';

/**
 * shoal/node's handle(): whatever way a handler fails, the client gets one answer — a JSON error
 * when nothing of the response was sent yet, a cut connection when part of it was — and the
 * failure reaches onError once.
 */
const SECRET = 'node-failures-secret-0123456789abcdefghijkl';
let sessions: SessionManager;
let served: Served;
const reported: unknown[] = [];

beforeAll(async () => {
  const store = await createStore('memory:');
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
  const { handle } = nodeSessions(sessions, { onError: (err) => reported.push(err) });
  const handler = handle((req, res, session) => {
    switch (req.url) {
      case '/ok':
        session.set('seen', true);
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        return;
      case '/sync-throw':
        throw new Error('sync failure');
      case '/async-throw':
        return (async () => {
          await new Promise((r) => setImmediate(r));
          throw new Error('async failure');
        })();
      case '/store-down':
        return Promise.reject(new StoreUnavailableError('memory', 'down (thrown by the test)'));
      case '/thenable':
        // Not a native promise: what some libraries hand back.
        // biome-ignore lint/suspicious/noThenProperty: a thenable is the point of this case
        return { then: (_ok: unknown, fail: (err: Error) => void) => fail(new Error('thenable failure')) };
      case '/half-sent':
        return (async () => {
          res.writeHead(200, { 'content-type': 'text/plain' });
          res.write('part of it, ');
          await new Promise((r) => setImmediate(r));
          throw new Error('failed half way');
        })();
      default:
        res.writeHead(404).end();
    }
  });
  served = await listen(createServer(handler));
});

afterAll(async () => {
  await served?.close();
  await sessions?.close();
});

const get = (path: string) => fetch(`${served.url}${path}`, { signal: AbortSignal.timeout(5000) });

describe('shoal/node handle(): a handler that fails', () => {
  it('answers normally when it does not', async () => {
    const res = await get('/ok');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    expect(res.headers.get('set-cookie')).toMatch(/^shoal\.sid=/);
  });

  it.each([
    ['/sync-throw', 'sync failure'],
    ['/async-throw', 'async failure'],
    ['/thenable', 'thenable failure'],
  ])('%s: a JSON 500, reported once', async (path, message) => {
    reported.length = 0;
    const res = await get(path);
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ error: 'ERR_INTERNAL', message: 'Internal Server Error' });
    expect(reported.map((e) => (e as Error).message)).toEqual([message]);
  });

  it('a store outage: 503 with Retry-After', async () => {
    const res = await get('/store-down');
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeTruthy();
  });

  it('after part of the response left: the connection is cut, nothing is appended', async () => {
    reported.length = 0;
    const res = await get('/half-sent');
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    expect(reported.map((e) => (e as Error).message)).toEqual(['failed half way']);
  });
});
