import { Counter, Gauge, Registry } from 'prom-client';

/** One registry per gateway, so several gateways in one process (tests) do not collide. */
export class GatewayMetrics {
  readonly registry = new Registry();
  readonly connections = new Gauge({
    name: 'shoal_gateway_connections',
    help: 'Open client connections',
    registers: [this.registry],
  });
  readonly messagesIn = new Counter({
    name: 'shoal_gateway_messages_in_total',
    help: 'Messages received from the bus',
    registers: [this.registry],
  });
  readonly messagesOut = new Counter({
    name: 'shoal_gateway_messages_out_total',
    help: 'Messages fanned out to clients',
    registers: [this.registry],
  });
  readonly slowConsumers = new Counter({
    name: 'shoal_gateway_slow_consumer_closes_total',
    help: 'Connections closed because their send queue overflowed (4008)',
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'shoal_gateway_rate_limited_total',
    help: 'Connections closed for sending too fast (4029)',
    registers: [this.registry],
  });
  readonly timeouts = new Counter({
    name: 'shoal_gateway_heartbeat_timeouts_total',
    help: 'Connections closed for not answering the heartbeat',
    registers: [this.registry],
  });
  readonly protocolErrors = new Counter({
    name: 'shoal_gateway_protocol_errors_total',
    help: 'Client frames that were not valid protocol messages',
    registers: [this.registry],
  });
  /**
   * `status` is the HTTP status of a handshake refused before any upgrade (403 origin, 503
   * draining or unavailable), or the close code of one accepted only to be closed at once (4401
   * no session, 4429 over a connection limit), so a page can tell why.
   */
  readonly handshakeRejected = new Counter({
    name: 'shoal_gateway_handshake_rejected_total',
    help: 'Refused handshakes by transport, HTTP status or close code, and reason',
    labelNames: ['transport', 'status', 'reason'],
    registers: [this.registry],
  });
  readonly connectionLimited = new Counter({
    name: 'shoal_gateway_connection_limit_closes_total',
    help: 'Connections closed at once (4429) for going over the per-session or per-user limit of this gateway',
    labelNames: ['transport', 'limit'],
    registers: [this.registry],
  });

  /**
   * Tokens refused, by where (`connect`: the handshake, `refresh`: a fresh token on an open
   * connection, `subscribe`: a subscription token, `open`: a connection or subscription whose
   * token expired unrefreshed) and why (expired, malformed, algorithm, signature, audience,
   * issuer, claims, user, channel, unavailable).
   */
  readonly tokenRefusals = new Counter({
    name: 'shoal_gateway_token_refusals_total',
    help: 'Connection and subscription tokens refused, by stage and reason',
    labelNames: ['stage', 'reason'],
    registers: [this.registry],
  });

  /** The connect proxy gave no usable answer (handshake closed with 4013), by how. */
  readonly connectProxyFailures = new Counter({
    name: 'shoal_gateway_connect_proxy_failures_total',
    help: 'Connect-proxy calls that timed out, could not connect, answered an error status or malformed JSON',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  /** Subscribe-proxy calls with no usable answer (the join was denied), by how. */
  readonly subscribeProxyFailures = new Counter({
    name: 'shoal_gateway_subscribe_proxy_failures_total',
    help: 'Subscribe-proxy calls that timed out, could not connect, answered an error status or malformed JSON',
    labelNames: ['reason'],
    registers: [this.registry],
  });

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
