import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { BusMessage } from '../bus/contract.js';
import { listen } from '../core/http.js';
import { registryOf } from '../core/metrics.js';
import { sleep } from '../core/timing.js';
import { isWebSocketUpgrade, serveAsPlainRequest } from '../core/upgrade.js';
import { CloseCode } from '../protocol/messages.js';
import { Canary } from './canary.js';
import { ChannelRegistry } from './channels.js';
import { Connections } from './connections.js';
import { applyControl } from './control.js';
import { CONTROL_CHANNEL } from './control-commands.js';
import { type GatewayMetrics, gatewayMetrics } from './gateway-metrics.js';
import { checkGatewayKeys, type GatewayOptions, resolveGatewayOptions } from './gateway-options.js';
import { createHttpRoutes } from './http-routes.js';
import { KeepAlive } from './keep-alive.js';
import { subscribeOwnChannels } from './own-subscriptions.js';
import type { GatewayParts } from './parts.js';
import { Presence } from './presence.js';
import { isPresenceBusChannel } from './presence-wire.js';
import { SESSION_ENDED_EVENT } from './publisher.js';
import { sessionChannel } from './session-channel.js';
import { createWsUpgrade } from './ws-upgrade.js';

export type { AuthorizeContext, GatewayOptions, SessionAttributes } from './gateway-options.js';
export { OPENAPI_FILE, SERVER_API_PATHS } from './openapi.js';

export interface Gateway {
  readonly id: string;
  readonly server: Server;
  readonly metrics: GatewayMetrics;
  /** Throws with the reason when the gateway must not receive traffic. */
  ready(): Promise<void>;
  connections(): number;
  listen(port: number, host?: string): Promise<void>;
  /** Closes every socket with 1012 spread over `windowMs`, then stops. */
  drain(windowMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A realtime gateway: WebSocket and SSE on one port, authenticated by the web
 * session cookie, fed by the bus. Holds no state a client cannot get back by
 * reconnecting to another gateway and resuming from its cursors.
 *
 * This file only wires the rooms: the channel registry (channels.ts), connection
 * lifecycle and heartbeat (connections.ts), handshake and access (handshake.ts,
 * access.ts), resume (resume.ts), frames (ws-upgrade.ts, dispatch.ts), HTTP routes
 * (http-routes.ts), presence and the canary.
 */
export async function createGateway(o: GatewayOptions): Promise<Gateway> {
  checkGatewayKeys(o);
  const metrics = gatewayMetrics(registryOf(o.metrics));
  const s = resolveGatewayOptions(o, `gw-${randomUUID().slice(0, 8)}`, metrics);
  const { id, bus } = s;
  const state = { draining: false };
  const canary = new Canary(bus, id, s.canaryMs);
  const presence = new Presence(
    bus,
    id,
    (channel, users, { joined, left }) => {
      for (const c of registry.members(channel) ?? []) {
        if (c.followsPresence(channel)) c.send({ type: 'presence', channel, users, joined, left });
      }
    },
    s.presence.heartbeatMs,
    s.presence.ttlMs,
  );
  const registry = new ChannelRegistry(bus, presence, metrics);
  presence.localChannels = () => registry.counts();
  presence.localClients = (channel) => registry.clients(channel, s.id);
  const connections = new Connections(s, registry, metrics);
  const keepAlive = new KeepAlive(s.sessions, s.keepSessionAlive, (c, code, reason) =>
    connections.end(c, code, reason),
  );

  let subscriptionProblem = (): string | undefined => 'not subscribed to the bus yet';
  const ready = async (): Promise<void> => {
    if (state.draining) throw new Error('draining');
    const problem = subscriptionProblem();
    if (problem) throw new Error(problem);
    await bus.ping();
    await s.sessions.ping();
    canary.check();
  };
  const parts: GatewayParts = { s, metrics, presence, registry, connections, keepAlive, state, ready };

  bus.onMessage((m: BusMessage) => {
    if (canary.seen(m)) return;
    if (isPresenceBusChannel(m.channel)) return presence.receive(m);
    if (m.channel === CONTROL_CHANNEL) return applyControl(parts, m.data);
    if (m.event === SESSION_ENDED_EVENT) return endSession(m.channel);
    registry.deliver(m);
  });
  /** A session ended (logout, expiry, rotation): its connections here close with 4001. */
  const endSession = (channel: string) => {
    for (const c of [...(registry.members(channel) ?? [])]) {
      if (c.sessionId !== null && sessionChannel(c.sessionId) === channel)
        connections.end(c, CloseCode.SessionEnded, 'session ended');
    }
  };
  // Retried until the bus answers: the gateway listens meanwhile and its /readyz says why it is not ready.
  const own = await subscribeOwnChannels(async () => {
    await presence.start();
    await bus.subscribe(CONTROL_CHANNEL);
    await canary.start();
  }, s.log);
  subscriptionProblem = own.problem;

  const routes = createHttpRoutes(parts);
  const server = createServer((req, res) => void routes(req, res));
  const ws = createWsUpgrade(parts);
  server.on('upgrade', (req, socket, head) =>
    isWebSocketUpgrade(req) ? ws.onUpgrade(req, socket, head) : serveAsPlainRequest(server, req, socket, head),
  );
  connections.startHeartbeat();
  keepAlive.start(() => connections.values());

  const stop = async () => {
    own.stop();
    connections.stopHeartbeat();
    keepAlive.stop();
    canary.stop();
    presence.stop();
    for (const c of connections.list()) connections.end(c, CloseCode.Restart, 'gateway stopping');
    ws.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };

  return {
    id,
    server,
    metrics,
    ready,
    connections: () => connections.size,
    listen: (port, host = '127.0.0.1') => listen(server, port, host),
    async drain(windowMs = 10_000) {
      state.draining = true;
      const open = connections.list();
      const step = open.length ? windowMs / open.length : 0;
      // Spread the closes so the reconnect wave does not hit the other gateways at once.
      for (const c of open) {
        connections.end(c, CloseCode.Restart, 'gateway restarting');
        if (step >= 1) await sleep(step);
      }
      await stop();
    },
    close: stop,
  };
}
