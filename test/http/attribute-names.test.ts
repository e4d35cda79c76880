import { createServer } from 'node:http';
import { createStore, defineSession, type SessionManager } from 'shoal';
import { nodeSessions } from 'shoal/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen, type Served } from '../helpers/listen.js';

/**
 * Attribute names are the app's: one that is also the name of a method every object has
 * ("toString", "constructor", "valueOf") stores and reads back like any other; "__proto__", which
 * would set an object's prototype wherever attributes are held as one, is refused with a clear error.
 */
const SECRET = 'attribute-names-secret-0123456789abcdefghij';
const NAMES = ['toString', 'constructor', 'valueOf', 'hasOwnProperty'];
let sessions: SessionManager;
let served: Served;

beforeAll(async () => {
  const store = await createStore('memory:');
  sessions = defineSession({ store, secrets: [SECRET], cookie: { secure: false }, sweep: { enabled: false } });
  const { handle } = nodeSessions(sessions);
  served = await listen(
    createServer(
      handle(async (req, res, session) => {
        const url = new URL(req.url ?? '/', 'http://x');
        const name = url.searchParams.get('name') ?? '';
        if (url.pathname === '/set') session.set(name, { kept: name });
        if (url.pathname === '/update') await session.update(name, () => ({ updated: name }));
        if (url.pathname === '/refuse') {
          const errors: string[] = [];
          for (const write of [
            () => session.set(name, 1),
            () => session.update(name, () => 1),
            () => session.increment(name, 1),
          ]) {
            try {
              await write();
            } catch (err) {
              errors.push((err as Error).message);
            }
          }
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ errors }));
          return;
        }
        const value = await session.get(name);
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value }));
      }),
    ),
  );
});

afterAll(async () => {
  await served?.close();
  await sessions?.close();
});

async function call(path: string, cookie?: string): Promise<{ status: number; body: unknown; cookie?: string }> {
  const res = await fetch(`${served.url}${path}`, {
    headers: cookie ? { cookie } : {},
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.json(), cookie: res.headers.get('set-cookie')?.split(';')[0] ?? cookie };
}

describe('attribute names that objects also have as methods', () => {
  for (const name of NAMES) {
    it(`"${name}" is stored and read back as set`, async () => {
      const set = await call(`/set?name=${name}`);
      expect(set.status).toBe(200);
      expect(set.body).toEqual({ value: { kept: name } });
      const read = await call(`/get?name=${name}`, set.cookie);
      expect(read.body).toEqual({ value: { kept: name } });
      const updated = await call(`/update?name=${name}`, set.cookie);
      expect(updated.status).toBe(200);
      expect(updated.body).toEqual({ value: { updated: name } });
      expect((await call(`/get?name=${name}`, set.cookie)).body).toEqual({ value: { updated: name } });
    });
  }
});

describe('reading an attribute a session does not hold', () => {
  for (const name of [...NAMES, '__proto__']) {
    it(`"${name}" reads as absent`, async () => {
      const first = await call('/set?name=other');
      expect(await call(`/get?name=${name}`, first.cookie)).toMatchObject({ status: 200, body: {} });
    });
  }
});

describe('"__proto__" as an attribute name', () => {
  it('is refused by set, update and increment with one line saying why, and the session keeps its data', async () => {
    const first = await call('/set?name=other');
    const refused = await call('/refuse?name=__proto__', first.cookie);
    expect(refused.status).toBe(200);
    const { errors } = refused.body as { errors: string[] };
    expect(errors).toHaveLength(3);
    for (const message of errors) expect(message).toMatch(/"__proto__" cannot be a session attribute name/);
    expect((await call('/get?name=other', first.cookie)).body).toEqual({ value: { kept: 'other' } });
  });
});
