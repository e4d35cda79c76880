import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus } from '../bus/contract.js';
import { hasBearer, sendJson } from '../core/http.js';
import { CHANNEL_RULE, INTERNAL_EVENT_PREFIX, isInternalChannel, isValidChannel } from '../protocol/channels.js';

const MAX_BODY = 256 * 1024;

/**
 * POST /publish {channel, event, data} with "Authorization: Bearer <key>":
 * for producers that are not Node (a Python worker, a cron job in Go…).
 */
export async function handlePublish(
  req: IncomingMessage,
  res: ServerResponse,
  bus: Bus,
  key: string | undefined,
): Promise<void> {
  const reply = (status: number, body: unknown) => sendJson(res, status, body);
  if (!key) return reply(404, { error: 'publishing over HTTP is disabled: set SHOAL_PUBLISH_KEY on the gateway' });
  if (!hasBearer(req, key)) return reply(401, { error: 'missing or wrong bearer key' });
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return reply(413, { error: `body over ${MAX_BODY} bytes` });
    chunks.push(chunk as Buffer);
  }
  let body: { channel?: unknown; event?: unknown; data?: unknown };
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return reply(400, { error: 'body must be JSON: {"channel": "...", "event": "...", "data": …}' });
  }
  if (!isValidChannel(body.channel)) return reply(400, { error: `channel must be ${CHANNEL_RULE}` });
  if (isInternalChannel(body.channel)) {
    return reply(403, { error: `channel "${body.channel}" is internal to shoal: publish to your own channels` });
  }
  if (typeof body.event !== 'string' || !body.event || body.event.startsWith(INTERNAL_EVENT_PREFIX)) {
    return reply(400, { error: `event must be a non-empty string not starting with "${INTERNAL_EVENT_PREFIX}"` });
  }
  const m = await bus.publish(body.channel, { event: body.event, data: JSON.stringify(body.data ?? null) });
  reply(202, { channel: m.channel, epoch: m.epoch, offset: m.offset });
}
