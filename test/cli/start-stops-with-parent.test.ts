import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { CLI, captureOutput, freePortRun, ROOT } from '../helpers/processes.js';

/**
 * `shoal start` stops its whole cluster, draining every node, when the process that started it is
 * told to stop or goes away. `npx shoal start & kill $!` signals npm, which does not pass SIGTERM on
 * to the CLI (npm exec → sh -c → node): the CLI notices its parent is gone. Ctrl-C (SIGINT to the
 * process group), SIGTERM and SIGHUP (a closed terminal) still stop it as before.
 */
const dir = mkdtempSync(join(tmpdir(), 'shoal-start-parent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// A project that has shoal installed, as npx finds it: the package and its bin in node_modules.
mkdirSync(join(dir, 'node_modules/.bin'), { recursive: true });
writeFileSync(join(dir, 'package.json'), '{"name":"start-parent","private":true}\n');
symlinkSync(ROOT, join(dir, 'node_modules/shoal'));
symlinkSync('../shoal/bin/shoal.js', join(dir, 'node_modules/.bin/shoal'));
// Answers with the node's pid and its parent's, the supervisor (`shoal start` itself).
writeFileSync(
  join(dir, 'pids.app.mjs'),
  'export default { web: () => (req, res) => res.end(JSON.stringify([process.pid, process.ppid])) };\n',
);

const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const started: ChildProcess[] = [];
afterAll(() => {
  // Whatever is left of a cluster (its own process group) is killed, whichever way the tests went
  // (after them all: they run side by side).
  for (const child of started.splice(0)) {
    try {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
    } catch {}
  }
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Runs `command` in its own process group, waits for the cluster to be ready; the pids of `shoal start` and its web node. */
async function startVia(command: string, args: string[], port: number) {
  const child = spawn(
    command,
    [...args, '--app', 'pids.app.mjs', '--web', '1', '--gateways', '1', '--port', String(port)],
    {
      cwd: dir,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SHOAL_STORE: `sqlite:${join(dir, `${port}.db`)}`,
        SHOAL_SECRETS: SECRET,
        npm_config_yes: 'true',
        npm_config_update_notifier: 'false',
      },
    },
  );
  started.push(child);
  const output = captureOutput(child);
  await eventually(() => output().includes(`open http://127.0.0.1:${port}`), {
    timeoutMs: 60_000,
    intervalMs: 100,
    message: 'the cluster to be ready',
  }).catch((err: Error) => {
    throw new Error(`${err.message}:\n${output()}`);
  });
  const [web, supervisor] = (await (await fetch(`http://127.0.0.1:${port}/`)).json()) as [number, number];
  return { child, output, web, supervisor };
}

/** The pids of `pid`'s child processes, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // The parent pid is the 2nd field after the command name, which is in parentheses and may hold spaces.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(entry));
    } catch {}
  }
  return out;
}

/** The cluster drained and stopped: `shoal start` and its node are gone, the balancer's port is free. */
async function expectStopped(c: { output: () => string; web: number; supervisor: number }, port: number) {
  await eventually(() => !alive(c.supervisor) && !alive(c.web), {
    timeoutMs: 30_000,
    intervalMs: 100,
    message: 'shoal start and its nodes to exit',
  }).catch((err: Error) => {
    throw new Error(`${err.message}:\n${c.output()}`);
  });
  expect(c.output()).toMatch(/web-1\s.*"msg":"drained"/);
  expect(c.output()).toContain('stopped');
  await expect(fetch(`http://127.0.0.1:${port}/`)).rejects.toThrow();
}

// Side by side: each test mostly waits for a cluster to start and to drain.
describe.concurrent('shoal start stops its cluster', () => {
  it('when npx is killed (npx shoal start & kill $!): it notices its parent is gone', async () => {
    const port = await freePortRun(3);
    const c = await startVia('npx', ['shoal', 'start'], port);
    expect(c.supervisor).not.toBe(c.child.pid); // npm, then a shell, stand between
    c.child.kill('SIGTERM');
    await expectStopped(c, port);
    expect(c.output()).toMatch(/the process that started shoal start \(pid \d+\) is gone/);
  }, 120_000);

  it('when the shell that started it is killed outright', async () => {
    const port = await freePortRun(3);
    // The `; exit` keeps the shell from exec-ing node in its place: node is its child.
    const c = await startVia('sh', ['-c', `"${process.execPath}" "${CLI}" start "$@"; exit`, 'sh'], port);
    expect(c.supervisor).not.toBe(c.child.pid);
    c.child.kill('SIGKILL');
    await expectStopped(c, port);
  }, 120_000);

  it('when shoal start itself is killed with SIGKILL: its nodes see it gone, drain and exit', async () => {
    const port = await freePortRun(3);
    const c = await startVia(process.execPath, [CLI, 'start'], port);
    const nodes = childrenOf(c.supervisor);
    expect(nodes).toContain(c.web);
    expect(nodes.length).toBe(2); // web-1 and gateway-1
    c.child.kill('SIGKILL');
    await eventually(() => nodes.every((pid) => !alive(pid)), {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'the nodes to exit',
    });
    // Nothing answers where web-1 and gateway-1 listened.
    for (const nodePort of [port + 1, port + 2])
      await expect(fetch(`http://127.0.0.1:${nodePort}/healthz`)).rejects.toThrow();
  }, 120_000);

  it.each(['SIGINT', 'SIGHUP'] as const)(
    'on %s to shoal start itself, as before',
    async (signal) => {
      const port = await freePortRun(3);
      const c = await startVia(process.execPath, [CLI, 'start'], port);
      expect(c.supervisor).toBe(c.child.pid);
      const exit = new Promise<number | null>((r) => c.child.once('exit', (code) => r(code)));
      c.child.kill(signal);
      expect(await exit).toBe(0);
      await expectStopped(c, port);
    },
    120_000,
  );
});
