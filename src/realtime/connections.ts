import { hashId } from '../core/ids.js';
import { CloseCode } from '../protocol/messages.js';
import { ownChannels } from './access.js';
import type { ChannelRegistry } from './channels.js';
import { Connection, type Transport } from './connection.js';
import { withConnectionInfo } from './connection-info.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { GatewaySettings } from './gateway-options.js';
import type { Identity } from './identity.js';
import { sessionChannel } from './session-channel.js';
import { TokenExpiry } from './token-expiry.js';

/**
 * The open connections of one gateway: opened under the per-session and per-user limits,
 * ended exactly once whatever closes them, and checked by a heartbeat.
 */
export class Connections {
  readonly #all = new Set<Connection>();
  /** Connect-proxy connections by the session channel of the app's session id their proxy answer named. */
  readonly #byAppSession = new Map<string, Set<Connection>>();
  #seq = 0;
  #heartbeat: NodeJS.Timeout | undefined;
  /** Token connections close with 4411 when their token expires unrefreshed. */
  readonly expiry = new TokenExpiry((c) => {
    this.metrics.tokenRefusals.inc({ stage: 'open', reason: 'expired' });
    this.end(c, CloseCode.TokenExpired, 'token expired');
  });

  constructor(
    readonly s: GatewaySettings,
    readonly registry: ChannelRegistry,
    readonly metrics: GatewayMetrics,
  ) {}

  get size(): number {
    return this.#all.size;
  }

  /** The live set, for passes that do not end connections while iterating. */
  values(): IterableIterator<Connection> {
    return this.#all.values();
  }

  /** The connections whose connect-proxy answer named the session this channel (`session:<hash>`) stands for. */
  ofAppSession(channel: string): Connection[] {
    return [...(this.#byAppSession.get(channel) ?? [])];
  }

  /** A copy: ending connections while iterating it is safe. */
  list(): Connection[] {
    return [...this.#all];
  }

  /**
   * The connection, its hello held until release() (once its channels' start positions are read:
   * resume.ts), or null when it went over a connection limit (then closed with 4429).
   */
  open(proved: Identity, transport: Transport): Connection | null {
    const { sessionId, userId } = proved;
    // Checked and counted with no await in between, so concurrent handshakes cannot all slip under the limit.
    const over = this.s.limits.exceeded(sessionId, userId);
    if (over) {
      this.metrics.connectionLimited.inc({ transport: transport.kind, limit: over });
      this.metrics.handshakeRejected.inc({
        transport: transport.kind,
        status: String(CloseCode.TooManyConnections),
        reason: `${over}-limit`,
      });
      transport.close(CloseCode.TooManyConnections, `too many connections for this ${over} on this gateway`);
      return null;
    }
    const who = withConnectionInfo(proved, this.s.connectionInfo, this.s.log);
    // A counter, not a UUID: randomUUID() returns a rope of ~13 string pieces, ~400 bytes kept per connection.
    const c = new Connection(String(++this.#seq), who, transport, this.s.bus, this.s.maxBufferedBytes, (slow) => {
      this.metrics.slowConsumers.inc();
      this.end(slow, CloseCode.SlowConsumer, 'send queue overflow');
    });
    this.#all.add(c);
    if (who.appSession !== undefined) {
      const channel = sessionChannel(who.appSession);
      const same = this.#byAppSession.get(channel);
      if (same) same.add(c);
      else this.#byAppSession.set(channel, new Set([c]));
    }
    this.s.limits.add(sessionId, userId);
    this.metrics.connections.set(this.#all.size);
    this.expiry.schedule(c);
    c.holdBehind({
      type: 'hello',
      gateway: this.s.id,
      user: userId,
      session: sessionId === null ? null : hashId(sessionId),
      channels: ownChannels(who),
      ...(who.expiresAt !== null ? { expires: Math.floor(who.expiresAt / 1000) } : {}),
    });
    return c;
  }

  /** Every close path ends here; the first call does the cleanup, later ones nothing. */
  end(c: Connection, code: number, reason: string): void {
    if (!c.markClosed()) return;
    this.registry.leaveAll(c);
    this.#all.delete(c);
    if (c.identity.appSession !== undefined) {
      const channel = sessionChannel(c.identity.appSession);
      const same = this.#byAppSession.get(channel);
      same?.delete(c);
      if (same?.size === 0) this.#byAppSession.delete(channel);
    }
    this.expiry.cancel(c);
    // Exactly once per connection (markClosed guards it), so the count cannot leak.
    this.s.limits.remove(c.sessionId, c.userId);
    this.metrics.connections.set(this.#all.size);
    c.transport.close(code, reason);
  }

  /** Heartbeat: a WebSocket client that did not answer the previous ping is gone (blackholed or dead). */
  startHeartbeat(): void {
    this.#heartbeat = setInterval(() => {
      for (const c of this.#all) {
        if (c.transport.kind !== 'ws' || c.beat()) continue;
        this.metrics.timeouts.inc();
        this.end(c, CloseCode.Timeout, 'heartbeat timeout');
      }
    }, this.s.heartbeatMs);
    this.#heartbeat.unref();
  }

  stopHeartbeat(): void {
    clearInterval(this.#heartbeat);
  }
}
