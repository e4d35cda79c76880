import {
  type ConnectionTarget,
  type ControlCommand,
  disconnectCommand,
  reauthorizeCommand,
  sendCommand,
  unsubscribeCommand,
} from './control-commands.js';
import { type ServerCall, ServerCallTable } from './server-call-table.js';
import { BadCallError } from './server-calls.js';

type ControlPath = '/disconnect' | '/unsubscribe' | '/reauthorize';

/** A control call: 202 once the command `build` makes of the body is on the bus. */
function control(
  shape: string,
  fields: readonly string[],
  build: (body: Record<string, unknown>) => ControlCommand,
): ServerCall {
  return {
    shape,
    fields,
    status: 202,
    answer: async (bus, body) => {
      let command: ControlCommand;
      try {
        command = build(body);
      } catch (err) {
        // The command builders throw what publisher.disconnect|… would: here the caller's mistake.
        throw new BadCallError(err instanceof Error ? err.message : String(err));
      }
      await sendCommand(bus, command);
      return { accepted: command.op };
    },
  };
}

const TARGET = ['user', 'session'];

// As given: the command builder checks the shape (one of the two, a non-empty string).
const targetOf = (body: Record<string, unknown>): ConnectionTarget =>
  ({ user: body.user, session: body.session }) as ConnectionTarget;

/**
 * POST /disconnect, /unsubscribe, /reauthorize, beside `POST /publish` and with its bearer key: what
 * `publisher.disconnect|unsubscribe|reauthorize` do, for apps that are not Node.
 */
export const CONTROLS = new ServerCallTable<ControlPath>({
  '/disconnect': control(
    '{"user": "..."} or {"session": "..."}, optional "code" and "reason"',
    TARGET.concat('code', 'reason'),
    (b) =>
      disconnectCommand(targetOf(b), {
        ...(b.code !== undefined ? { code: b.code as number } : {}),
        ...(b.reason !== undefined ? { reason: b.reason as string } : {}),
      }),
  ),
  '/unsubscribe': control('{"user": "..."} or {"session": "..."}, and "channel"', TARGET.concat('channel'), (b) =>
    unsubscribeCommand(targetOf(b), b.channel as string),
  ),
  '/reauthorize': control('{"channel": "..."}', ['channel'], (b) => reauthorizeCommand(b.channel as string)),
});
