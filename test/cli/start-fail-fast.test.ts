import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { startCluster } from '../../src/cli/start.js';
import { BUILT_ENV, CLI, freePortRun, ROOT } from '../helpers/processes.js';

const dir = mkdtempSync(join(tmpdir(), 'shoal-start-'));
const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const running: ChildProcess[] = [];

afterEach(async () => {
  for (const child of running.splice(0)) {
    if (child.pid && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      await exited;
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes an app module into the temp dir and returns its path. */
function appModule(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const HELLO_APP = `export default {
  async web() {
    return {
      handler(req, res) {
        if (req.url === '/crash') { res.end('bye'); setTimeout(() => process.exit(1), 50); return; }
        res.end('hello');
      },
      async close() {},
    };
  },
};
`;

/** `shoal start` in its own process group, with its output and its exit. */
async function start(app: string, env: Record<string, string> = {}, balancerPort?: number) {
  const port = balancerPort ?? (await freePortRun(2)); // the balancer and web-1
  const child = spawn(process.execPath, [CLI, 'start', '--app', app, '--web', '1', '--port', String(port)], {
    cwd: dir,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      ...BUILT_ENV,
      SHOAL_STORE: `sqlite:${join(dir, `${port}.db`)}`,
      SHOAL_SECRETS: SECRET,
      ...env,
    },
  });
  running.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const until = async (what: RegExp, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!what.test(stdout)) {
      if (child.exitCode !== null) throw new Error(`shoal start exited (${child.exitCode}):\n${stdout}\n${stderr}`);
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms:\n${stdout}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { child, port, exit, until, out: () => ({ stdout, stderr }) };
}

/** Resolves with the exit code, or null if the process still runs after `ms`. */
function exitWithin(exit: Promise<number | null>, ms: number): Promise<number | null | 'running'> {
  return Promise.race([exit, new Promise<'running'>((r) => setTimeout(() => r('running'), ms))]);
}

describe('shoal start when a node cannot start', () => {
  it('a malformed SHOAL_STORE stops the cluster with exit 78, naming the node and the URL', async () => {
    const s = await start(join(ROOT, 'examples/probe/shoal.app.ts'), { SHOAL_STORE: 'bogus://nowhere' });
    expect(await exitWithin(s.exit, 60_000)).toBe(78);
    expect(s.out().stderr).toMatch(
      /^shoal: web-1 could not start: SHOAL_STORE "bogus:\/\/nowhere" has an unknown scheme/m,
    );
    expect(s.out().stdout).not.toMatch(/restarted/);
  }, 90_000);

  it('an app module that throws when imported stops the cluster with exit 78 and its error', async () => {
    const app = appModule('broken.app.mjs', `throw new Error('the app module is broken');\n`);
    const s = await start(app);
    expect(await exitWithin(s.exit, 60_000)).toBe(78);
    expect(s.out().stderr).toMatch(
      /^shoal: web-1 could not start: could not load the app module .*broken\.app\.mjs: the app module is broken$/m,
    );
  }, 90_000);

  it('an app module without a web() stops the cluster with exit 78 and says what to export', async () => {
    const app = appModule('empty.app.mjs', 'export default {};\n');
    const s = await start(app);
    expect(await exitWithin(s.exit, 60_000)).toBe(78);
    expect(s.out().stderr).toMatch(/^shoal: web-1 could not start: .*empty\.app\.mjs must default-export defineApp/m);
  }, 90_000);

  it('a node that crashes before it is ready is tried 3 times, then the cluster stops with exit 1', async () => {
    const app = appModule(
      'crashing.app.mjs',
      `export default { async web() { throw new Error('cannot reach the payment service'); } };\n`,
    );
    const s = await start(app);
    expect(await exitWithin(s.exit, 75_000)).toBe(1);
    expect(s.out().stdout.match(/web-1\s+restarted/g)).toHaveLength(2);
    expect(s.out().stderr).toMatch(/web-1 could not start: .*cannot reach the payment service/);
    // Each try's stack is printed behind the node's name; the closing line names its first line only.
    const stderr = s.out().stderr.trimEnd().split('\n');
    expect(stderr.filter((l) => l === 'web-1 | Error: cannot reach the payment service')).toHaveLength(3);
    expect(stderr.filter((l) => !l.startsWith('web-1 | '))).toEqual([
      'shoal: web-1 could not start: Error: cannot reach the payment service',
    ]);
  }, 90_000);

  it("a node's port held by another program stops the cluster with one line, and no node is announced ready", async () => {
    const port = await freePortRun(2);
    // Another program on web-1's port (another cluster, say) that answers 200 on every path, /readyz included.
    const foreign = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, ready: true, node: 'web-1' }));
    });
    await new Promise<void>((resolve) => foreign.listen(port + 1, '127.0.0.1', resolve));
    try {
      const s = await start(appModule('hello-foreign.app.mjs', HELLO_APP), {}, port);
      expect(await exitWithin(s.exit, 30_000)).toBe(78);
      const { stdout, stderr } = s.out();
      expect(stdout).not.toMatch(/ready/);
      expect(stdout).not.toMatch(/➜/);
      expect(stderr.trim().split('\n')).toEqual([
        `shoal: cannot start web-1 on 127.0.0.1:${port + 1}: the port is in use by another process; ` +
          `shoal start gives its one node the port after --port ${port}: stop that process or choose another --port`,
      ]);
    } finally {
      foreign.closeAllConnections();
      await new Promise((resolve) => foreign.close(resolve));
    }
  }, 60_000);

  it('a node that crashes after it was ready is restarted, and the cluster keeps serving', async () => {
    const s = await start(appModule('hello.app.mjs', HELLO_APP));
    await s.until(/➜ {2}open/, 60_000);
    const url = `http://127.0.0.1:${s.port}`;
    expect(await (await fetch(`${url}/`)).text()).toBe('hello');
    await fetch(`${url}/crash`);
    await s.until(/web-1\s+exited/, 20_000);
    await s.until(/web-1\s+ready.*\n(.|\n)*web-1\s+ready/, 60_000);
    expect(await (await fetch(`${url}/`)).text()).toBe('hello');
    s.child.kill('SIGTERM');
    expect(await exitWithin(s.exit, 45_000)).toBe(0);
  }, 150_000);
});

describe('shoal start, before any node starts', () => {
  it('refuses a memory: store for more than one node: each would keep sessions the others never see', async () => {
    vi.stubEnv('SHOAL_STORE', 'memory:');
    try {
      await expect(startCluster({ app: 'app.mjs', web: 2, gateways: 0, port: 1 })).rejects.toThrow(
        /SHOAL_STORE=memory: keeps sessions inside one process, and this cluster has 2 nodes/,
      );
    } finally {
      vi.unstubAllEnvs();
    }
  });
});
