import { createServer } from 'node:http';
import express, { type Request, type Response } from 'express';
import expressSession from 'express-session';
import type { SessionStore } from 'shoal';
import { session as dropIn, type ExpressSessionOptions } from 'shoal/express-session';
import { listen, type Served } from '../helpers/listen.js';

/**
 * The same small app on express-session (the reference) and on shoal's drop-in. Routes touch
 * `req.session` exactly as an express-session app does; both run on real 127.0.0.1 ports.
 */
export type Impl = 'express-session' | 'shoal';

export const SECRET = 'conformance-secret-0123456789abcdefghijklmnop';
export const OLD_SECRET = 'conformance-old-secret-0123456789abcdefghijk';

/** The options both implementations take (express-session's names). */
export type CommonOptions = Pick<
  ExpressSessionOptions,
  'resave' | 'saveUninitialized' | 'rolling' | 'unset' | 'name' | 'proxy'
> & {
  secret?: string | string[];
  cookie?: {
    maxAge?: number;
    httpOnly?: boolean;
    secure?: boolean;
    sameSite?: 'lax' | 'strict' | 'none';
    domain?: string;
    path?: string;
  };
};

/** express-session's req.session, typed loosely (this repository's Express types carry shoal's own Session). */
type Loose = Record<string, unknown> & {
  id: string;
  cookie: Record<string, unknown> & { maxAge: number | null; originalMaxAge: number | null; expires: Date | null };
  save(cb?: (err?: unknown) => void): void;
  reload(cb: (err?: unknown) => void): void;
  destroy(cb?: (err?: unknown) => void): void;
  regenerate(cb: (err?: unknown) => void): void;
  touch(): void;
};
const sess = (req: Request) => (req as unknown as { session: Loose | null }).session as Loose;
const sid = (req: Request) => (req as unknown as { sessionID?: string }).sessionID;
const data = (s: Loose | null) => (s ? Object.fromEntries(Object.entries(s).filter(([k]) => k !== 'cookie')) : null);

/** A store both implementations' instances can share (e.g. for secret rotation across deploys). */
export interface Shared {
  reference: expressSession.Store;
  shoal: SessionStore;
}

export interface App extends Served {
  impl: Impl;
}

export async function startApp(impl: Impl, options: CommonOptions, shared: Shared): Promise<App> {
  const app = express();
  const secret = options.secret ?? SECRET;
  const common = { ...options, secret };
  if (impl === 'express-session') {
    app.use(expressSession({ ...common, store: shared.reference }));
  } else {
    app.use(dropIn({ ...common, store: shared.shoal }));
  }
  app.get('/untouched', (_req, res) => {
    res.send('ok');
  });
  app.get('/read', (req, res) => {
    res.json({ data: data(sess(req)), hasId: typeof sid(req) === 'string' && sid(req) === sess(req).id });
  });
  app.post('/set', (req, res) => {
    sess(req)[String(req.query.key)] = String(req.query.value);
    res.json({ ok: true });
  });
  app.post('/views', (req, res) => {
    const s = sess(req);
    s.views = ((s.views as number | undefined) ?? 0) + 1;
    res.json({ views: s.views });
  });
  app.post('/cart', (req, res) => {
    const s = sess(req);
    s.cart ??= { items: [] };
    (s.cart as { items: string[] }).items.push(String(req.query.item));
    res.json(s.cart);
  });
  app.post('/delete', (req, res) => {
    delete sess(req)[String(req.query.key)];
    res.json({ ok: true });
  });
  app.post('/regenerate', (req, res, next) => {
    const before = sess(req).id;
    sess(req).regenerate((err) => {
      if (err) return next(err);
      res.json({ changed: sess(req).id !== before && sid(req) === sess(req).id, data: data(sess(req)) });
    });
  });
  app.post('/destroy', (req, res, next) => {
    sess(req).destroy((err) => {
      if (err) return next(err);
      res.json({ session: (req as unknown as { session?: unknown }).session === undefined });
    });
  });
  app.post('/save-then-write', (req, res, next) => {
    const s = sess(req);
    s.a = 'first';
    s.save((err) => {
      if (err) return next(err);
      s.b = 'after save';
      res.json({ ok: true });
    });
  });
  app.get('/reload', (req, res, next) => {
    const before = sess(req).x;
    setTimeout(
      () => {
        sess(req).reload((err) => {
          if (err) return next(err);
          res.json({ before, after: sess(req).x });
        });
      },
      Number(req.query.ms ?? 150),
    );
  });
  app.post('/unset', (req, res) => {
    sess(req).x = 'changed before unset';
    (req as unknown as { session: unknown }).session = null;
    res.json({ ok: true });
  });
  app.get('/cookie', (req, res) => {
    const c = sess(req).cookie;
    // Minutes left, and the original lifetime in seconds: the milliseconds differ with timing
    // (express-session itself answers 3599999 for a 3600000 maxAge when a millisecond ticks over).
    const minutes = c.maxAge === null ? null : Math.round(c.maxAge / 60_000);
    const originalMaxAge = c.originalMaxAge === null ? null : Math.round(c.originalMaxAge / 1000);
    const { httpOnly, secure, sameSite, domain, path } = c;
    res.json({ minutes, originalMaxAge, expires: c.expires ? 'date' : null, httpOnly, secure, sameSite, domain, path });
  });
  /** "Remember me" alone: the cookie changes, no property does. */
  app.post('/remember-only', (req, res) => {
    sess(req).cookie.maxAge = Number(req.query.ms);
    res.json({ ok: true });
  });
  /** Cookie attributes alone, from the query (`true`/`false` as booleans). */
  app.post('/cookie-set', (req, res) => {
    const c = sess(req).cookie;
    for (const [key, value] of Object.entries(req.query)) {
      c[key] = value === 'true' ? true : value === 'false' ? false : String(value);
    }
    res.json({ ok: true });
  });
  app.post('/remember', (req, res) => {
    sess(req).cookie.maxAge = Number(req.query.ms);
    sess(req).remember = true;
    res.json({ ok: true });
  });
  /** Unmodified and slow: with resave, express-session writes its stale copy back when it ends. */
  app.get('/slow', (_req: Request, res: Response) => {
    setTimeout(() => res.json({ ok: true }), Number(_req.query.ms ?? 300));
  });
  const served = await listen(createServer(app));
  return { ...served, impl };
}
