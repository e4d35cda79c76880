import type { Buckets } from './math.js';

/**
 * What /_shoal/api/state answers: the shapes the dashboard's server writes and its page reads.
 * Types only, no DOM and no Node: both programs compile this file.
 */
export type NodeState = 'starting' | 'ready' | 'draining' | 'dead' | 'not-ready';

/** A node the dashboard watches. The local cluster's supervisor members have this shape. */
export interface DashboardNode {
  name: string;
  role: 'web' | 'gateway';
  host: string;
  port: number;
  /** Known to a supervisor; otherwise the dashboard asks the node's /readyz. */
  state?: NodeState;
  pid?: number | undefined;
  restarts?: number;
}

/** What the dashboard shows of one node, as raw cumulative values (rates are computed by the page). */
export interface NodeMetrics {
  /** shoal_http_requests_total, all methods and statuses (health probes included). */
  requests: number;
  /** shoal_session_conflicts_total: commits that lost a compare-and-swap. */
  conflicts: number;
  /** shoal_store_latency_seconds, all operations merged. */
  storeLatency: Buckets;
  /** shoal_store_calls_total{op="create",outcome="ok"}: sessions this node created (login rotation included). */
  sessionsCreated: number;
  /** shoal_gateway_connections: open sockets. */
  sockets: number;
  /** shoal_gateway_messages_out_total: messages fanned out to clients. */
  messagesOut: number;
}

export interface NodeReport extends Omit<DashboardNode, 'host'> {
  state: NodeState;
  metrics: NodeMetrics | null;
  /** Why the scrape failed, when it did. */
  error?: string;
}

export interface DashboardState {
  at: number;
  canSignal: boolean;
  nodes: NodeReport[];
}

/** The page's settings, written by the server into the page as JSON. */
export interface PageConfig {
  base: string;
  tokenRequired: boolean;
  pollMs: number;
  /** Points kept per chart (one per poll). */
  points: number;
}
