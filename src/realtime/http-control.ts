import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus } from '../bus/contract.js';
import { sendJson } from '../core/http.js';
import {
  type ConnectionTarget,
  type ControlCommand,
  disconnectCommand,
  reauthorizeCommand,
  sendCommand,
  unsubscribeCommand,
} from './control-commands.js';
import { readServerCall } from './http-publish.js';

/** The server API's control calls, beside `POST /publish` and with its bearer key. */
const SHAPES = {
  '/disconnect': '{"user": "..."} or {"session": "..."}, optional "code" and "reason"',
  '/unsubscribe': '{"user": "..."} or {"session": "..."}, and "channel"',
  '/reauthorize': '{"channel": "..."}',
} as const;

export type ControlPath = keyof typeof SHAPES;

export function isControlPath(path: string): path is ControlPath {
  return Object.hasOwn(SHAPES, path);
}

/**
 * POST /disconnect, /unsubscribe, /reauthorize: what `publisher.disconnect|unsubscribe|reauthorize`
 * do, for apps that are not Node. 202 once the command is on the bus; 400 says what was wrong.
 */
export async function handleControl(
  path: ControlPath,
  req: IncomingMessage,
  res: ServerResponse,
  bus: Bus,
  key: string | undefined,
): Promise<void> {
  const body = await readServerCall(req, res, key, SHAPES[path]);
  if (!body) return;
  let command: ControlCommand;
  try {
    command = commandOf(path, body);
  } catch (err) {
    return sendJson(res, 400, { error: err instanceof Error ? err.message : String(err) });
  }
  await sendCommand(bus, command);
  sendJson(res, 202, { accepted: command.op });
}

function commandOf(path: ControlPath, body: Record<string, unknown>): ControlCommand {
  const target = (): ConnectionTarget =>
    body.user !== undefined ? { user: body.user as string } : { session: body.session as string };
  switch (path) {
    case '/disconnect':
      return disconnectCommand(target(), {
        ...(body.code !== undefined ? { code: body.code as number } : {}),
        ...(body.reason !== undefined ? { reason: body.reason as string } : {}),
      });
    case '/unsubscribe':
      return unsubscribeCommand(target(), body.channel as string);
    case '/reauthorize':
      return reauthorizeCommand(body.channel as string);
  }
}
