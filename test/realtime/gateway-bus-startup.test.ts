import { type ChildProcess, spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { type EngineProcess, scratch, spawnEngine } from '../failover/fixtures/engine-process.js';
import { commandsSkipReason } from '../helpers/engines.js';
import { BUILT_ENV, CLI, captureOutput, freePort, ROOT } from '../helpers/processes.js';

/**
 * A `shoal gateway` whose NATS does not answer when it starts: a port that accepts connections and
 * never says a word, then a real nats-server on that port. The gateway stays up, its /readyz says
 * why it is not ready, and it becomes ready once NATS answers, without a restart. A bad bus URL
 * still ends the process at once with one line (exit 78).
 */
const skip = commandsSkipReason([['nats-server', '--version']], 'this test starts its own nats-server');
const dir = scratch('gateway-bus-startup');
const children: ChildProcess[] = [];
const engines: EngineProcess[] = [];
let stall: { server: Server; sockets: Set<Socket> } | undefined;

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(engines.map((e) => e.kill('SIGKILL')));
  closeStall();
  dir.remove();
});

function closeStall(): void {
  for (const s of stall?.sockets ?? []) s.destroy();
  stall?.server.close();
  stall = undefined;
}

function gateway(port: number, bus: string) {
  const child = spawn(
    process.execPath,
    [CLI, 'gateway', '--app', 'examples/probe/shoal.app.ts', '--port', String(port)],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...BUILT_ENV,
        SHOAL_NODE_ID: 'gw-bus-startup',
        SHOAL_STORE: `sqlite:${dir.dir}/sessions.db`,
        SHOAL_BUS: bus,
        SHOAL_SECRETS: 'gateway-bus-startup-secret-0123456789ab',
        SHOAL_ORIGINS: 'http://app.startup.test',
        SHOAL_COOKIE_SECURE: 'false',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: captureOutput(child), exited };
}

/** Polls `ok` every 100 ms until it holds; throws with the gateway's output when it exits or `ms` pass. */
async function until(
  gw: { child: ChildProcess; output: () => string },
  what: string,
  ok: () => Promise<boolean>,
  ms: number,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (gw.child.exitCode !== null)
      throw new Error(`${what}: the gateway exited ${gw.child.exitCode}:\n${gw.output()}`);
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms:\n${gw.output()}`);
    await sleep(100);
  }
}

async function readyz(port: number): Promise<{ status: number; problem?: string } | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, ...((await res.json()) as { problem?: string }) };
  } catch {
    return undefined; // not listening yet
  }
}

describe.skipIf(skip !== undefined)('a gateway whose NATS does not answer at start', () => {
  it('stays up and not ready, and becomes ready once nats-server answers on that port', async () => {
    const natsPort = await freePort();
    const sockets = new Set<Socket>();
    const server = createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(natsPort, '127.0.0.1', r));
    stall = { server, sockets };

    const port = await freePort();
    const gw = gateway(port, `nats://127.0.0.1:${natsPort}`);
    // Listening, and saying why it is not ready (the subscribe timed out: 2 s by default).
    await until(
      gw,
      'the gateway answers /readyz 503 naming the bus',
      async () => {
        const r = await readyz(port);
        return r?.status === 503 && /not subscribed to the bus yet/.test(r.problem ?? '');
      },
      45_000,
    );
    // It reached the port, which never answered (not a refused connection).
    expect((await readyz(port))?.problem, gw.output()).toMatch(/no answer within/);
    // A few retries later it is still up and still not ready.
    await sleep(3000);
    expect(gw.child.exitCode, gw.output()).toBeNull();
    expect((await readyz(port))?.status).toBe(503);

    // NATS arrives on the same port.
    closeStall();
    engines.push(
      spawnEngine(
        'nats',
        'nats-server',
        ['-a', '127.0.0.1', '-p', String(natsPort), '-js', '-sd', dir.dir],
        natsPort,
        dir.dir,
      ),
    );
    await until(
      gw,
      'the gateway becomes ready once NATS answers',
      async () => (await readyz(port))?.status === 200,
      30_000,
    );
    expect(gw.child.exitCode, gw.output()).toBeNull();
    expect(gw.output()).toMatch(/gateway subscribed to the bus/);
    gw.child.kill('SIGTERM');
    expect(await gw.exited, gw.output()).toBe(0);
  }, 120_000);

  it('still ends at once with one line when the bus URL is a configuration error', async () => {
    const gw = gateway(await freePort(), 'nats://127.0.0.1:4222?replicas=9');
    const code = await Promise.race([gw.exited, sleep(45_000).then(() => 'still running')]);
    expect(code, gw.output()).toBe(78);
    expect(gw.output().trim()).toMatch(/^shoal: nats bus: replicas=9 must be 1 to 5/);
    expect(gw.output().trim().split('\n')).toHaveLength(1);
  }, 60_000);
});
