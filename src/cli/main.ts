#!/usr/bin/env node
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { AppDefinition } from '../app/define.js';
import { nodeConfigFromEnv, warnMisspeltVariables } from '../app/env.js';
import { ConfigError, ShoalError } from '../core/errors.js';
import {
  durationValue,
  EXIT_USAGE,
  exitCodeFor,
  parseCommandLine,
  portNumber,
  UsageError,
  wholeNumber,
} from './args.js';
import { applyConfigEnv, loadConfigFile } from './config-file.js';
import { ensureTypeScript } from './ts-loader.js';

// Each command's modules are imported when it runs: a usage error or --help answers without loading
// the web tier, the gateway and every backend driver.
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
  start: `Usage: shoal start --app <module> [--web N] [--gateways M] [--port 8080] [--quiet]

Runs a local cluster on this machine: a round-robin dev balancer on --port (no
sticky sessions) in front of N web nodes and M gateways, restarting any that crash.

  --app <module>   the app module (default-exports defineApp({ web, realtime }))
  --web <N>        web nodes (default 3; 0 when the app module has no web())
  --gateways <M>   realtime gateway nodes (default 0; 2 when the app module has no web())
  --port <p>       balancer port (default 8080); nodes use the ports after it
  --host <h>       balancer address (default 127.0.0.1)
  -q, --quiet      print only the cluster's status lines, not the nodes' output

Every line a node prints (the app's console.log and console.error, stack traces,
shoal's JSON logs) is shown behind the node's name, "web-1 | …", on stdout or
stderr as the node wrote it; the names are coloured on a terminal.

With no web nodes (--web 0: the pages come from a backend in another language),
the balancer sends WebSocket upgrades, /sse and the gateways' server API (POST
/publish, …) to the gateways and answers any other request 503, saying why.

A node that cannot start (a bad SHOAL_* value, an app module that does not load)
stops the cluster with its error; a node whose store does not answer stays up,
not ready, until it does; a node that crashes after it was ready is restarted.`,
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
  gateway: `Usage: shoal gateway [--app <module>] [--port 3100] [--host 0.0.0.0]

Runs one realtime gateway: WebSocket and SSE clients authenticated by the web
session cookie, fed by the bus. Rooms are authorized by the app module's
realtime.authorize(session, channel). SIGTERM closes sockets with 1012 spread
over the drain window, then exits. The module needs no web(); without --app the
gateway runs on SHOAL_* settings alone (an app in another language: SHOAL_TOKEN_SECRET,
SHOAL_CONNECT_PROXY_URL, SHOAL_SUBSCRIBE_PROXY_URL, SHOAL_RPC_PROXY_URL; docs/server-api.md).

  SHOAL_ORIGINS        allowed page origins, comma-separated, as the browser sends them
                       (e.g. https://app.example.com, http://127.0.0.1:8080) (required)
  SHOAL_BUS            message bus URL (default: the store's if it is sqlite/redis/postgres,
                       else sqlite:.shoal/shoal.db) — the web nodes must use the same
  SHOAL_PUBLISH_KEY    enables POST /publish with "Authorization: Bearer <key>" (16+ characters,
                       e.g. openssl rand -base64 32)
  SHOAL_DRAIN_WINDOW   how long the drain spreads the closes over (default 10s)
  SHOAL_KEEP_SESSION_ALIVE  open (default: an open connection keeps its session alive),
                       inbound (only frames from the client) or off (only web requests)`,
  doctor: `Usage: shoal doctor [--app <module>]

Checks what a web node or gateway would refuse, before one refuses it: SHOAL_SECRETS,
SHOAL_ORIGINS and the other SHOAL_* settings, that the app module loads, that the store
and the bus answer, and that web nodes and gateways would agree on them. Names each
problem and its fix; exits 1 when there is one.`,
};

/** More processes than any one machine runs usefully; a typo's extra zeros should not fork-bomb it. */
const MAX_NODES = 1000;

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (parsed.kind === 'help') {
    // Asked for: stdout and success. `shoal` alone is a usage mistake: stderr, exit 2.
    (parsed.ok ? console.log : console.error)(HELP[parsed.topic]);
    return parsed.ok ? 0 : EXIT_USAGE;
  }
  const { command, values } = parsed;
  const { config } = await loadConfigFile();
  applyConfigEnv(config);
  const app = values.app ?? config.app;
  switch (command) {
    case 'doctor':
      return (await import('./doctor.js')).doctor(process.env, { app });
    case 'start': {
      // Every value is checked before anything starts: a typo must not become a cluster of 0 nodes.
      let web = values.web === undefined ? config.web : wholeNumber('--web', values.web, 0, MAX_NODES);
      let gateways =
        values.gateways === undefined ? config.gateways : wholeNumber('--gateways', values.gateways, 0, MAX_NODES);
      const port = values.port === undefined ? (config.port ?? 8080) : portNumber('--port', values.port, false);
      let path: string | undefined;
      let gatewaysOnly = false;
      if (web === undefined) {
        // Not said: an app with web() gets 3 web nodes; one without (the gateways of a backend in another
        // language) runs as gateways alone, 2 unless told, rather than 3 web nodes that cannot start.
        path = requireAppFile(app, values.app !== undefined);
        const { readAppShape } = await import('./app-shape.js');
        gatewaysOnly = !(await readAppShape(path)).web;
        web = gatewaysOnly ? 0 : 3;
        gateways ??= gatewaysOnly ? 2 : 0;
      }
      gateways ??= 0;
      if (web + gateways === 0) {
        // Named as the user set it: a flag, shoal.config, or left to the default.
        const said = (name: 'web' | 'gateways') =>
          values[name] !== undefined ? `--${name} 0` : config[name] !== undefined ? `${name}: 0 in shoal.config` : '';
        const given = [said('web'), said('gateways') || 'no --gateways'].filter(Boolean).join(' and ');
        const message = gatewaysOnly
          ? `the app module ${path} has no web(ctx), so shoal start runs gateways only, and ${said('gateways')} leaves none: give --gateways 1 or more, or add web(ctx) to the app module`
          : `${given} start no node: give --web N for web nodes, --gateways M for realtime gateways, or both`;
        const fromFlags = values.web !== undefined || values.gateways !== undefined;
        throw fromFlags ? new UsageError(message) : new ConfigError(message);
      }
      if (port + web + gateways > 65_535) {
        throw new UsageError(
          `--port ${port} leaves no room for ${web + gateways} nodes on the ports after it: pick a port below ${65_535 - web - gateways}`,
        );
      }
      const { startCluster } = await import('./start.js');
      return startCluster({
        app: path ?? requireAppFile(app, values.app !== undefined),
        web,
        gateways,
        port,
        host: values.host,
        quiet: values.quiet === true,
      });
    }
    case 'web': {
      // Checked before the app loads, so a bad token stops the node at once. No flag for the token:
      // a command line is readable by every user of the machine (ps).
      const { webDashboardSettings } = await import('./web-dashboard.js');
      const dashboard = webDashboardSettings(
        process.env.SHOAL_DASHBOARD_TOKEN,
        values['dashboard-nodes'] ?? process.env.SHOAL_DASHBOARD_NODES,
      );
      const port = nodePort(values.port, 3000);
      const drainTimeoutMs = durationSetting(values['drain-timeout'], '--drain-timeout', 'SHOAL_DRAIN_TIMEOUT', '30s');
      const drainDelayMs = durationSetting(values['drain-delay'], '--drain-delay', 'SHOAL_DRAIN_DELAY', '0');
      const { runWebNode } = await import('./web-node.js');
      const node = await runWebNode({
        ...(await nodeBasics('web', app, port, values.host)),
        drainTimeoutMs,
        drainDelayMs,
        dashboard,
      });
      drainOnSignal(node);
      return -1; // keep running
    }
    case 'gateway': {
      const port = nodePort(values.port, 3100);
      const drainWindowMs = durationSetting(undefined, '', 'SHOAL_DRAIN_WINDOW', '10s');
      const { runGatewayNode } = await import('./gateway-node.js');
      const node = await runGatewayNode({
        ...(await nodeBasics('gateway', app, port, values.host)),
        drainWindowMs,
      });
      drainOnSignal(node);
      return -1;
    }
  }
}

/** What web and gateway nodes both start from: the app module, the settings in the environment, where to listen. */
async function nodeBasics(role: 'web' | 'gateway', app: string | undefined, port: number, host: string | undefined) {
  // A misspelt variable is ignored by everything below: say so before anything else can fail.
  warnMisspeltVariables(process.env);
  // The settings first: a bad SHOAL_* value is reported before the app module is loaded.
  const config = nodeConfigFromEnv(process.env, role);
  return {
    app: await nodeApp(role, app),
    config,
    port,
    host: host ?? process.env.HOST ?? '127.0.0.1',
  };
}

/**
 * SIGTERM or SIGINT drains the node, then the process exits. So does the loss of the `shoal start`
 * that runs it (SHOAL_SUPERVISOR_PID, its parent): killed with SIGKILL, it could not stop its nodes,
 * which would keep their ports and serve on with no balancer in front.
 */
function drainOnSignal(node: { drain(): Promise<unknown> }): void {
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void node.drain().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  if (process.env.SHOAL_SUPERVISOR_PID === String(process.ppid)) {
    void import('./parent-watch.js').then(({ watchParent }) =>
      watchParent((parent) => {
        console.error(`shoal: shoal start (pid ${parent}) is gone: draining`);
        stop();
      }),
    );
  }
}

/**
 * The definition a node runs. A web node needs a module with web(ctx); a gateway runs a module
 * without one, or none at all: its settings (origins, tokens, the connect, subscribe and RPC
 * proxies) all come from SHOAL_* variables too, which is how an app in another language runs it.
 */
async function nodeApp(role: 'web' | 'gateway', app: string | undefined): Promise<AppDefinition> {
  if (role === 'gateway' && !app) {
    console.error(
      'shoal: no app module (--app): this gateway runs on its SHOAL_* settings alone (docs/server-api.md#gateways-without-a-node-app)',
    );
    return { realtime: {} };
  }
  const path = requireApp(app);
  const loaded = await loadAppModule(path);
  return role === 'web' ? (await import('./app-module.js')).requireWeb(loaded, path) : loaded;
}

/** The app module, through tsx when it is TypeScript (see ts-loader.ts). */
async function loadAppModule(path: string) {
  await ensureTypeScript(path);
  return (await import('./app-module.js')).loadApp(path);
}

function requireApp(app: string | undefined): string {
  if (!app) throw new UsageError('missing --app <module>: the app module to run, e.g. --app ./shoal.app.js');
  return app;
}

/** `shoal start` checks the app file itself: its nodes would only fail one by one. */
function requireAppFile(app: string | undefined, fromFlag: boolean): string {
  const path = requireApp(app);
  if (existsSync(resolve(path))) return path;
  const message = `the app module ${path} does not exist (looked in ${process.cwd()}): check the path`;
  throw fromFlag ? new UsageError(`--app: ${message}`) : new ConfigError(`shoal.config app: ${message}`);
}

/** --port, else PORT, else the role's default; 0 means any free port. */
function nodePort(flag: string | undefined, fallback: number): number {
  if (flag !== undefined) return portNumber('--port', flag, true);
  const env = process.env.PORT;
  return env ? portNumber('PORT', env, true) : fallback;
}

function durationSetting(flag: string | undefined, flagName: string, envName: string, fallback: string): number {
  if (flag !== undefined) return durationValue(flagName, flag);
  const env = process.env[envName];
  return env ? durationValue(envName, env) : durationValue(envName, fallback);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    // What the user can fix is one line; anything else keeps its stack.
    console.error(err instanceof ShoalError ? `shoal: ${err.message}` : err);
    process.exitCode = exitCodeFor(err);
  },
);
