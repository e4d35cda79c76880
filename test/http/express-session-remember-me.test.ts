import { createServer } from 'node:http';
import express, { type Request } from 'express';
import { session } from 'shoal/express-session';
import { memoryStore } from 'shoal/stores/memory';
import { afterAll, describe, expect, it } from 'vitest';
import { CookieJar } from '../helpers/cookie-jar.js';
import { listen, type Served } from '../helpers/listen.js';

/**
 * "Remember me" in an express-session app: a per-session cookie.maxAge longer than the server's
 * idle timeout. express-session + connect-redis give such a session its cookie's lifetime; the
 * drop-in ends it after idleTimeout, so it says so, once, with what to set.
 */
const SECRET = 'remember-me-secret-0123456789abcdefghijkl';
type Loose = { cookie: { maxAge: number | null }; user?: string };
const sess = (req: Request) => (req as unknown as { session: Loose }).session;

const servers: Served[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function app(idleTimeout?: string) {
  const warnings: Array<{ obj: Record<string, unknown>; msg: string | undefined }> = [];
  const logger = {
    info() {},
    error() {},
    warn(obj: object, msg?: string) {
      warnings.push({ obj: obj as Record<string, unknown>, msg });
    },
  };
  const middleware = session({
    secret: SECRET,
    store: memoryStore(),
    resave: false,
    saveUninitialized: false,
    cookie: { maxAge: 60_000 },
    logger,
    ...(idleTimeout ? { idleTimeout } : {}),
  });
  const web = express();
  web.use(middleware);
  web.post('/login', (req, res) => {
    sess(req).user = 'ann';
    if (req.query.remember === '1') sess(req).cookie.maxAge = 30 * 24 * 3600_000;
    res.json({ ok: true });
  });
  const served = await listen(createServer(web));
  servers.push(served);
  servers.push({ url: '', close: () => middleware.close() });
  return { served, warnings };
}

describe('express-session drop-in: a cookie that outlives the idle timeout', () => {
  it('warns once, naming both lifetimes and idleTimeout', async () => {
    const { served, warnings } = await app();
    for (let i = 0; i < 3; i++) {
      const res = await new CookieJar().fetch(`${served.url}/login?remember=1`, { method: 'POST' });
      expect(res.status).toBe(200);
      expect(res.headers.get('set-cookie')).toMatch(/Expires=/);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.obj).toEqual({ maxAge: 30 * 24 * 3600_000, idleTimeout: 60_000 });
    expect(warnings[0]?.msg).toMatch(
      /cookie\.maxAge \(2592000000 ms\) is longer than idleTimeout \(60000 ms\).*idleTimeout: '30d'/,
    );
  });

  it('says nothing when no session outlives it', async () => {
    const plain = await app();
    await new CookieJar().fetch(`${plain.served.url}/login`, { method: 'POST' });
    expect(plain.warnings).toEqual([]);
    const long = await app('30d');
    await new CookieJar().fetch(`${long.served.url}/login?remember=1`, { method: 'POST' });
    expect(long.warnings).toEqual([]);
  });
});
