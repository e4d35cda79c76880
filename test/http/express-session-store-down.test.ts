import { createServer } from 'node:http';
import express, { type ErrorRequestHandler } from 'express';
import { BusUnavailableError } from 'shoal';
import { type SessionMiddleware, session, sessionErrors } from 'shoal/express-session';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';
import { type StoreOutage, storeDownWhen } from '../helpers/switchable-store.js';

/**
 * The drop-in hands a store failure to next(err), as express-session does. Whatever error handler
 * the app has then answers 503 + Retry-After, not 500: sessionErrors() from the drop-in's own entry
 * point, an app's handler that reads err.status, or none (Express's default handler).
 */
const SECRET = 'drop-in-store-down-secret-0123456789abcdef';
const outage: StoreOutage = { down: false };
const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const close of closers) await close();
});

/** An app on the drop-in whose routes read the session, with `handler` last (or none). */
async function app(handler: ErrorRequestHandler | ReturnType<typeof sessionErrors> | undefined) {
  const mw: SessionMiddleware = session({
    secret: [SECRET],
    store: await storeDownWhen(outage),
    resave: false,
    saveUninitialized: true,
    cookie: { secure: false },
  });
  const a = express();
  a.use(mw);
  a.get('/', (req, res) => {
    (req.session as unknown as { views?: number }).views = 1;
    res.send('ok');
  });
  if (handler) a.use(handler);
  const served: Served = await listen(createServer(a));
  closers.push(async () => {
    await served.close();
    await mw.close();
  });
  return served;
}

/** A first visit (the cookie), then a visit while the store is down. */
async function visitWhileDown(served: Served): Promise<Response> {
  const first = await fetch(served.url);
  expect(first.status).toBe(200);
  const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
  outage.down = true;
  try {
    return await fetch(served.url, { headers: { cookie }, signal: AbortSignal.timeout(5000) });
  } finally {
    outage.down = false;
  }
}

let withSessionErrors: Served;
let withAppHandler: Served;
let withNone: Served;
beforeAll(async () => {
  withSessionErrors = await app(sessionErrors());
  const appHandler: ErrorRequestHandler = (err, _req, res, _next) => {
    const e = err as { status?: number; statusCode?: number; expose?: boolean; message: string };
    res.status(e.status ?? e.statusCode ?? 500).send(e.expose ? e.message : 'something went wrong');
  };
  withAppHandler = await app(appHandler);
  withNone = await app(undefined);
});

describe('the drop-in while the store is down', () => {
  it("sessionErrors() from shoal/express-session answers 503 + Retry-After with shoal's JSON body", async () => {
    const res = await visitWhileDown(withSessionErrors);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: string }).error).toBe('ERR_SHOAL_STORE_UNAVAILABLE');
  });

  it("an app's own handler that reads err.status answers 503, and does not show the message", async () => {
    const res = await visitWhileDown(withAppHandler);
    expect(res.status).toBe(503);
    expect(await res.text()).toBe('something went wrong');
  });

  it("Express's default handler answers 503 + Retry-After", async () => {
    const res = await visitWhileDown(withNone);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  });

  it('the bus error carries the same status for the same handlers', () => {
    const err = new BusUnavailableError('redis', 'publish failed');
    expect({ status: err.status, statusCode: err.statusCode, expose: err.expose }).toEqual({
      status: 503,
      statusCode: 503,
      expose: false,
    });
    expect(err.headers).toEqual({ 'Retry-After': '1' });
  });
});
