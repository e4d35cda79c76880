import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LineSplitter, nodeOutputWriter } from '../../src/cli/node-output.js';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { eventually } from '../helpers/eventually.js';
import { freePortRun, ROOT } from '../helpers/processes.js';

describe('LineSplitter', () => {
  it('hands on whole lines whatever the chunks, and holds a partial last line until its newline or end()', () => {
    const lines = new LineSplitter();
    expect(lines.push('one\ntw')).toEqual(['one']);
    expect(lines.push('o')).toEqual([]);
    expect(lines.push(' halves\nthree\r')).toEqual(['two halves']);
    expect(lines.push('\n\nfour')).toEqual(['three', '']);
    expect(lines.push('\r\n')).toEqual(['four']);
    expect(lines.push('no newline')).toEqual([]);
    expect(lines.end()).toEqual(['no newline']);
    expect(lines.end()).toEqual([]);
  });

  it('does not hold more than 1 MiB waiting for a newline', () => {
    const lines = new LineSplitter();
    const chunk = 'x'.repeat(64 * 1024);
    let out: string[] = [];
    for (let i = 0; i < 16 && out.length === 0; i++) out = lines.push(chunk);
    expect(out).toEqual([chunk.repeat(16)]);
    expect(lines.end()).toEqual([]);
  });
});

const ESC = '\u001b';

describe('nodeOutputWriter', () => {
  const sink = (colours?: boolean) => {
    const written: string[] = [];
    return {
      written,
      write: (t: string) => written.push(t),
      ...(colours === undefined ? {} : { hasColors: () => colours }),
    };
  };

  it('prefixes each line with its node name padded to the longest, to the stream the node used, without colours off a terminal', () => {
    const stdout = sink();
    const stderr = sink(false);
    const write = nodeOutputWriter(['web-1', 'web-2', 'gateway-1'], { stdout, stderr });
    write('web-1', 'stdout', ['hello', '', 'world']);
    write('gateway-1', 'stderr', ['oops']);
    write('web-2', 'stdout', []);
    expect(stdout.written).toEqual(['web-1     | hello\nweb-1     |\nweb-1     | world\n']);
    expect(stderr.written).toEqual(['gateway-1 | oops\n']);
  });

  it('colours the prefix on a terminal that takes colours, a different colour per node', () => {
    const stdout = sink(true);
    const stderr = sink(false);
    const write = nodeOutputWriter(['web-1', 'web-2'], { stdout, stderr });
    write('web-1', 'stdout', ['a']);
    write('web-2', 'stdout', ['b']);
    write('web-2', 'stderr', ['c']);
    const [a = '', b = ''] = stdout.written;
    const colourOf = (line: string) => (line.startsWith(`${ESC}[`) ? line.slice(0, line.indexOf('m') + 1) : '');
    expect(colourOf(a)).not.toBe('');
    expect(a).toBe(`${colourOf(a)}web-1 |${ESC}[0m a\n`);
    expect(b).toBe(`${colourOf(b)}web-2 |${ESC}[0m b\n`);
    expect(colourOf(b)).not.toBe(colourOf(a));
    expect(stderr.written).toEqual(['web-2 | c\n']);
  });
});

const dir = mkdtempSync(join(tmpdir(), 'shoal-start-output-'));
const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const express = pathToFileURL(join(ROOT, 'node_modules/express/index.js')).href;

// An Express app that talks: at import, on stdout and stderr from its routes, a stack from a route
// that throws, a line written in two pieces, one longer than a pipe's buffer, and last words
// without a newline before it exits.
const APP = `import express from '${express}';
const node = process.env.SHOAL_NODE_ID;
console.log('app module imported by ' + node);
export default {
  web() {
    const app = express();
    app.set('env', 'development'); // Express prints a route's stack to stderr outside 'test'
    app.use((req, res, next) => { res.set('x-node', node); next(); });
    app.get('/log', (req, res) => { console.log('log ' + req.query.id); res.send(node); });
    app.get('/warn', (req, res) => { console.error('warn ' + req.query.id); res.send(node); });
    app.get('/throw', (req) => { throw new Error('route failed ' + req.query.id); });
    app.get('/split', (req, res) => {
      process.stdout.write('split ' + req.query.id + ' first half, ');
      setTimeout(() => {
        process.stdout.write('second half\\n');
        console.log('long ' + req.query.id + ' ' + 'x'.repeat(200000));
        res.send(node);
      }, 150);
    });
    app.get('/exit', (req, res) => {
      res.send(node);
      process.stdout.write('last words ' + req.query.id);
      setTimeout(() => process.exit(3), 50);
    });
    return app;
  },
};
`;
const app = join(dir, 'talking.app.mjs');
writeFileSync(app, APP);

let cluster: DevCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function start(web: number, args: string[] = []): Promise<DevCluster> {
  const port = await freePortRun(1 + web);
  cluster = await startDevCluster({
    app,
    web,
    gateways: 0,
    port,
    args,
    cwd: dir,
    env: { SHOAL_STORE: `sqlite:${join(dir, `${port}.db`)}`, SHOAL_SECRETS: SECRET, NODE_ENV: 'development' },
  });
  return cluster;
}

/** A GET through the balancer, and the node that answered it. */
async function get(c: DevCluster, path: string): Promise<{ status: number; node: string }> {
  const res = await fetch(c.url + path);
  await res.text();
  return { status: res.status, node: res.headers.get('x-node') ?? '?' };
}

describe('shoal start prints what its nodes print', () => {
  it("each node's lines behind its name: stdout to stdout, stderr to stderr, stacks, pino logs, split and long lines", async () => {
    const c = await start(2);
    for (const node of ['web-1', 'web-2']) {
      expect(c.stdout()).toMatch(new RegExp(`^${node} \\| app module imported by ${node}$`, 'm'));
      // shoal's own JSON logs, from the node's pino logger
      expect(c.stdout()).toMatch(new RegExp(`^${node} \\| \\{"level":30,.*"msg":"web node listening"`, 'm'));
    }

    const logged = await get(c, '/log?id=L1');
    const warned = await get(c, '/warn?id=W1');
    const thrown = await get(c, '/throw?id=T1');
    const split = await get(c, '/split?id=S1');
    expect([logged.status, warned.status, thrown.status, split.status]).toEqual([200, 200, 500, 200]);
    for (const r of [logged, warned, thrown, split]) expect(r.node).toMatch(/^web-[12]$/);

    await eventually(() => c.stdout().includes('long S1 '), { message: () => c.output() });
    await eventually(() => c.stderr().includes('route failed T1'), { message: () => c.output() });
    const { stdout, stderr } = { stdout: c.stdout(), stderr: c.stderr() };
    expect(stdout).toMatch(new RegExp(`^${logged.node} \\| log L1$`, 'm'));
    expect(stderr).not.toMatch(/log L1/);
    expect(stderr).toMatch(new RegExp(`^${warned.node} \\| warn W1$`, 'm'));
    expect(stdout).not.toMatch(/warn W1/);
    // Express's stack: the message line and its frames, each line behind the node's name.
    expect(stderr).toMatch(new RegExp(`^${thrown.node} \\| Error: route failed T1\\n${thrown.node} \\| {5}at `, 'm'));
    // Written in two pieces 150 ms apart: one line. 200 000 characters: one line, whole.
    expect(stdout).toMatch(new RegExp(`^${split.node} \\| split S1 first half, second half$`, 'm'));
    expect(stdout).toMatch(new RegExp(`^${split.node} \\| long S1 x{200000}$`, 'm'));
    // No colours into a pipe, and every line the nodes wrote is a whole prefixed line.
    expect(stdout + stderr).not.toContain(`${ESC}[`);
    for (const line of (stdout + stderr).split('\n').filter(Boolean)) {
      expect(line.slice(0, 200)).toMatch(/^(\[shoal \d\d:\d\d:\d\d\] |web-[12] \|| {2}➜ {2})/);
    }
  }, 60_000);

  it('a line without a newline is printed when its node exits, before the exit, and once', async () => {
    const c = await start(1);
    const r = await get(c, '/exit?id=E1');
    expect(r.node).toBe('web-1');
    await eventually(() => /web-1\s+exited/.test(c.stdout()), { timeoutMs: 10_000, message: () => c.output() });
    const stdout = c.stdout();
    expect(stdout).toMatch(/^web-1 \| last words E1$/m);
    expect(stdout.match(/last words E1/g)).toHaveLength(1); // the exit line does not repeat the tail
    // Before the exit line; only the supervisor's own status lines (a health check seeing the node go) may come between.
    expect(stdout).toMatch(
      /web-1 \| last words E1\n(\[shoal \d\d:\d\d:\d\d\] web-1 .*\n)*?\[shoal \d\d:\d\d:\d\d\] web-1\s+exited :\d+ — code 3\n/,
    );
  }, 60_000);

  it('--quiet prints only the status lines, and an exit with an error still shows the tail of its output', async () => {
    const c = await start(1, ['--quiet']);
    expect((await get(c, '/log?id=Q1')).status).toBe(200);
    expect((await get(c, '/warn?id=Q2')).status).toBe(200);
    expect((await get(c, '/throw?id=Q3')).status).toBe(500);
    await sleep(500);
    expect(c.stdout()).toMatch(/^\[shoal \d\d:\d\d:\d\d\] web-1\s+ready/m);
    expect(c.stdout()).not.toMatch(/imported|web node listening|Q1/);
    expect(c.stderr()).toBe('');

    await get(c, '/exit?id=Q4');
    await eventually(() => /web-1\s+exited/.test(c.stdout()), { timeoutMs: 10_000, message: () => c.output() });
    // As before: the exit's status line carries the tail of what the node printed.
    expect(c.stdout()).toMatch(/web-1\s+exited :\d+ — code 3\n(.|\n)*route failed Q3(.|\n)*last words Q4/);
    expect(c.stdout()).not.toMatch(/^web-1 \|/m);
    expect(c.stderr()).toBe('');
  }, 60_000);
});
