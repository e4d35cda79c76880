import { createServer } from 'node:http';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { ConfigError, createStore, defineSession } from 'shoal';
import { session, sessionErrors, sessionLock } from 'shoal/express';
import { describe, expect, it } from 'vitest';
import { listen } from '../helpers/listen.js';

/**
 * The Express adapter given the wrong thing: a ConfigError saying how to write it, at the call
 * or (registered without being called) from the request, never a hang or a TypeError per request.
 */
const SECRET = 'misuse-secret-0123456789abcdefghijklmnop';

/** Calls `f` with arguments past the types. */
const loosely = <A extends unknown[], R>(f: (...args: A) => R, ...args: unknown[]): R => f(...(args as A));

/** The status and body of one GET / through `middleware`, with an error handler that prints the message. */
async function answer(middleware: unknown): Promise<{ status: number; body: string }> {
  const app = express();
  app.use(middleware as RequestHandler);
  app.get('/', (_req, res) => {
    res.send('reached');
  });
  const printMessage: ErrorRequestHandler = (err, _req, res, _next) => {
    res.status(500).send(`${(err as Error).name}: ${(err as Error).message}`);
  };
  app.use(printMessage);
  const served = await listen(createServer(app));
  try {
    const res = await fetch(`${served.url}/`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } finally {
    await served.close();
  }
}

describe('express session() misuse', () => {
  it('refuses what is not a session manager at the call', () => {
    for (const [bad, got] of [
      [{}, 'an object'],
      ['x', 'a string'],
      [undefined, 'nothing'],
    ] as const) {
      const attempt = () => loosely(session, bad);
      expect(attempt, got).toThrow(ConfigError);
      expect(attempt, got).toThrow(
        `app.use(session(sessions)) takes the session manager that defineSession({ store, secrets }) from 'shoal' returns; got ${got}`,
      );
    }
  });

  it('answers through the error handler, not a hang, when session itself is registered', async () => {
    const r = await answer(session);
    expect(r.status).toBe(500);
    expect(r.body).toBe(
      'ConfigError: the middleware was registered without being called: write app.use(session(sessions)), calling it with the manager defineSession() returned',
    );
  });

  it('does the same for sessionLock and sessionErrors registered without being called', async () => {
    const store = await createStore('memory:');
    const sessions = defineSession({ store, secrets: [SECRET], sweep: { enabled: false } });
    try {
      const app = express();
      app.use(session(sessions));
      app.get('/', sessionLock as unknown as RequestHandler, (_req, res) => {
        res.send('reached');
      });
      const printMessage: ErrorRequestHandler = (err, _req, res, _next) => {
        res.status(500).send(`${(err as Error).message}`);
      };
      app.use(printMessage);
      const served = await listen(createServer(app));
      try {
        const res = await fetch(`${served.url}/`, { signal: AbortSignal.timeout(2000) });
        expect(res.status).toBe(500);
        expect(await res.text()).toMatch(
          /^sessionLock\(name\) takes the lock's name, .*registered without being called$/,
        );
      } finally {
        await served.close();
      }
      const errors = await answer(sessionErrors);
      expect(errors.body).toBe(
        'ConfigError: sessionErrors is a factory: register app.use(sessionErrors()), after your routes',
      );
      expect(() => loosely(sessionLock)).toThrow("sessionLock(name) takes the lock's name");
    } finally {
      await sessions.close();
    }
  });
});
