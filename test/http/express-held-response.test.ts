import { createServer } from 'node:http';
import express, { type RequestHandler } from 'express';
import { createStore, defineSession, type SessionManager } from 'shoal';
import { session } from 'shoal/express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';

/**
 * The session holds the response until its commit is done. Middleware mounted after it that
 * wraps res.write / res.end (a compressor, a body rewriter) keeps its wrapper for every call of
 * the response, and calls reaching the held methods through a kept reference are answered.
 */
const SECRET = 'held-response-secret-0123456789abcdefghijkl';
let sessions: SessionManager;
let served: Served;

/** Upper-cases every chunk the way a compressor transforms them: through its own write and end. */
const upperCase: RequestHandler = (_req, res, next) => {
  const write = res.write;
  const end = res.end;
  const upper = (chunk: unknown) => (typeof chunk === 'string' ? chunk.toUpperCase() : chunk);
  res.write = function (this: typeof res, chunk: unknown, ...rest: unknown[]) {
    return (write as (...a: unknown[]) => boolean).call(this, upper(chunk), ...rest);
  } as typeof res.write;
  res.end = function (this: typeof res, chunk?: unknown, ...rest: unknown[]) {
    return (end as (...a: unknown[]) => typeof res).call(this, upper(chunk), ...rest);
  } as typeof res.end;
  next();
};

beforeAll(async () => {
  const store = await createStore('memory:');
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
  const app = express();
  app.use(session(sessions));
  app.use(upperCase);
  app.get('/read', (_req, res) => {
    res.write('first, ');
    setImmediate(() => res.end('then the rest'));
  });
  app.get('/write', (req, res) => {
    req.session.set('k', 'v');
    res.write('first, ');
    setImmediate(() => res.end('then the rest'));
  });
  served = await listen(createServer(app));
});

afterAll(async () => {
  await served?.close();
  await sessions?.close();
});

describe('a response held for the session commit, with a wrapping middleware after the session', () => {
  it('keeps the wrapper for every call when nothing is committed', async () => {
    const res = await fetch(`${served.url}/read`, { signal: AbortSignal.timeout(5000) });
    expect(await res.text()).toBe('FIRST, THEN THE REST');
    expect(res.headers.get('set-cookie')).toBeNull();
  });

  it('keeps the wrapper for every call when the commit writes, and sends the cookie', async () => {
    const res = await fetch(`${served.url}/write`, { signal: AbortSignal.timeout(5000) });
    expect(await res.text()).toBe('FIRST, THEN THE REST');
    expect(res.headers.get('set-cookie')).toMatch(/^shoal\.sid=/);
  });
});
