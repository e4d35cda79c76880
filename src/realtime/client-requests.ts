import type { RequestMessage } from '../protocol/requests.js';
import { clientClients, clientHistory, clientPublish } from './channel-requests.js';
import type { Connection } from './connection.js';
import type { GatewayParts } from './parts.js';
import { type Answer, type Caller, RequestBounds, refusal } from './request-caller.js';
import { callMethod } from './rpc-call.js';

export type { Caller };
export { RequestBounds };

const callers = new WeakMap<Connection, Caller>();

/** The caller an open connection is (made once: its bounds live as long as it). */
export function connectionCaller(p: GatewayParts, c: Connection): Caller {
  let caller = callers.get(c);
  if (!caller) {
    caller = {
      id: c.id,
      get identity() {
        return c.identity;
      },
      get forwarded() {
        return c.forwarded;
      },
      joined: (channel) => c.channels.has(channel),
      reply: (message) => c.send(message),
      bounds: new RequestBounds(p.s.requests.limits.perSecond),
    };
    callers.set(c, caller);
  }
  return caller;
}

/**
 * Answers one request with exactly one reply. Over the size, rate or in-flight bound it is refused
 * at once (`too_big`, `rate_limited`) and the caller stays connected; every error reply is counted
 * in `shoal_gateway_request_errors_total{type, code}`.
 */
export async function answerRequest(p: GatewayParts, caller: Caller, m: RequestMessage, bytes: number): Promise<void> {
  const limits = p.s.requests.limits;
  const send = (a: Answer) => {
    if ('error' in a) p.metrics.requestErrors.inc({ type: m.type, code: a.error.code });
    caller.reply({ type: 'reply', id: m.id, ...a });
  };
  if (bytes > limits.maxBytes)
    return send(refusal('too_big', `${m.type} frames may be at most ${limits.maxBytes} bytes`));
  if (caller.bounds.inFlight >= limits.maxInFlight) {
    return send(refusal('rate_limited', `at most ${limits.maxInFlight} requests may await their reply; wait for one`));
  }
  if (!caller.bounds.rate.take()) {
    return send(refusal('rate_limited', `over ${limits.perSecond} requests per second; slow down`));
  }
  caller.bounds.inFlight++;
  try {
    send(await answer(p, caller, m));
  } catch (err) {
    p.s.log({ level: 'warn', msg: `${m.type} failed`, gateway: p.s.id, err: String(err) });
    send(refusal('unavailable', 'the gateway could not reach the bus or the app; retry'));
  } finally {
    caller.bounds.inFlight--;
  }
}

function answer(p: GatewayParts, caller: Caller, m: RequestMessage): Promise<Answer> {
  switch (m.type) {
    case 'rpc':
      return callMethod(p, caller, m.method, m.data);
    case 'pub':
      return clientPublish(p, caller, m);
    case 'history':
      return clientHistory(p, caller, m);
    case 'clients':
      return clientClients(p, caller, m);
  }
}
