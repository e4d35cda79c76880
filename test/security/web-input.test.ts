import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSessionId } from '../../src/core/ids.js';
import { KeyRing } from '../../src/session/signing.js';
import { type NodeProcess, startNode, stopAll } from '../helpers/processes.js';

/**
 * Hostile cookies and session tricks against a real web node (the probe, SQLite store),
 * at the HTTP level. Each must give no session (and clear the cookie when it looked like
 * ours), never adopt an id the client chose, never touch anyone's stored session, and
 * leave the process serving.
 *
 * The session layer's own checks (tampered, unsigned, unissued, duplicated, oversized
 * values; rotation; fixation by regenerate) run on every store in
 * test/conformance/session-suite.ts; cookie parsing in test/unit/signing-cookie.test.ts.
 */
const SECRET = 'web-security-secret-0123456789abcdefghijk';
const NAME = 'shoal.sid';
const dir = mkdtempSync(join(tmpdir(), 'shoal-sec-web-'));
const db = join(dir, 'sessions.db');
const ring = new KeyRing([SECRET]);

let node: NodeProcess;
let victim = { id: '', cookie: '' };

afterAll(async () => {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
});

/** One request with exactly the headers given (fetch would merge or refuse some of them). */
function raw(
  path: string,
  o: { method?: string; cookies?: string[]; body?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; setCookie: string[]; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    // Raw header pairs, so two Cookie lines stay two lines; in this form Node adds neither Host nor framing.
    const headers: Array<[string, string]> = [['host', `127.0.0.1:${node.port}`], ...Object.entries(o.headers ?? {})];
    for (const c of o.cookies ?? []) headers.push(['cookie', c]);
    headers.push(['content-length', String(Buffer.byteLength(o.body ?? ''))], ['content-type', 'text/plain']);
    const req = request(`${node.url}${path}`, { method: o.method ?? 'GET', headers: headers.flat() }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () => {
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {}
        const sc = res.headers['set-cookie'] ?? [];
        resolve({ status: res.statusCode ?? 0, setCookie: sc, body });
      });
    });
    req.on('error', reject);
    req.end(o.body);
  });
}

/** Every live session row: what "nothing stored changes" compares. */
function snapshot(): string {
  const conn = new Database(db, { readonly: true, fileMustExist: true });
  try {
    return JSON.stringify(
      conn
        .prepare(
          'SELECT namespace, id, attributes, rev, user_id, idle_deadline FROM shoal_sessions WHERE ended_reason IS NULL ORDER BY namespace, id',
        )
        .all(),
    );
  } finally {
    conn.close();
  }
}

const idOf = (setCookie: string[]) => {
  const line = setCookie.find((c) => c.startsWith(`${NAME}=`) && !/Max-Age=0/.test(c));
  return line
    ?.slice(NAME.length + 1)
    .split(';')[0]
    ?.split('.')[0];
};

beforeAll(async () => {
  node = await startNode({
    name: 'security-web',
    script: 'examples/probe/server.ts',
    env: { SHOAL_STORE: `sqlite:${db}`, SHOAL_BUS: 'memory:', SHOAL_SECRETS: SECRET },
  });
  const login = await raw('/login?user=victim', { method: 'POST' });
  const value = login.setCookie[0]?.split(';')[0]?.slice(NAME.length + 1) ?? '';
  victim = { id: value.split('.')[0] ?? '', cookie: `${NAME}=${value}` };
  expect((await raw('/set/secret', { method: 'POST', cookies: [victim.cookie], body: 'the-secret' })).status).toBe(200);
}, 60_000);

describe('hostile session cookies on a web node', () => {
  const signedValue = () => victim.cookie.slice(NAME.length + 1);
  const cases: Array<[string, () => string[], 'cleared' | 'ignored']> = [
    ['the bare id, unsigned', () => [`${NAME}=${victim.id}`], 'cleared'],
    [
      'a tampered MAC',
      () => [`${NAME}=${signedValue().slice(0, -1)}${signedValue().endsWith('A') ? 'B' : 'A'}`],
      'cleared',
    ],
    [
      'a tampered id under the original MAC',
      () => [`${NAME}=${victim.id.slice(0, -1)}x.${signedValue().split('.')[1]}`],
      'cleared',
    ],
    ['an id signed with another secret', () => [`${NAME}=${new KeyRing(['x'.repeat(40)]).sign(victim.id)}`], 'cleared'],
    ['an extra dot-separated part', () => [`${victim.cookie}.extra`], 'cleared'],
    ['an empty value', () => [`${NAME}=`], 'cleared'],
    ['a value over 4,096 bytes', () => [`${victim.cookie}${'A'.repeat(5000)}`], 'cleared'],
    ['the valid cookie twice in one header', () => [`${victim.cookie}; ${victim.cookie}`], 'cleared'],
    ['the valid cookie in two Cookie headers', () => [victim.cookie, victim.cookie], 'cleared'],
    [
      'the valid cookie plus a planted one (sibling subdomain)',
      () => [`${victim.cookie}; ${NAME}=${ring.sign(newSessionId())}`],
      'cleared',
    ],
    ['the name in another case', () => [`SHOAL.SID=${signedValue()}`], 'ignored'],
    ['the name as a suffix of another name', () => [`x${NAME}=${signedValue()}`], 'ignored'],
    ['the pair inside another cookie’s value', () => [`other="${victim.cookie}"`], 'ignored'],
    ['the pair after a comma (not a cookie separator)', () => [`other=1, ${victim.cookie}`], 'ignored'],
  ];

  it.each(cases)('%s: no session, nothing stored changes, the victim untouched', async (_name, cookies, effect) => {
    const before = snapshot();
    const read = await raw('/session', { cookies: cookies() });
    expect(read.status).toBe(200);
    expect(read.body.id).toBeUndefined();
    expect(read.body.attributes).toEqual({});
    if (effect === 'cleared') expect(read.setCookie.join()).toMatch(/Max-Age=0/);
    else expect(read.setCookie).toEqual([]);
    expect(snapshot()).toBe(before);
    // A write with it starts a brand-new session: it never lands in the victim's.
    const write = await raw('/set/secret', { method: 'POST', cookies: cookies(), body: 'overwritten' });
    expect(write.status).toBe(200);
    const fresh = idOf(write.setCookie);
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(fresh).not.toBe(victim.id);
    const mine = await raw('/session', { cookies: [victim.cookie] });
    expect(mine.body).toMatchObject({ id: victim.id, attributes: { secret: 'the-secret', userId: 'victim' } });
  });

  it('a signed id the server never issued is not adopted: a write gets a fresh one', async () => {
    const chosen = newSessionId();
    const cookie = `${NAME}=${ring.sign(chosen)}`; // only possible with the secret, e.g. after a leak
    const read = await raw('/session', { cookies: [cookie] });
    expect(read.body.id).toBeUndefined();
    const write = await raw('/set/k', { method: 'POST', cookies: [cookie], body: 'v' });
    expect(idOf(write.setCookie)).not.toBe(chosen);
  });

  it('a session id in the URL or a header other than Cookie is ignored', async () => {
    for (const path of [
      `/session?sid=${victim.id}`,
      `/session?${NAME}=${signedValue()}`,
      `/session;jsessionid=${victim.id}`,
    ]) {
      expect((await raw(path)).body.id).toBeUndefined();
    }
    expect((await raw('/session', { headers: { authorization: `Bearer ${signedValue()}` } })).body.id).toBeUndefined();
  });

  it('a Cookie header over the server’s header limit is refused with 431, the node keeps serving', async () => {
    const r = await raw('/session', { cookies: [`junk=${'j'.repeat(20_000)}; ${victim.cookie}`] });
    expect(r.status).toBe(431);
    expect((await raw('/healthz')).status).toBe(200);
  });

  it('replaying a destroyed session’s cookie gets nothing, and a write with it does not revive it', async () => {
    const login = await raw('/login?user=replay', { method: 'POST' });
    const cookie = login.setCookie[0]?.split(';')[0] ?? '';
    const id = cookie.slice(NAME.length + 1).split('.')[0];
    const logout = await raw('/logout', { method: 'POST', cookies: [cookie] });
    expect(logout.setCookie.join()).toMatch(/Max-Age=0/);
    for (let i = 0; i < 3; i++) {
      const replay = await raw('/session', { cookies: [cookie] });
      expect(replay.body.id).toBeUndefined();
      expect(replay.body.attributes).toEqual({});
      expect(replay.setCookie.join()).toMatch(/Max-Age=0/);
    }
    const write = await raw('/set/again', { method: 'POST', cookies: [cookie], body: 'x' });
    expect(idOf(write.setCookie)).not.toBe(id);
    expect((await raw('/session', { cookies: [cookie] })).body.id).toBeUndefined();
  });

  it('session fixation: a victim who logs in with a planted cookie gets a new id; the attacker’s id sees nothing', async () => {
    const attacker = await raw('/set/bait', { method: 'POST', body: 'planted' });
    const planted = attacker.setCookie[0]?.split(';')[0] ?? '';
    const plantedId = planted.slice(NAME.length + 1).split('.')[0];
    const login = await raw('/login?user=fixated', { method: 'POST', cookies: [planted] });
    const after = idOf(login.setCookie);
    expect(after).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(after).not.toBe(plantedId);
    const spy = await raw('/session', { cookies: [planted] });
    expect(spy.body.id).toBeUndefined();
    expect(spy.body.attributes).toEqual({});
  });

  it('a freshly issued cookie is HttpOnly, SameSite=Lax, host-only, and its response is not cacheable', async () => {
    const res = await fetch(`${node.url}/set/k`, { method: 'POST', body: 'v' });
    const line = res.headers.getSetCookie()[0] ?? '';
    expect(line).toMatch(/; HttpOnly/);
    expect(line).toMatch(/; SameSite=Lax/);
    expect(line).toMatch(/; Path=\//);
    expect(line).not.toMatch(/Domain=/i);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('after all of it, the node is up and the victim’s session is intact', async () => {
    expect(node.child.exitCode).toBeNull();
    const mine = await raw('/session', { cookies: [victim.cookie] });
    expect(mine.body).toMatchObject({ id: victim.id, attributes: { secret: 'the-secret', userId: 'victim' } });
  });
});
