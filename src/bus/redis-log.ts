import { luaScript as script } from '../core/redis-script.js';
import type { BusMessage } from './contract.js';

/**
 * A channel's log on Redis: a counter, a stream (history) and an epoch key under one hash tag,
 * written by one script, so the offset, the append and the live publish are atomic.
 */

// A missing or lost log (never used, expired, FLUSHALL, evicted) starts over under a new epoch.
// The epoch also names the server's replication history (master_replid): replication is
// asynchronous, so a replica promoted after a failover may lack the old master's last entries
// and would hand out their offsets again, to different messages. A new replication id turns
// that into a new epoch, which resuming clients are told about (recovered: false) instead of
// skipping the reused offsets as already seen. INFO refused (an ACL): the stored epoch alone.
const ENSURE = `
local epoch = redis.call('GET', KEYS[3])
if not epoch or redis.call('EXISTS', KEYS[1]) == 0 then
  epoch = ARGV[1]
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[3], epoch, 'PX', ARGV[2])
  redis.call('SET', KEYS[1], 0, 'PX', ARGV[2])
end
local info = redis.pcall('INFO', 'replication')
if type(info) == 'string' then
  local replid = string.match(info, 'master_replid:(%x+)')
  if replid then epoch = epoch .. '.' .. string.sub(replid, 1, 12) end
end
`;

/** KEYS seq, log, epoch · ARGV newEpoch, ttlMs, maxlen, publishedAt, event, data, liveChannel, publishCmd, liveBody. */
export const PUBLISH = script(`${ENSURE}
local offset = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], offset .. '-0', 't', ARGV[4], 'e', ARGV[5], 'd', ARGV[6])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
redis.call(ARGV[8], ARGV[7], epoch .. '|' .. offset .. '|' .. ARGV[9])
return {epoch, offset}`);

/** KEYS seq, log, epoch · ARGV newEpoch, ttlMs, after, limit → {epoch, last, entries}. One snapshot. */
export const READ = script(`${ENSURE}
local last = tonumber(redis.call('GET', KEYS[1]))
local entries = {}
if tonumber(ARGV[4]) > 0 and tonumber(ARGV[3]) < last then
  entries = redis.call('XRANGE', KEYS[2], (ARGV[3] + 1) .. '-0', '+', 'COUNT', ARGV[4])
end
return {epoch, last, entries}`);

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
