import type { ChannelRegistry } from './channels.js';
import type { Connections } from './connections.js';
import type { GatewayMetrics } from './gateway-metrics.js';
import type { GatewaySettings } from './gateway-options.js';
import type { KeepAlive } from './keep-alive.js';
import type { Presence } from './presence.js';

/** The parts of one gateway, built once by createGateway and handed to the rooms that serve requests. */
export interface GatewayParts {
  readonly s: GatewaySettings;
  readonly metrics: GatewayMetrics;
  readonly presence: Presence;
  readonly registry: ChannelRegistry;
  readonly connections: Connections;
  readonly keepAlive: KeepAlive;
  /** Set once the gateway drains: new handshakes are refused with 503. */
  readonly state: { draining: boolean };
  /** Throws with the reason when the gateway must not receive traffic. */
  ready(): Promise<void>;
}
