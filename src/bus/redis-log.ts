import { luaScript as script } from '../core/redis-script.js';
import type { BusMessage } from './contract.js';

/**
 * A channel's log on Redis: a counter, a stream (history), an epoch key and a lineage list under
 * one hash tag, written by one script, so the offset, the append and the live publish are atomic.
 */

// A missing or lost log (never used, expired, FLUSHALL, evicted) starts over under a new epoch.
// The epoch also names the server's replication history (master_replid): replication is
// asynchronous, so a replica promoted after a failover may lack the old master's last entries
// and hand out their offsets again, to different messages. A new replication id is therefore a
// new epoch. The lineage list (KEYS[4], "replid:offset", oldest first) records, the first time a
// script runs under each replication id, the newest offset that server had then: what it kept of
// the log before it. A reader still on an earlier epoch continues from there (READ below) instead
// of replaying what it already has or skipping reissued offsets.
// INFO refused (an ACL): the stored epoch alone, no lineage.
const ENSURE = `
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2], KEYS[4])
  redis.call('SET', KEYS[3], epoch, 'PX', ARGV[2])
  redis.call('SET', KEYS[1], 0, 'PX', ARGV[2])
end
local base = epoch
local info = redis.pcall('INFO', 'replication')
if type(info) == 'string' then
  local replid = string.match(info, 'master_replid:(%x+)')
  if replid then
    replid = string.sub(replid, 1, 12)
    epoch = epoch .. '.' .. replid
    local newest = redis.call('LINDEX', KEYS[4], -1)
    if not newest or string.sub(newest, 1, 12) ~= replid then
      redis.call('RPUSH', KEYS[4], replid .. ':' .. redis.call('GET', KEYS[1]))
      redis.call('LTRIM', KEYS[4], -16, -1)
      redis.call('PEXPIRE', KEYS[4], ARGV[2])
    end
  end
end
`;

/** KEYS seq, log, epoch, lineage · ARGV newEpoch, ttlMs, maxlen, publishedAt, event, data, liveChannel, publishCmd, liveBody. */
export const PUBLISH = script(`${ENSURE}
local offset = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], offset .. '-0', 't', ARGV[4], 'e', ARGV[5], 'd', ARGV[6])
for i = 1, 4 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
redis.call(ARGV[8], ARGV[7], epoch .. '|' .. offset .. '|' .. ARGV[9])
return {epoch, offset}`);

/**
 * KEYS seq, log, epoch, lineage · ARGV newEpoch, ttlMs, after, limit, askedEpoch ('' for none)
 * → {epoch, last, entries, from}. One snapshot. \`from\` is -1, or, when askedEpoch is an earlier
 * replication id of this log, the offset the entries follow: \`after\`, lowered to what every
 * later replication id kept of it (offsets past that were reissued to new messages).
 */
export const READ = script(`${ENSURE}
local last = tonumber(redis.call('GET', KEYS[1]))
local after = tonumber(ARGV[3])
local from = -1
if ARGV[5] ~= '' and ARGV[5] ~= epoch and string.sub(ARGV[5], 1, #base + 1) == base .. '.' then
  local asked = string.sub(ARGV[5], #base + 2)
  local seen = false
  for _, link in ipairs(redis.call('LRANGE', KEYS[4], 0, -1)) do
    local replid, kept = string.match(link, '^(%x+):(%d+)$')
    if seen then
      from = math.min(from, tonumber(kept))
    elseif replid == asked then
      seen = true
      from = after
    end
  end
  if seen then after = from end
end
local entries = {}
if tonumber(ARGV[4]) > 0 and after < last then
  entries = redis.call('XRANGE', KEYS[2], (after + 1) .. '-0', '+', 'COUNT', ARGV[4])
end
return {epoch, last, entries, from}`);

export type StreamEntry = [id: string, fields: string[]];

export function toMessage(channel: string, epoch: string, [id, fields]: StreamEntry): BusMessage {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
  return {
    channel,
    epoch,
    offset: Number.parseInt(id, 10),
    event: f.e ?? '',
    data: f.d ?? '',
    publishedAt: Number(f.t),
  };
}

/**
 * A live message; `epochs` keeps one string per channel's epoch, so every message of an
 * epoch carries the same string object and the per-socket epoch checks of a fan-out
 * compare pointers, not 36 characters each.
 */
export function fromLive(channel: string, body: string, epochs: Map<string, string>): BusMessage {
  const first = body.indexOf('|');
  const second = body.indexOf('|', first + 1);
  const [event, data, publishedAt] = JSON.parse(body.slice(second + 1)) as [string, string, number];
  let epoch = epochs.get(channel);
  if (epoch === undefined || epoch.length !== first || !body.startsWith(epoch)) {
    epoch = body.slice(0, first);
    epochs.set(channel, epoch);
  }
  return {
    channel,
    epoch,
    offset: Number(body.slice(first + 1, second)),
    event,
    data,
    publishedAt,
  };
}
