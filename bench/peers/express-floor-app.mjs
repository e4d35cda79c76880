/**
 * The floor under any Redis session layer on Express: the express-shoal peer's routes
 * (bench/peers/express-shoal-app.ts) with the session layer cut down to what no layer can skip.
 * Per request: read the signed session cookie (verified values remembered, as shoal does), then
 * exactly the Redis round trip shoal makes on that route, on a connection opened as shoal's Redis
 * store opens its own (src/core/redis-client.ts openRedis), its writes corked per turn as the store's
 * are (src/core/redis-writes.ts):
 * - GET /session: one HGETALL of the session hash, its liveness checked, its `a:` fields parsed
 *   as JSON into the same body shoal answers;
 * - POST /set/:key: one EVALSHA of shoal's own COMMIT script with the arguments shoal sends.
 * Nothing else: no change tracking, no metrics, no sweeper, no per-call deadline of its own, no
 * header hold (the route awaits the write before answering, which is what the hold guarantees).
 * Its instructions above bare Express are what one round trip through ioredis costs; a session
 * layer's own cost is what it adds on top.
 *
 * The Lua scripts and the bucket hash come from the built package (dist/, `npm run build`), so the
 * keys and the server-side work are shoal's exactly. /login writes a session hash as shoal's
 * CREATE does (no user index: nothing here lists sessions).
 *
 * Env: SHOAL_STORE=redis://…[?timeout=60s], SHOAL_NAMESPACE, SHOAL_SECRETS. Flags: --port, --host.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { openRedis } from '../../dist/core/redis-client.js';
import { writesPerTurn } from '../../dist/core/redis-writes.js';
import { takeTimeout } from '../../dist/stores/index.js';
import { COMMIT, CREATE } from '../../dist/stores/redis-scripts.js';
import { fnv1a } from '../../dist/stores/redis-session.js';
import { expressApp, listenUntilSignal } from './express-base.mjs';
import { peerArgs } from './peer-args.mjs';

const args = peerArgs();
const { node } = args;
// shoal's store reads ?timeout= from the URL (the instruction bench raises it under callgrind); so does this.
const { url, timeoutMs = 2000 } = takeTimeout(process.env.SHOAL_STORE ?? 'redis://127.0.0.1:6379');
const ns = process.env.SHOAL_NAMESPACE ?? 'session';
const secret = Buffer.from(
  (process.env.SHOAL_SECRETS ?? 'floor-peer-development-secret-never-in-production').split(',')[0],
);
const COOKIE = 'shoal.sid';
const BUCKETS = 16;
const GRACE_MS = 3_600_000;
const IDLE_MS = 30 * 60_000;
const ABSOLUTE_MS = 12 * 3_600_000;

// The connection shoal's Redis store opens, through the same function and with the same extra setting,
// so the floor's client cannot drift from the store's.
const client = await openRedis(url, 'The floor peer', timeoutMs, () => {});
const batch = writesPerTurn(client);

const tags = Array.from({ length: BUCKETS }, (_, b) => `shoal:{${ns}:${b}}`);
const hashKey = (id) => `${tags[fnv1a(id) % BUCKETS]}:s:${id}`;
const dueKey = (id) => `${tags[fnv1a(id) % BUCKETS]}:due`;

const mac = (id) => createHmac('sha256', secret).update(id).digest('base64url');
const verified = new Map();
/** The session id of the request's signed cookie, or null. */
function sessionId(header) {
  if (!header) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    const known = verified.get(value);
    if (known !== undefined) return known;
    const dot = value.indexOf('.');
    if (dot < 0) return null;
    const id = value.slice(0, dot);
    const given = Buffer.from(value.slice(dot + 1));
    const expected = Buffer.from(mac(id));
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    verified.set(value, id);
    return id;
  }
  return null;
}

/** EVALSHA, EVAL once when the server does not know the script (as shoal's runScript). */
async function script(s, keys, argv) {
  try {
    batch();
    return await client.evalsha(s.sha, keys.length, keys, argv);
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    batch();
    return client.eval(s.lua, keys.length, keys, argv);
  }
}

const app = expressApp(node);

app.post('/login', async (req, res, next) => {
  const user = String(req.query.user ?? '');
  if (!user) {
    res.status(400).json({ error: 'missing ?user=<name>' });
    return;
  }
  try {
    const id = randomBytes(16).toString('base64url');
    const now = Date.now();
    const end = now + IDLE_MS;
    const fields = ['a:userId', JSON.stringify(user), 'm:created', now, 'm:seen', now, 'm:idle', end];
    fields.push('m:abs', now + ABSOLUTE_MS, 'm:rev', 1, 'm:user', user);
    await script(CREATE, [hashKey(id), dueKey(id)], [id, end, end + GRACE_MS, now - GRACE_MS, ...fields]);
    res.setHeader('Set-Cookie', `${COOKIE}=${id}.${mac(id)}; Path=/; HttpOnly; SameSite=Lax`);
    res.setHeader('Cache-Control', 'no-store');
    res.json({ ok: true, user, node });
  } catch (err) {
    next(err);
  }
});

app.post('/set/:key', async (req, res, next) => {
  const id = sessionId(req.headers.cookie);
  if (!id) {
    res.status(401).json({ error: 'no session' });
    return;
  }
  try {
    const now = Date.now();
    const text = JSON.stringify(typeof req.body === 'string' ? req.body : '');
    // COMMIT's ARGV: id, now, idleDeadline, expectedRev, userMode, userId, graceMs, lifeMode, idleMs,
    // absoluteMs, nDel, nSet, nIncr, fields.
    const argv = [id, now, now + IDLE_MS, '', '', '', GRACE_MS, '', '', '', 0, 1, 0, `a:${req.params.key}`, text];
    const reply = await script(COMMIT, [hashKey(id), dueKey(id)], argv);
    if (reply[0] !== 'ok') {
      res.status(409).json({ error: String(reply[0]) });
      return;
    }
    res.json({ ok: true, node });
  } catch (err) {
    next(err);
  }
});

app.get('/session', async (req, res, next) => {
  const id = sessionId(req.headers.cookie);
  try {
    batch();
    const hash = id ? await client.hgetall(hashKey(id)) : {};
    const now = Date.now();
    const live =
      hash['m:rev'] !== undefined && !hash['m:ended'] && now < Number(hash['m:idle']) && now < Number(hash['m:abs']);
    const attributes = {};
    if (live) for (const f in hash) if (f.startsWith('a:')) attributes[f.slice(2)] = JSON.parse(hash[f]);
    res.json({ id: live ? id : undefined, attributes, node });
  } catch (err) {
    next(err);
  }
});

listenUntilSignal(app, args, 'express floor peer', () => client.quit());
