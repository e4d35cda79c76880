import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { DEFAULT_STORE_URL, redact } from '../stores/index.js';
import { createBalancer } from './balancer.js';
import { type ChildSpec, Supervisor } from './supervisor.js';

export interface StartOptions {
  app: string;
  web: number;
  gateways: number;
  port: number;
  host?: string;
}

const DEV_SECRET_FILE = '.shoal/dev-secret';

/**
 * `shoal start`: the whole cluster on one machine. One balancer on --port,
 * N web nodes on the following ports, all on the same store, so a laptop sees
 * what production sees: any request may land on any node.
 */
export async function startCluster(o: StartOptions): Promise<void> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    SHOAL_STORE: process.env.SHOAL_STORE ?? DEFAULT_STORE_URL,
    SHOAL_SECRETS: process.env.SHOAL_SECRETS ?? devSecret(),
    SHOAL_COOKIE_SECURE: process.env.SHOAL_COOKIE_SECURE ?? 'false', // the dev balancer speaks plain HTTP
  };
  const entry = process.argv[1] as string;
  const specs: ChildSpec[] = Array.from({ length: o.web }, (_, i) => {
    const name = `web-${i + 1}`;
    const port = o.port + 1 + i;
    return {
      name,
      role: 'web',
      port,
      args: [entry, 'web', '--app', o.app, '--port', String(port)],
      env: { ...env, SHOAL_NODE_ID: name },
    };
  });

  const host = o.host ?? '127.0.0.1';
  const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${o.port}`;
  let announced = false;
  const supervisor = new Supervisor(specs, (event, m, detail) => {
    status(`${m.name.padEnd(8)} ${event}${m.pid ? ` pid ${m.pid}` : ''} :${m.port}${detail ? ` — ${detail}` : ''}`);
    if (!announced && supervisor.members.every((x) => x.ready)) {
      announced = true;
      status(`ready: ${supervisor.members.length} nodes behind ${url} (round-robin, no sticky sessions)`);
      console.log(`\n  ➜  open ${url}\n`);
    }
  });

  const balancer = createBalancer({ web: () => supervisor.members.filter((m) => m.role === 'web') });
  await new Promise<void>((resolve, reject) => {
    balancer.once('error', reject);
    balancer.listen(o.port, host, resolve);
  });
  status(`balancer listening on ${url}`);
  status(`store ${redact(env.SHOAL_STORE as string)}`);
  supervisor.start();

  const shutdown = async () => {
    status('stopping: draining every node (SIGTERM)…');
    balancer.close();
    balancer.closeAllConnections();
    await supervisor.stop();
    status('stopped');
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
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
