import { ConfigError } from '../core/errors.js';
import { createDashboard, type DashboardHandler, type DashboardNode, dashboardNodesFromEnv } from './dashboard.js';

/** Below this a bearer token is guessable enough to matter: the page that asks for it is public. */
export const MIN_DASHBOARD_TOKEN_LENGTH = 16;

/** The ops dashboard as a web node serves it at /_shoal/ (outside `shoal start`, whose balancer serves its own). */
export interface WebDashboardSettings {
  /** SHOAL_DASHBOARD_TOKEN: the API needs `Authorization: Bearer <token>`. */
  token: string;
  /** SHOAL_DASHBOARD_NODES; empty means this node alone. */
  nodes: DashboardNode[];
}

/**
 * The dashboard settings of `shoal web`, or undefined when it is off (no token, or an empty one).
 * Throws ConfigError for a short token or a malformed node list, before the app is loaded.
 */
export function webDashboardSettings(
  token: string | undefined,
  nodes: string | undefined,
): WebDashboardSettings | undefined {
  // A token read from a file (a Kubernetes Secret made with --from-file) often ends in a newline.
  const trimmed = token?.trim() ?? '';
  if (!trimmed) return undefined;
  if (trimmed.length < MIN_DASHBOARD_TOKEN_LENGTH) {
    throw new ConfigError(
      `SHOAL_DASHBOARD_TOKEN is ${trimmed.length} characters long; the ops dashboard needs at least ` +
        `${MIN_DASHBOARD_TOKEN_LENGTH}, because anyone who reaches /_shoal/ may try to guess it. ` +
        'Set a random one (e.g. `openssl rand -base64 24`), or unset it to turn the dashboard off.',
    );
  }
  return { token: trimmed, nodes: dashboardNodesFromEnv(nodes) };
}

/** The handler a web node puts in front of its app. Without a node list it watches itself. */
export function webNodeDashboard(
  settings: WebDashboardSettings,
  self: { name: string; host: string; port: number },
): DashboardHandler {
  const watched: DashboardNode[] = settings.nodes.length
    ? settings.nodes
    : [{ role: 'web', name: self.name, host: reachableHost(self.host), port: self.port }];
  // No `signal`: there is no supervisor here, so the kill buttons stay off.
  return createDashboard({ nodes: () => watched, token: settings.token });
}

/** Where this process can reach its own listener: a wildcard address is not one to connect to. */
function reachableHost(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
