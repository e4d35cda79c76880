#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { nodeConfigFromEnv } from '../app/env.js';
import { parseDuration } from '../core/duration.js';
import { ShoalError } from '../core/errors.js';
import { loadApp } from './app-module.js';
import { applyConfigEnv, loadConfigFile } from './config-file.js';
import { doctor } from './doctor.js';
import { runGatewayNode } from './gateway-node.js';
import { startCluster } from './start.js';
import { webDashboardSettings } from './web-dashboard.js';
import { runWebNode } from './web-node.js';

const HELP: Record<string, string> = {
  '': `shoal — run a web app as a horizontally scaled cluster

Usage: shoal <command> [options]

Commands:
  start     run the app as a local cluster: dev balancer + web nodes (+ gateways)
  web       run one web node (what a container runs)
  gateway   run one realtime gateway node (WebSocket + SSE)
  doctor    check the configured store and bus URLs and say what is wrong

Run "shoal <command> --help" for its options. Configuration comes from SHOAL_* environment variables:
  SHOAL_STORE    session store URL (default sqlite:.shoal/shoal.db)
  SHOAL_BUS      message bus URL (default: the store's)
  SHOAL_SECRETS  cookie signing secrets, comma-separated, newest first
  SHOAL_ORIGINS  origins allowed to open realtime connections (gateways)
  SHOAL_DASHBOARD_TOKEN  turns on the ops dashboard at /_shoal/ of web nodes (see shoal web --help)
An optional shoal.config.ts (or .mjs/.js) in the working directory gives defaults:
  export default defineConfig({ app: './app.ts', web: 3, gateways: 2, env: { SHOAL_STORE: 'redis://…' } })
Flags win over SHOAL_* variables, which win over the file.`,
  start: `Usage: shoal start --app <module> [--web N] [--gateways M] [--port 8080]

Runs a local cluster on this machine: a round-robin dev balancer on --port (no
sticky sessions) in front of N web nodes, restarting any that crash.

  --app <module>   the app module (default-exports defineApp({ web }))
  --web <N>        web nodes (default 3)
  --gateways <M>   realtime gateway nodes (default 0 until the app has realtime)
  --port <p>       balancer port (default 8080); nodes use the ports after it`,
  web: `Usage: shoal web --app <module> [--port 3000] [--host 0.0.0.0]

Runs one web node with /healthz, /readyz, /metrics and graceful drain on SIGTERM.
  --drain-timeout <d>  hard limit for the drain (default 30s, env SHOAL_DRAIN_TIMEOUT)
  --drain-delay <d>    wait after readiness turns false before closing (default 0, env SHOAL_DRAIN_DELAY)

Ops dashboard at /_shoal/, off unless SHOAL_DASHBOARD_TOKEN is set:
  SHOAL_DASHBOARD_TOKEN      16+ random characters; the page is public, its data needs
                             "Authorization: Bearer <token>" (the page asks for it)
  --dashboard-nodes <list>   the nodes it shows, role/name=http://host:port, comma-separated
                             (env SHOAL_DASHBOARD_NODES), e.g. web/web-1=http://10.0.0.5:3000;
                             empty: this node alone. No kill buttons outside shoal start.`,
  gateway: `Usage: shoal gateway --app <module> [--port 3100] [--host 0.0.0.0]

Runs one realtime gateway: WebSocket and SSE clients authenticated by the web
session cookie, fed by the bus. Rooms are authorized by the app module's
realtime.authorize(session, channel). SIGTERM closes sockets with 1012 spread
over the drain window, then exits.

  SHOAL_ORIGINS        allowed page origins, comma-separated (required)
  SHOAL_BUS            message bus URL (default: the store's if it is sqlite/redis/postgres,
                       else sqlite:.shoal/shoal.db) — the web nodes must use the same
  SHOAL_PUBLISH_KEY    enables POST /publish with "Authorization: Bearer <key>"
  SHOAL_DRAIN_WINDOW   how long the drain spreads the closes over (default 10s)`,
  doctor: `Usage: shoal doctor

Connects to SHOAL_STORE (and SHOAL_BUS when set) and reports, in words, what works and what does not.`,
};

async function main(argv: string[]): Promise<number> {
  // Options may come before the command too (`shoal --port 3000 web …`), as test harnesses and wrappers put them.
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      app: { type: 'string' },
      web: { type: 'string' },
      gateways: { type: 'string' },
      port: { type: 'string' },
      host: { type: 'string' },
      'drain-timeout': { type: 'string' },
      'drain-delay': { type: 'string' },
      'dashboard-nodes': { type: 'string' },
    },
  });
  const command = positionals[0] ?? '';
  if (values.help || command === 'help' || !command || !(command in HELP) || positionals.length > 1) {
    const known = (command in HELP || command === 'help') && positionals.length <= 1;
    console.log(HELP[command in HELP ? command : '']);
    return known ? 0 : 1;
  }
  const { config } = await loadConfigFile();
  applyConfigEnv(config);
  values.app ??= config.app;
  switch (command) {
    case 'doctor':
      return doctor(process.env);
    case 'start':
      await startCluster({
        app: requireApp(values.app),
        web: Number(values.web ?? config.web ?? 3),
        gateways: Number(values.gateways ?? config.gateways ?? 0),
        port: Number(values.port ?? config.port ?? 8080),
      });
      return 0;
    case 'web': {
      // Checked before the app loads, so a bad token stops the node at once. No flag for the token:
      // a command line is readable by every user of the machine (ps).
      const dashboard = webDashboardSettings(
        process.env.SHOAL_DASHBOARD_TOKEN,
        values['dashboard-nodes'] ?? process.env.SHOAL_DASHBOARD_NODES,
      );
      const node = await runWebNode({
        app: await loadApp(requireApp(values.app)),
        config: nodeConfigFromEnv(process.env, 'web'),
        port: Number(values.port ?? process.env.PORT ?? 3000),
        host: values.host ?? process.env.HOST ?? '127.0.0.1',
        drainTimeoutMs: parseDuration(
          values['drain-timeout'] ?? process.env.SHOAL_DRAIN_TIMEOUT ?? '30s',
          'drain timeout',
        ),
        drainDelayMs: parseDuration(values['drain-delay'] ?? process.env.SHOAL_DRAIN_DELAY ?? '0', 'drain delay'),
        dashboard,
      });
      const stop = () => void node.drain().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      return -1; // keep running
    }
    case 'gateway': {
      const node = await runGatewayNode({
        app: await loadApp(requireApp(values.app)),
        config: nodeConfigFromEnv(process.env, 'gateway'),
        port: Number(values.port ?? process.env.PORT ?? 3100),
        host: values.host ?? process.env.HOST ?? '127.0.0.1',
        drainWindowMs: parseDuration(process.env.SHOAL_DRAIN_WINDOW ?? '10s', 'SHOAL_DRAIN_WINDOW'),
      });
      const stop = () => void node.drain().then(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
      return -1;
    }
    default:
      return 1;
  }
}

function requireApp(app: string | undefined): string {
  if (!app) throw new ShoalError('ERR_SHOAL_USAGE', 'missing --app <module>: the app module to run (see shoal --help)');
  return app;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err instanceof ShoalError ? `shoal: ${err.message}` : err);
    process.exitCode = 1;
  },
);
