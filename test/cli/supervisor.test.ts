import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
  res.end(JSON.stringify(down ? { problem: 'the session store does not answer' } : { ready: true }));
}).listen(Number(process.env.PORT), '127.0.0.1');
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
});
