import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { captureOutput, ROOT } from '../helpers/processes.js';

/** Is an `nginx` binary on PATH? (It is not preinstalled everywhere; .ci/run installs it.) */
export function nginxVersion(): string | undefined {
  const r = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return (r.stderr || r.stdout).trim();
}

export interface RenderOptions {
  dir: string;
  port: number;
  web: number[];
  gateways: number[];
}

/**
 * Renders deploy/nginx/shoal.conf for this machine: the same file with only the
 * listen address and the log directory changed (each substitution must match, so a
 * renamed directive breaks the test instead of silently testing something else),
 * plus the server lists from the first `server` line of each upstreams.*.conf.example.
 */
export function renderNginx(o: RenderOptions): string {
  const src = join(ROOT, 'deploy/nginx');
  mkdirSync(join(o.dir, 'shoal'), { recursive: true });
  mkdirSync(join(o.dir, 'logs'), { recursive: true });
  mkdirSync(join(o.dir, 'temp'), { recursive: true });
  // Worker processes run unprivileged when the master is root; they must reach the temp dirs.
  chmodSync(o.dir, 0o755);

  const conf = substitute(readFileSync(join(src, 'shoal.conf'), 'utf8'), [
    [/^(\s*)listen 80;$/m, `$1listen 127.0.0.1:${o.port};`],
    [/\/var\/log\/nginx\//g, `${join(o.dir, 'logs')}/`],
  ]);
  writeFileSync(join(o.dir, 'shoal.conf'), conf);
  writeFileSync(join(o.dir, 'shoal/upstreams.web.conf'), serverList(join(src, 'upstreams.web.conf.example'), o.web));
  writeFileSync(
    join(o.dir, 'shoal/upstreams.gateway.conf'),
    serverList(join(src, 'upstreams.gateway.conf.example'), o.gateways),
  );

  const temp = (name: string) => `${join(o.dir, 'temp', name)}`;
  const main = `worker_processes 2;
events { worker_connections 1024; }
http {
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  include shoal.conf;
}
`;
  const path = join(o.dir, 'nginx.conf');
  writeFileSync(path, main);
  return path;
}

/** Rewrites the server list of one upstream (e.g. to take a node out with `down`), for a reload. */
export function writeServerList(dir: string, which: 'web' | 'gateway', ports: number[], down: number[] = []): void {
  const example = join(ROOT, 'deploy/nginx', `upstreams.${which}.conf.example`);
  writeFileSync(join(dir, `shoal/upstreams.${which}.conf`), serverList(example, ports, down));
}

function serverList(example: string, ports: number[], down: number[] = []): string {
  const template = readFileSync(example, 'utf8')
    .split('\n')
    .find((line) => /^server\s+\S+/.test(line));
  if (!template) throw new Error(`${example} has no "server host:port …;" line to render from`);
  return ports
    .map((p) => {
      const line = template.replace(/^server\s+\S+/, `server 127.0.0.1:${p}`);
      return down.includes(p) ? line.replace(/;\s*$/, ' down;') : line;
    })
    .join('\n')
    .concat('\n');
}

function substitute(text: string, rules: Array<[RegExp, string]>): string {
  let out = text;
  for (const [pattern, replacement] of rules) {
    if (!pattern.test(out)) throw new Error(`deploy/nginx/shoal.conf no longer matches ${pattern}: update the test`);
    pattern.lastIndex = 0;
    out = out.replace(pattern, replacement);
  }
  return out;
}

function args(dir: string, conf: string, extra: string): string[] {
  return [
    '-p',
    `${dir}/`,
    '-e',
    'stderr',
    '-c',
    conf,
    '-g',
    `pid ${join(dir, 'nginx.pid')}; error_log stderr;${extra}`,
  ];
}

/** `nginx -t` on the rendered config: { ok, output }. */
export function nginxCheck(dir: string, conf: string): { ok: boolean; output: string } {
  const r = spawnSync('nginx', ['-t', ...args(dir, conf, '')], { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export interface NginxProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** The access log, one parsed `log_format shoal` line per request. */
  accessLog: () => AccessLogLine[];
  /** SIGHUP: re-read the config (server lists) with new workers, old ones finish their requests. */
  reload(): void;
  stop(): Promise<void>;
}

export interface AccessLogLine {
  msec: number;
  request_id: string;
  method: string;
  uri: string;
  status: number;
  request_time: number;
  upstream: string;
  upstream_status: string;
}

/** Runs nginx in the foreground as our child (never as a system service, never on port 80). */
export async function startNginx(dir: string, conf: string, port: number): Promise<NginxProcess> {
  const child = spawn('nginx', args(dir, conf, ' daemon off;'), { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = captureOutput(child);
  // A test process that dies must not leave nginx (and its workers) holding the port.
  const onExit = () => child.kill('SIGTERM');
  process.once('exit', onExit);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited with ${child.exitCode}:\n${output()}`);
    try {
      if ((await fetch(`${url}/nginx-healthz`)).ok) break;
    } catch {}
    if (Date.now() > deadline) {
      child.kill('SIGTERM');
      throw new Error(`nginx did not answer on ${url} within 10 s:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const logPath = join(dir, 'logs/access.log');
  return {
    url,
    child,
    output,
    accessLog: () =>
      existsSync(logPath)
        ? readFileSync(logPath, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((line) => JSON.parse(line) as AccessLogLine)
        : [],
    reload: () => child.kill('SIGHUP'),
    stop: () =>
      new Promise<void>((resolve) => {
        process.removeListener('exit', onExit);
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const force = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM'); // fast shutdown: open WebSockets would hold a graceful one
      }),
  };
}
