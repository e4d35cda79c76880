import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { warnMisspeltVariables } from '../app/env.js';
import { backendOf } from '../core/backend-url.js';
import { ConfigError } from '../core/errors.js';
import { listen } from '../core/http.js';
import { redact } from '../core/url.js';
import { SERVER_API_PATHS } from '../realtime/openapi.js';
import { busUrlFromEnv } from '../realtime/realtime.js';
import { DEFAULT_STORE_URL } from '../stores/index.js';
import { EXIT_CONFIG } from './args.js';
import { createBalancer } from './balancer.js';
import { createDashboard, mountDashboard } from './dashboard.js';
import { nodeOutputWriter } from './node-output.js';
import { watchParent } from './parent-watch.js';
import { type ChildSpec, READINESS_POLL_MS, type StartFailure, Supervisor } from './supervisor.js';

/** Twice the supervisor's readiness poll: the dev balancer stops picking a draining node by then. */
const DEV_DRAIN_DELAY = `${2 * READINESS_POLL_MS}ms`;

export interface StartOptions {
  app: string;
  web: number;
  gateways: number;
  port: number;
  host?: string;
  /** Print only the supervisor's status lines, not what the nodes write. */
  quiet?: boolean;
}

const DEV_SECRET_FILE = '.shoal/dev-secret';

/**
 * `shoal start`: the whole cluster on one machine. One balancer on --port,
 * N web nodes (none for an app whose pages another server answers) then M gateways on the following ports, all on the same store and bus, so a laptop sees
 * what production sees: any request may land on any node. Every line a node writes is printed behind
 * its name (`web-1 | …`), on stdout or stderr as the node wrote it, unless `quiet`.
 * Resolves with the exit code once the cluster has stopped: 0 after SIGINT/SIGTERM, else that of
 * a node that could not start (78 for a configuration error), after stopping the others.
 */
export async function startCluster(o: StartOptions): Promise<number> {
  // Said here too, where --quiet keeps it: a misspelt SHOAL_STORE is what leaves the cluster on SQLite.
  warnMisspeltVariables(process.env);
  const store = process.env.SHOAL_STORE ?? DEFAULT_STORE_URL;
  if (backendOf(store) === 'memory' && o.web + o.gateways > 1) {
    // Each process would keep its own sessions: the cluster would hand out sessions no other node knows.
    throw new ConfigError(
      `SHOAL_STORE=${store} keeps sessions inside one process, and this cluster has ${o.web + o.gateways} nodes: leave SHOAL_STORE unset (a SQLite file all nodes share) or point it at Redis/PostgreSQL`,
    );
  }
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SHOAL_STORE: store,
    SHOAL_BUS: busUrlFromEnv({ ...process.env, SHOAL_STORE: store }),
    SHOAL_SECRETS: process.env.SHOAL_SECRETS ?? devSecret(),
    SHOAL_COOKIE_SECURE: process.env.SHOAL_COOKIE_SECURE ?? 'false', // the dev balancer speaks plain HTTP
    // The dev balancer follows the nodes' readiness: a node stopped with SIGTERM keeps serving past the
    // next poll before it closes anything, or a request written into a connection it closes is lost.
    SHOAL_DRAIN_DELAY: process.env.SHOAL_DRAIN_DELAY || DEV_DRAIN_DELAY,
    // The balancer serves the dashboard (with kill buttons) for the whole cluster; the nodes do not
    // serve one of their own. Empty, not unset, so a shoal.config file's value does not fill it in again.
    SHOAL_DASHBOARD_TOKEN: '',
  };
  const entry = process.argv[1] as string;
  const host = o.host ?? '127.0.0.1';
  // The address a browser opens, which is also the Origin the gateways must allow: an IPv6 address in brackets.
  const shown = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${o.port}`;
  const gatewayEnv: NodeJS.ProcessEnv = {
    ...env,
    // Pages come through the balancer, so that is the origin browsers send; origins the user lists
    // (a page served elsewhere) come on top of it, never instead.
    SHOAL_ORIGINS: [`${url},http://localhost:${o.port}`, process.env.SHOAL_ORIGINS].filter(Boolean).join(','),
  };
  /** `count` nodes of one role, `<role>-1` … on consecutive ports from `firstPort`. */
  const nodes = (role: ChildSpec['role'], count: number, firstPort: number, roleEnv: NodeJS.ProcessEnv) =>
    Array.from({ length: count }, (_, i): ChildSpec => {
      const name = `${role}-${i + 1}`;
      const port = firstPort + i;
      const args = [entry, role, '--app', o.app, '--port', String(port)];
      // SHOAL_SUPERVISOR_PID: the node drains if this process goes away without stopping it (SIGKILL).
      const nodeEnv = { ...roleEnv, SHOAL_NODE_ID: name, SHOAL_SUPERVISOR_PID: String(process.pid) };
      return { name, role, port, args, env: nodeEnv };
    });
  // Web nodes take the ports right after the balancer's, gateways the ones after them.
  const specs = [
    ...nodes('web', o.web, o.port + 1, env),
    ...nodes('gateway', o.gateways, o.port + 1 + o.web, gatewayEnv),
  ];

  let announced = false;
  let finish: (code: number) => void = () => {};
  const finished = new Promise<number>((resolve) => {
    finish = resolve;
  });
  const write = o.quiet ? undefined : nodeOutputWriter(specs.map((s) => s.name));
  const onFailure = (f: StartFailure) => {
    const how = f.code === null ? `signal ${f.signal}` : `exit code ${f.code}`;
    status(`${f.member.name.padEnd(8)} could not start (${how}) — stopping the cluster`);
    // The node's output, a stack and all, was printed just above unless --quiet: its first line is enough.
    const cause = write ? f.cause.split('\n', 1)[0] : f.cause;
    console.error(`shoal: ${f.member.name} could not start: ${cause}`);
    void shutdown(f.code === EXIT_CONFIG ? EXIT_CONFIG : 1);
  };
  const supervisor = new Supervisor(
    specs,
    (event, m, detail) => {
      status(`${m.name.padEnd(8)} ${event}${m.pid ? ` pid ${m.pid}` : ''} :${m.port}${detail ? ` — ${detail}` : ''}`);
      if (!announced && supervisor.members.every((x) => x.ready)) {
        announced = true;
        status(`ready: ${supervisor.members.length} nodes behind ${url} (round-robin, no sticky sessions)`);
        console.log(`\n  ➜  open ${url}\n  ➜  ops dashboard ${url}/_shoal/\n`);
      }
    },
    { onFailure, ...(write && { onOutput: (m, stream, lines) => write(m.name, stream, lines) }) },
  );

  const balancer = createBalancer({
    web: () => supervisor.members.filter((m) => m.role === 'web'),
    gateways: () => supervisor.members.filter((m) => m.role === 'gateway'),
    // With --web 0 the backend is elsewhere and calls the gateways' server API: through the balancer too.
    gatewayPaths: ['/request', '/openapi.json', ...SERVER_API_PATHS],
  });
  // The ops dashboard answers /_shoal/ on the balancer itself; its kill buttons signal the supervised nodes.
  mountDashboard(
    balancer,
    createDashboard({
      nodes: () => supervisor.members,
      signal: (name, sig) => supervisor.signal(name, sig),
      token: process.env.SHOAL_DASHBOARD_TOKEN,
    }),
  );
  await listen(balancer, o.port, host).catch((err: Error) => {
    // The nodes take the ports after the balancer's: say so, since moving --port moves them too.
    throw new ConfigError(`${err.message}; the ${o.web + o.gateways} nodes take the ports after it`, { cause: err });
  });
  await checkNodePorts(specs, env.HOST ?? '127.0.0.1', o.port).catch((err: unknown) => {
    balancer.close();
    throw err;
  });
  status(`balancer listening on ${url}`);
  status(`store ${redact(env.SHOAL_STORE as string)} · bus ${redact(env.SHOAL_BUS as string)}`);
  if (o.web === 0) status('no web nodes: the balancer serves the gateways alone (WebSocket, /sse, the server API)');
  supervisor.start();

  // npx does not pass SIGTERM on (parent-watch.ts): the cluster stops when what started it has gone.
  const stopWatchingParent = watchParent((parent) => {
    status(`the process that started shoal start (pid ${parent}) is gone`);
    void shutdown(0);
  });
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    stopWatchingParent();
    status(code ? 'stopping every node (SIGTERM)…' : 'stopping: draining every node (SIGTERM)…');
    balancer.close();
    balancer.closeAllConnections();
    await supervisor.stop();
    status('stopped');
    finish(code);
  };
  process.once('SIGINT', () => void shutdown(0));
  process.once('SIGTERM', () => void shutdown(0));
  // A closed terminal: Node's default for SIGHUP would end this process alone and leave the nodes running.
  process.once('SIGHUP', () => void shutdown(0));
  return finished;
}

/**
 * Fails with one line when a port a node is given is already taken. The node could not listen there,
 * and until it said so, whatever holds the port would answer in its place. `host` is where the nodes
 * listen: they read HOST like any `shoal web` / `shoal gateway`.
 */
async function checkNodePorts(specs: ChildSpec[], host: string, port: number): Promise<void> {
  for (const spec of specs) {
    const probe = createServer();
    await listen(probe, spec.port, host).catch((err: ConfigError) => {
      const inUse = (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EADDRINUSE';
      const taken =
        specs.length === 1
          ? `its one node the port after --port ${port}`
          : `its ${specs.length} nodes the ports after --port ${port} (${port + 1}–${specs.at(-1)?.port})`;
      throw new ConfigError(
        inUse
          ? `cannot start ${spec.name} on ${host}:${spec.port}: the port is in use by another process; ` +
              `shoal start gives ${taken}: stop that process or choose another --port`
          : `cannot start ${spec.name}: ${err.message}`,
        { cause: err },
      );
    });
    await new Promise((resolve) => probe.close(resolve));
  }
}

function status(line: string): void {
  console.log(`[shoal ${new Date().toISOString().slice(11, 19)}] ${line}`);
}

/** A random secret kept in .shoal/ so restarting the dev cluster keeps everyone logged in. */
function devSecret(): string {
  if (existsSync(DEV_SECRET_FILE)) return readFileSync(DEV_SECRET_FILE, 'utf8').trim();
  const secret = randomBytes(32).toString('base64url');
  mkdirSync(dirname(DEV_SECRET_FILE), { recursive: true });
  writeFileSync(DEV_SECRET_FILE, `${secret}\n`, { mode: 0o600 });
  return secret;
}
