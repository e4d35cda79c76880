import { Counter, Gauge, type Registry } from 'prom-client';
import { perRegistry } from '../core/metrics.js';

/** A gateway's counters and what its /metrics serves. */
export type GatewayMetrics = ReturnType<typeof build> & {
  /** The registry rendered on the gateway's /metrics; null with `metrics: false`. */
  readonly registry: Registry | null;
  readonly contentType: string;
  render(): Promise<string>;
};

/**
 * The gateway metrics in `registry` (see MetricsOption), made once per registry so that gateways
 * counting in one registry share the series; with null (`metrics: false`) counters registered nowhere.
 */
export function gatewayMetrics(registry: Registry | null): GatewayMetrics {
  return registry ? inRegistry(registry) : withRegistry(null);
}

const inRegistry = perRegistry((registry) => withRegistry(registry));

function withRegistry(registry: Registry | null): GatewayMetrics {
  return {
    ...build(registry ? [registry] : []),
    registry,
    contentType: registry?.contentType ?? 'text/plain; version=0.0.4; charset=utf-8',
    render: async () => (registry ? registry.metrics() : ''),
  };
}

function build(r: Registry[]) {
  return {
    connections: new Gauge({
      name: 'shoal_gateway_connections',
      help: 'Open client connections',
      registers: r,
    }),
    messagesIn: new Counter({
      name: 'shoal_gateway_messages_in_total',
      help: 'Messages received from the bus',
      registers: r,
    }),
    messagesOut: new Counter({
      name: 'shoal_gateway_messages_out_total',
      help: 'Messages fanned out to clients',
      registers: r,
    }),
    slowConsumers: new Counter({
      name: 'shoal_gateway_slow_consumer_closes_total',
      help: 'Connections closed because their send queue overflowed (4008)',
      registers: r,
    }),
    rateLimited: new Counter({
      name: 'shoal_gateway_rate_limited_total',
      help: 'Connections closed for sending too fast (4029)',
      registers: r,
    }),
    timeouts: new Counter({
      name: 'shoal_gateway_heartbeat_timeouts_total',
      help: 'Connections closed for not answering the heartbeat',
      registers: r,
    }),
    protocolErrors: new Counter({
      name: 'shoal_gateway_protocol_errors_total',
      help: 'Client frames that were not valid protocol messages',
      registers: r,
    }),
    /**
     * `status` is the HTTP status of a handshake refused before any upgrade (403 origin, 503
     * draining or unavailable), or the close code of one accepted only to be closed at once (4401
     * no session, 4429 over a connection limit), so a page can tell why.
     */
    handshakeRejected: new Counter({
      name: 'shoal_gateway_handshake_rejected_total',
      help: 'Refused handshakes by transport, HTTP status or close code, and reason',
      labelNames: ['transport', 'status', 'reason'],
      registers: r,
    }),
    connectionLimited: new Counter({
      name: 'shoal_gateway_connection_limit_closes_total',
      help: 'Connections closed at once (4429) for going over the per-session or per-user limit of this gateway',
      labelNames: ['transport', 'limit'],
      registers: r,
    }),

    /**
     * Tokens refused, by where (`connect`: the handshake, `refresh`: a fresh token on an open
     * connection, `subscribe`: a subscription token, `open`: a connection or subscription whose
     * token expired unrefreshed) and why (expired, malformed, algorithm, signature, audience,
     * issuer, claims, user, channel, unavailable).
     */
    tokenRefusals: new Counter({
      name: 'shoal_gateway_token_refusals_total',
      help: 'Connection and subscription tokens refused, by stage and reason',
      labelNames: ['stage', 'reason'],
      registers: r,
    }),

    /** The connect proxy gave no usable answer (handshake closed with 4013), by how. */
    connectProxyFailures: new Counter({
      name: 'shoal_gateway_connect_proxy_failures_total',
      help: 'Connect-proxy calls that timed out, could not connect, answered an error status or malformed JSON',
      labelNames: ['reason'],
      registers: r,
    }),

    /** Subscribe-proxy calls with no usable answer (the join was denied), by how. */
    subscribeProxyFailures: new Counter({
      name: 'shoal_gateway_subscribe_proxy_failures_total',
      help: 'Subscribe-proxy calls that timed out, could not connect, answered an error status or malformed JSON',
      labelNames: ['reason'],
      registers: r,
    }),

    /**
     * `rpc`, `pub` and `history` frames answered with an error, by frame type and reply code
     * (too_big, rate_limited, forbidden, not_found, unavailable, internal, bad_request, or the app's own).
     */
    requestErrors: new Counter({
      name: 'shoal_gateway_request_errors_total',
      help: 'Client requests (rpc, pub, history) answered with an error, by type and code',
      labelNames: ['type', 'code'],
      registers: r,
    }),

    /** RPC-proxy calls with no usable answer (replied `unavailable`), by how. */
    rpcProxyFailures: new Counter({
      name: 'shoal_gateway_rpc_proxy_failures_total',
      help: 'RPC-proxy calls that timed out, could not connect, answered an error status or malformed JSON',
      labelNames: ['reason'],
      registers: r,
    }),
  };
}
