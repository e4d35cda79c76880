import type { GatewayParts } from './parts.js';
import { type Answer, type Caller, contextOf, refusal } from './request-caller.js';
import { askRpcProxy } from './rpc-proxy.js';
import { RpcError } from './rpc-types.js';

/**
 * One `rpc`: the app's in-process handler for `method` when it has one, else the RPC proxy, else
 * `not_found`. A thrown RpcError is the client's error as it is; any other throw is logged and
 * answered `internal` (its text may hold what the client must not see).
 */
export async function callMethod(p: GatewayParts, caller: Caller, method: string, data: unknown): Promise<Answer> {
  const { handlers, proxy } = p.s.requests;
  const handler = Object.hasOwn(handlers, method) ? handlers[method] : undefined;
  const ctx = contextOf(p, caller);
  if (handler) {
    const ms = p.s.requests.limits.handlerTimeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A handler that never settles must not hold an in-flight slot for ever.
    const late = new Promise<Answer>((resolve) => {
      timer = setTimeout(() => resolve(refusal('unavailable', `the method did not answer within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([Promise.resolve(handler(ctx, data)).then((r) => ({ result: r ?? null })), late]);
    } catch (err) {
      if (err instanceof RpcError) return refusal(err.code, err.message);
      p.s.log({ level: 'error', msg: 'rpc handler threw', gateway: p.s.id, method, err: String(err) });
      return refusal('internal', 'the method failed; the gateway logged why');
    } finally {
      clearTimeout(timer);
    }
  }
  if (!proxy) return refusal('not_found', `no method ${JSON.stringify(method)}`);
  const a = await askRpcProxy(proxy, caller.forwarded, {
    method,
    data,
    user: ctx.user,
    session: ctx.session,
    connection: ctx.connection,
    gateway: ctx.gateway,
  });
  if (!('failed' in a)) return a;
  p.metrics.rpcProxyFailures.inc({ reason: a.failed });
  return refusal('unavailable', `the app did not answer (${a.failed}); retry`);
}
