import { type LuaScript, luaScript } from '../core/redis-script.js';

/**
 * Lua sources of the Redis store. Every mutation is one script so it is atomic
 * on the server. Cluster rule: every key a script touches shares the session's
 * bucket hash tag; the claim script derives session keys from `ARGV` base + id,
 * which stays in the slot of KEYS[1] because the base carries the same tag.
 *
 * Session hash layout: attributes live in fields `a:<name>`, meta in `m:<name>`,
 * so no attribute name can ever collide with (or overwrite) a meta field.
 */

function script(body: string): LuaScript {
  return luaScript(`${COMMON}\n${body}`);
}

const COMMON = `
local function fmt(n)
  if n == 0 then return '0' end
  if n == math.floor(n) and math.abs(n) < 1e21 then return string.format('%.0f', n) end
  for p = 15, 17 do
    local s = string.format('%.' .. p .. 'g', n)
    if tonumber(s) == n then return (string.gsub(s, 'e([+-])0*(%d)', 'e%1%2')) end
  end
  return string.format('%.17g', n)
end
local function finite(n) return n ~= nil and n == n and n ~= math.huge and n ~= -math.huge end
-- meta of a session that may still be served at now, or nil; extra field names given after now
-- are read in the same HMGET and come back in fields[5], fields[6], …
local function live(h, now, ...)
  local m = redis.call('HMGET', h, 'm:rev', 'm:idle', 'm:abs', 'm:ended', ...)
  if not m[1] or m[4] then return nil end
  local idle, abs = tonumber(m[2]), tonumber(m[3])
  if now >= idle or now >= abs then return nil end
  return { rev = tonumber(m[1]), idle = idle, abs = abs, fields = m }
end
`;

/**
 * KEYS: hash, due · ARGV: id, endAt, expireAt, cutoff, field, value, …
 * Also drops index members scored before cutoff (their data has expired), so the
 * index stays bounded even when no sweeper ever runs.
 */
export const CREATE = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[4])
for i = 5, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
`);

/**
 * KEYS: hash, due · ARGV: id, now, idleDeadline, expectedRev|'', userMode (''|set|clear), userId,
 * graceMs, lifeMode (''|set|clear), idleMs, absoluteMs, nDel, nSet, nIncr, then del fields, set
 * field/value pairs, incr field/amount pairs. Everything is validated before the first write, so a
 * refusal writes nothing. The idle deadline slides by the session's own idle length (m:life) when it
 * has one, else to ARGV[3]; lifeMode sets or removes m:life and moves m:abs to m:created + absoluteMs.
 * Replies {'ok', rev, absoluteDeadline, user ('' unless lifeMode), incr field/value…}.
 */
export const COMMIT = script(`
local h, now = KEYS[1], tonumber(ARGV[2])
local m = live(h, now, 'm:life', 'm:created')
if not m then return {'gone'} end
if ARGV[4] ~= '' and tonumber(ARGV[4]) ~= m.rev then return {'conflict', m.rev} end
local nDel, nSet, nIncr = tonumber(ARGV[11]), tonumber(ARGV[12]), tonumber(ARGV[13])
local dels, sets, incrs = {}, {}, {}
local i = 14
for _ = 1, nDel do dels[ARGV[i]] = true; i = i + 1 end
local setFrom = i
for _ = 1, nSet do sets[ARGV[i]] = ARGV[i + 1]; i = i + 2 end
for _ = 1, nIncr do
  local f, by = ARGV[i], tonumber(ARGV[i + 1])
  local cur = sets[f]
  if cur == nil and not dels[f] then cur = redis.call('HGET', h, f) end
  local v = 0
  if cur then v = tonumber(cur) end
  if not finite(v) or not finite(by) or not finite(v + by) then return {'not-a-number', f} end
  incrs[#incrs + 1] = f
  incrs[#incrs + 1] = fmt(v + by)
  i = i + 2
end
for f in pairs(dels) do redis.call('HDEL', h, f) end
for j = setFrom, setFrom + 2 * nSet - 1, 2 do redis.call('HSET', h, ARGV[j], ARGV[j + 1]) end
for j = 1, #incrs, 2 do redis.call('HSET', h, incrs[j], incrs[j + 1]) end
if ARGV[5] == 'set' then redis.call('HSET', h, 'm:user', ARGV[6])
elseif ARGV[5] == 'clear' then redis.call('HDEL', h, 'm:user') end
local own, abs, user = m.fields[5], m.abs, ''
if ARGV[8] ~= '' then
  abs = tonumber(m.fields[6]) + tonumber(ARGV[10])
  if ARGV[8] == 'set' then
    own = ARGV[9]
    redis.call('HSET', h, 'm:life', own)
  else
    own = false
    redis.call('HDEL', h, 'm:life')
  end
  redis.call('HSET', h, 'm:abs', fmt(abs))
  user = redis.call('HGET', h, 'm:user') or ''
end
local idle = ARGV[3]
if own then idle = fmt(now + tonumber(own)) end
local rev = redis.call('HINCRBY', h, 'm:rev', 1)
redis.call('HSET', h, 'm:seen', ARGV[2], 'm:idle', idle)
local endAt = math.min(tonumber(idle), abs)
redis.call('PEXPIREAT', h, fmt(endAt + tonumber(ARGV[7])))
redis.call('ZADD', KEYS[2], endAt, ARGV[1])
local out = {'ok', rev, fmt(abs), user}
for j = 1, #incrs do out[#out + 1] = incrs[j] end
return out
`);

/**
 * KEYS: hash · ARGV: now, knownRev. load() that skips the attributes when the rev is the caller's:
 * false when not live (same rules as load), {'unchanged', meta fields…} when m:rev = knownRev,
 * {'changed', {field, value, …}} otherwise. Meta order: rev, idle, abs, created, seen, user, client, life.
 */
export const LOAD_IF_CHANGED = script(`
local h = KEYS[1]
local s = live(h, tonumber(ARGV[1]), 'm:created', 'm:seen', 'm:user', 'm:client', 'm:life')
if not s then return false end
if s.rev ~= tonumber(ARGV[2]) then return {'changed', redis.call('HGETALL', h)} end
local m = s.fields
return {'unchanged', m[1], m[2], m[3], m[5], m[6], m[7], m[8], m[9]}
`);

/** KEYS: hash, due · ARGV: id, now, idleDeadline, graceMs. A session with its own idle length (m:life) slides by it. */
export const TOUCH = script(`
local m = live(KEYS[1], tonumber(ARGV[2]), 'm:life')
if not m then return 0 end
local idle = ARGV[3]
if m.fields[5] then idle = fmt(tonumber(ARGV[2]) + tonumber(m.fields[5])) end
redis.call('HSET', KEYS[1], 'm:seen', ARGV[2], 'm:idle', idle)
local endAt = math.min(tonumber(idle), m.abs)
redis.call('PEXPIREAT', KEYS[1], fmt(endAt + tonumber(ARGV[4])))
redis.call('ZADD', KEYS[2], endAt, ARGV[1])
return 1
`);

/** KEYS: hash, due · ARGV: id, now, graceMs. Scores it due now; the data stays until a sweeper acks it. */
export const DESTROY = script(`
local now = tonumber(ARGV[2])
if not live(KEYS[1], now) then return 0 end
redis.call('HSET', KEYS[1], 'm:ended', 'destroyed')
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], fmt(now + tonumber(ARGV[3])))
return 1
`);

/**
 * KEYS: hash, due · ARGV: id, now. Rotation (regenerate): the session moved to a new id, so the
 * old hash and its index member go at once, with no end marker for a sweeper to claim.
 */
export const ROTATE_AWAY = script(`
if not live(KEYS[1], tonumber(ARGV[2])) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`);

/**
 * KEYS: due of one or more buckets · ARGV: now, limit per bucket, leaseMs, graceMs, then each
 * bucket's session key base (same hash tag as its due key), in KEYS order.
 * One bucket per call on Redis Cluster (its keys share one slot); every bucket in one call on a
 * single server, so an idle sweep is one script whatever the bucket count.
 * Invariant kept by every script: a hash expires graceMs after its due score, so
 * members scored before now - grace have no data left and are dropped.
 * Returns { id, reason, attempt, field, value, … } per claimed session.
 */
export const CLAIM = script(`
local now = tonumber(ARGV[1])
local lease, grace = tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for k, due in ipairs(KEYS) do
  local base = ARGV[4 + k]
  redis.call('ZREMRANGEBYSCORE', due, '-inf', '(' .. fmt(now - grace))
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', due, '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])) do
    local h = base .. id
    local m = redis.call('HMGET', h, 'm:idle', 'm:abs', 'm:ended')
    if not m[1] then
      redis.call('ZREM', due, id)
    else
      local idle, abs, reason = tonumber(m[1]), tonumber(m[2]), m[3]
      if not reason and now < idle and now < abs then
        redis.call('ZADD', due, math.min(idle, abs), id)
      else
        if not reason then
          if abs <= idle then reason = 'absolute-timeout' else reason = 'idle-timeout' end
          redis.call('HSET', h, 'm:ended', reason)
        end
        local attempt = redis.call('HINCRBY', h, 'm:attempt', 1)
        redis.call('ZADD', due, fmt(now + lease), id)
        redis.call('PEXPIREAT', h, fmt(now + lease + grace))
        local entry = {id, reason, attempt}
        for _, v in ipairs(redis.call('HGETALL', h)) do entry[#entry + 1] = v end
        out[#out + 1] = entry
      end
    end
  end
end
return out
`);

/** KEYS: hash, due · ARGV: id */
export const ACK = script(`
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`);

/** KEYS: user set · ARGV: id, ttlMs. Only ever lengthens the set's TTL. */
export const USER_ADD = script(`
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`);

/** KEYS: lock, fencing counter · ARGV: owner, leaseMs. The holder may re-acquire (extends its lease). */
export const LOCK = script(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('INCR', KEYS[2])
`);

/** KEYS: lock · ARGV: owner */
export const UNLOCK = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
`);
