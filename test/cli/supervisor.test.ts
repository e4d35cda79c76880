import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { type Member, Supervisor } from '../../src/cli/supervisor.js';
import { freePort } from '../helpers/processes.js';

// A node whose /readyz answers 503 with a problem while the flag file exists.
const NODE = `
const { createServer } = require('node:http');
const { existsSync } = require('node:fs');
createServer((req, res) => {
  const down = existsSync(process.env.FLAG);
  res.writeHead(down ? 503 : 200, { 'content-type': 'application/json' });
  const body = down ? { problem: 'the session store does not answer' } : { ready: true };
  res.end(JSON.stringify({ ...body, pid: process.pid }));
}).listen(Number(process.env.PORT), '127.0.0.1');
`;

// A node that keeps trying its port until it is free: a node that has not bound yet while another
// program holds its port.
const LATE_NODE = `
const { createServer } = require('node:http');
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ready: true, node: 'web-1', pid: process.pid }));
});
server.on('error', () => setTimeout(() => server.listen(Number(process.env.PORT), '127.0.0.1'), 100));
server.listen(Number(process.env.PORT), '127.0.0.1');
`;

describe('shoal start supervisor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-supervisor-'));
  const flag = join(dir, 'down');
  let supervisor: Supervisor | undefined;
  afterAll(async () => {
    await supervisor?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function until(what: string, check: () => boolean): Promise<void> {
    for (let i = 0; i < 100 && !check(); i++) await sleep(100);
    expect(check(), what).toBe(true);
  }

  it('says a node that was ready is not-ready, with its problem, at once (not "starting", not its uptime)', async () => {
    const port = await freePort();
    const events: { event: string; detail?: string }[] = [];
    supervisor = new Supervisor(
      [
        {
          name: 'web-1',
          role: 'web',
          port,
          args: ['-e', NODE],
          env: { ...process.env, PORT: String(port), FLAG: flag },
        },
      ],
      (event, _m: Member, detail) => events.push({ event, ...(detail !== undefined ? { detail } : {}) }),
    );
    supervisor.start();
    const member = () => supervisor?.members[0];
    await until('ready', () => member()?.state === 'ready');

    writeFileSync(flag, '');
    await until('not-ready', () => member()?.state === 'not-ready');
    expect(member()?.ready).toBe(false);
    expect(events.at(-1)).toEqual({ event: 'not-ready', detail: 'the session store does not answer' });
    expect(events.map((e) => e.event)).toEqual(['ready', 'not-ready']);

    rmSync(flag);
    await until('ready again', () => member()?.state === 'ready');
    expect(existsSync(flag)).toBe(false);
    expect(events.map((e) => e.event)).toEqual(['ready', 'not-ready', 'ready']);
  }, 30_000);

  it('does not count a node ready while another program answers on its port, whatever it answers', async () => {
    const port = await freePort();
    // Another cluster's node of the same name: 200 on every path, with a body that looks like ours.
    const foreign = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, ready: true, node: 'web-1', pid: process.pid }));
    });
    await new Promise<void>((resolve) => foreign.listen(port, '127.0.0.1', resolve));
    const events: string[] = [];
    const own = new Supervisor(
      [{ name: 'web-1', role: 'web', port, args: ['-e', LATE_NODE], env: { ...process.env, PORT: String(port) } }],
      (event) => events.push(event),
    );
    try {
      own.start();
      await sleep(2000); // four polls, each answered by the foreign server
      expect(own.members[0]?.state).toBe('starting');
      expect(own.members[0]?.ready).toBe(false);
      expect(events).toEqual([]);

      // Once the port is the node's own, its answer counts.
      foreign.closeAllConnections();
      await new Promise((resolve) => foreign.close(resolve));
      await until('ready', () => own.members[0]?.state === 'ready');
      expect(events).toEqual(['ready']);
    } finally {
      foreign.closeAllConnections();
      foreign.close();
      await own.stop();
    }
  }, 30_000);
});
