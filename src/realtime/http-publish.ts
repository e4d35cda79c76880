import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus, BusMessage } from '../bus/contract.js';
import { nearestName } from '../core/did-you-mean.js';
import { hasBearer, sendJson } from '../core/http.js';
import { CHANNEL_RULE, INTERNAL_EVENT_PREFIX, isInternalChannel, isValidChannel } from '../protocol/channels.js';
import { BadCallError, broadcast } from './server-calls.js';
import { sessionChannel } from './session-channel.js';

const MAX_BODY = 256 * 1024;

/**
 * The JSON body of a server API call (`POST /publish`, `/disconnect`, …) with "Authorization:
 * Bearer <key>", or undefined once the request has been answered with why not.
 */
export async function readServerCall(
  req: IncomingMessage,
  res: ServerResponse,
  key: string | undefined,
  shape: string,
  fields: readonly string[],
): Promise<Record<string, unknown> | undefined> {
  if (!key) {
    sendJson(res, 404, { error: 'the HTTP server API is disabled: set SHOAL_PUBLISH_KEY on the gateway' });
    return;
  }
  if (!hasBearer(req, key)) {
    sendJson(res, 401, { error: 'missing or wrong bearer key' });
    return;
  }
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      sendJson(res, 413, { error: `body over ${MAX_BODY} bytes` });
      return;
    }
    chunks.push(chunk as Buffer);
  }
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {}
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    sendJson(res, 400, { error: `body must be a JSON object: ${shape}` });
    return;
  }
  const unknown = unknownField(body as Record<string, unknown>, fields);
  if (unknown !== undefined) {
    sendJson(res, 400, { error: unknown });
    return;
  }
  return body as Record<string, unknown>;
}

/**
 * Why a body is refused for a field the call does not read, or undefined: a misspelt "data" or
 * "limit" would otherwise be dropped without a word, publishing null or reading the default.
 */
function unknownField(body: Record<string, unknown>, fields: readonly string[]): string | undefined {
  for (const key of Object.keys(body)) {
    if (fields.includes(key)) continue;
    const near = nearestName(key, fields);
    return `unknown field "${key}"; ${near ? `did you mean "${near}"?` : `the fields are ${fields.join(', ')}`}`;
  }
  return undefined;
}

/**
 * POST /publish {channel | session, event, data} or {channels: [...], event, data} with "Authorization:
 * Bearer <key>": for producers that are not Node (a Python worker, a cron job in Go…). `data` is
 * optional and published as null when left out, as the Node publisher does with undefined: an
 * event may be a signal with no payload (docs/server-api.md and its OpenAPI document say so).
 */
export async function handlePublish(
  req: IncomingMessage,
  res: ServerResponse,
  bus: Bus,
  key: string | undefined,
): Promise<void> {
  const reply = (status: number, body: unknown) => sendJson(res, status, body);
  const body = await readServerCall(
    req,
    res,
    key,
    '{"channel": "..." or "channels": [...] or "session": "...", "event": "...", "data": …}',
    ['channel', 'channels', 'session', 'event', 'data'],
  );
  if (!body) return;
  const targets = ['channel', 'channels', 'session'].filter((name) => body[name] !== undefined);
  if (targets.length > 1) {
    return reply(400, { error: `give one of "channel", "channels" or "session", not ${targets.join(' and ')}` });
  }
  if (body.channels !== undefined) {
    let sent: BusMessage[];
    try {
      sent = await broadcast(bus, body.channels, body.event, body.data);
    } catch (err) {
      if (err instanceof BadCallError) return reply(400, { error: err.message });
      throw err;
    }
    return reply(202, { publications: sent.map((m) => ({ channel: m.channel, epoch: m.epoch, offset: m.offset })) });
  }
  if (body.session !== undefined && (typeof body.session !== 'string' || !body.session)) {
    return reply(400, { error: 'session must be a non-empty string: the raw session id' });
  }
  // A session's channel is named after its id's hash (session-channel.ts): a producer in another
  // language gives the id as it knows it, as for /disconnect, rather than computing the name.
  const channel = typeof body.session === 'string' ? sessionChannel(body.session) : body.channel;
  if (!isValidChannel(channel)) return reply(400, { error: `channel must be ${CHANNEL_RULE}` });
  if (isInternalChannel(channel)) {
    return reply(403, { error: `channel "${channel}" is internal to shoal: publish to your own channels` });
  }
  if (typeof body.event !== 'string' || !body.event || body.event.startsWith(INTERNAL_EVENT_PREFIX)) {
    return reply(400, { error: `event must be a non-empty string not starting with "${INTERNAL_EVENT_PREFIX}"` });
  }
  const m = await bus.publish(channel, { event: body.event, data: JSON.stringify(body.data ?? null) });
  reply(202, { channel: m.channel, epoch: m.epoch, offset: m.offset });
}
