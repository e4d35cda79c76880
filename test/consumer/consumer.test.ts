import { copyFileSync, cpSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CookieJar } from '../helpers/cookie-jar.js';
import { type DevCluster, startDevCluster } from '../helpers/dev-cluster.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';
import { freePortRun, ROOT } from '../helpers/processes.js';
import { typescriptBlocks } from './code-blocks.js';
import { type ConsumerProject, createConsumerProject } from './consumer-project.js';

/**
 * shoal as a user gets it: packed, installed into a project outside the repo, the docs' code
 * compiled under `strict`, and the getting-started app run as a cluster with the installed CLI.
 */
const STRICT_TSCONFIG = {
  compilerOptions: {
    target: 'ES2022',
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    lib: ['ES2023', 'DOM'],
    strict: true,
    noUncheckedIndexedAccess: true,
    skipLibCheck: true,
    noEmit: true,
  },
};

/**
 * Bounds that catch a stray directory (tests, sources, a build cache) landing in the package. Unpacked,
 * half of it is source maps and ~0.35 MB the shipped docs; src/ alone would add ~1.2 MB (~0.3 MB packed),
 * which these bounds still catch from the package's 1.0 MB packed / 3.5 MB unpacked of today.
 */
const MAX_TARBALL_BYTES = 1_150_000;
const MAX_UNPACKED_BYTES = 4_000_000;

let project: ConsumerProject;
const redisSkip = await engineSkipReason('redis');

beforeAll(async () => {
  // The clients of the Redis and PostgreSQL backends, as their docs say to install them (pg without
  // @types/pg), and the frameworks of the adapters: what the type check of each entry point may need.
  project = await createConsumerProject(['ioredis', 'pg', 'fastify', 'hono']);
}, 300_000);

afterAll(() => {
  if (project && !process.env.SHOAL_KEEP_CONSUMER) rmSync(project.dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  const paths = () => new Set(project.pack.files.map((f) => f.path));

  it('ships the compiled library, the bin, LICENSE, README and the server API document', () => {
    for (const p of [
      'package.json',
      'LICENSE',
      'README.md',
      'bin/shoal.js',
      'dist/index.js',
      'dist/cli/main.js',
      'dist/server-api.openapi.json',
    ]) {
      expect(paths(), p).toContain(p);
    }
  });

  it('asks nothing to run at install: no install script and no prepare in the packed package.json', () => {
    // npm lists, and npm 12 blocks, a dependency's install scripts until the app approves them; `prepare`
    // counts for a tarball or git dependency. The package ships built, so it needs none.
    const manifest = JSON.parse(readFileSync(join(project.dir, 'node_modules/shoal/package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
    };
    const atInstall = ['preinstall', 'install', 'postinstall', 'prepare'].filter((s) => manifest.scripts?.[s]);
    expect(atInstall).toEqual([]);
  });

  it('ships every file the exports map and bin name', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      exports: Record<string, string | Record<string, string>>;
      bin: Record<string, string>;
    };
    const targets = [
      ...Object.values(manifest.bin),
      ...Object.values(manifest.exports).flatMap((t) => (typeof t === 'string' ? [t] : Object.values(t))),
    ].map((t) => t.replace(/^\.\//, ''));
    expect(targets.length).toBeGreaterThan(2);
    for (const t of targets) {
      if (t.includes('*')) {
        const [before = '', after = ''] = t.split('*');
        expect(
          [...paths()].some((p) => p.startsWith(before) && p.endsWith(after)),
          t,
        ).toBe(true);
      } else {
        expect(paths(), t).toContain(t);
      }
    }
  });

  it('ships the docs the README links to, and the nginx config they link to, so they can be read offline', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const linked = [...readme.matchAll(/\]\((docs\/[^)#\s]+\.md)/g)].map((m) => m[1] as string);
    expect(linked.length).toBeGreaterThan(5);
    for (const doc of linked) expect(paths(), doc).toContain(doc);
    const gettingStarted = readFileSync(join(ROOT, 'docs/getting-started.md'), 'utf8');
    const deployLinks = [...gettingStarted.matchAll(/\]\(\.\.\/(deploy\/[^)#\s]+)\)/g)].map((m) => m[1] as string);
    expect(deployLinks).toContain('deploy/nginx/shoal.conf');
    for (const file of deployLinks) expect(paths(), file).toContain(file);
  });

  it('ships every file the shipped docs point to, or they say it is in the source repository', () => {
    const shipped = paths();
    const has = (p: string) => shipped.has(p) || [...shipped].some((q) => q.startsWith(p.endsWith('/') ? p : `${p}/`));
    const missing: string[] = [];
    for (const doc of [...shipped].filter((p) => p.endsWith('.md'))) {
      const text = readFileSync(join(ROOT, doc), 'utf8').replace(/^```[\s\S]*?^```/gm, '');
      // A paragraph that says the file is in the source repository (not the package) may name it.
      for (const paragraph of text.split(/\n\s*\n/)) {
        if (/source repository/.test(paragraph)) continue;
        const links = [...paragraph.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)]
          .map((m) => m[1] as string)
          .filter((t) => !/^[a-z]+:/i.test(t))
          .map((t) => posix.normalize(posix.join(posix.dirname(doc), t)));
        const named = [...paragraph.matchAll(/`((?:deploy\/[\w./-]+)|Dockerfile)`/g)].map((m) => m[1] as string);
        for (const target of [...links, ...named]) if (!has(target)) missing.push(`${doc} → ${target}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('leaves sources, tests, examples and local state out', () => {
    const stray = [...paths()].filter(
      (p) =>
        /^(src|test|examples|bench|node_modules|\.shoal|\.ci|coverage|test-results)\//.test(p) ||
        (p.startsWith('deploy/') && !/^deploy\/(nginx|k8s)\//.test(p)) ||
        (p.startsWith('docs/') && !/\.(md|json)$/.test(p)),
    );
    expect(stray).toEqual([]);
    expect([...paths()].filter((p) => /\.test\.|\.tsbuildinfo$/.test(p))).toEqual([]);
  });

  it('ships no source map that points at files the package lacks', () => {
    const maps = [...paths()].filter((p) => p.endsWith('.map'));
    for (const p of maps) {
      const map = JSON.parse(readFileSync(join(ROOT, p), 'utf8')) as { sources: string[]; sourcesContent?: unknown[] };
      const carried = map.sourcesContent?.filter((s) => typeof s === 'string').length ?? 0;
      // Each source is either embedded in the map or shipped beside it.
      const shipped = map.sources.filter((s) => paths().has(join(p, '..', s)));
      expect(carried + shipped.length, `${p} → ${map.sources.join(', ')}`).toBeGreaterThanOrEqual(map.sources.length);
    }
  });

  it(`stays under ${MAX_TARBALL_BYTES / 1e6} MB packed and ${MAX_UNPACKED_BYTES / 1e6} MB unpacked`, () => {
    const { pack } = project;
    console.log(`npm pack: ${pack.entryCount} files, ${pack.size} bytes packed, ${pack.unpackedSize} unpacked`);
    expect(pack.size).toBeLessThan(MAX_TARBALL_BYTES);
    expect(pack.unpackedSize).toBeLessThan(MAX_UNPACKED_BYTES);
  });
});

describe('the installed package', () => {
  it("says in one line what to run when better-sqlite3's install script never ran", async () => {
    // As after `npm install --ignore-scripts`, or an npm that runs no dependency's install script until allowed.
    const built = join(project.dir, 'node_modules/better-sqlite3/build');
    const hidden = `${built}.hidden`;
    renameSync(built, hidden);
    try {
      writeFileSync(
        join(project.dir, 'no-addon.mjs'),
        `import { createStore } from 'shoal';
try { await createStore('sqlite://./no-addon.db'); console.log('opened'); } catch (err) { console.log(err.message); }`,
      );
      const said = (await project.exec(process.execPath, ['no-addon.mjs'])).trim();
      expect(said.split('\n')).toHaveLength(1);
      expect(said).toMatch(/native addon was never built: its install script did not run/);
      expect(said).toMatch(/Run: npm install-scripts approve better-sqlite3 && npm rebuild better-sqlite3/);
    } finally {
      renameSync(hidden, built);
    }
  }, 60_000);

  it('every ```ts block of README.md and docs/*.md compiles under strict against it', async () => {
    const blocks = typescriptBlocks(ROOT);
    expect(blocks.map((b) => b.file)).toContain('getting-started/app.ts');
    for (const block of blocks) {
      const path = join(project.dir, block.file);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, `// ${block.origin}\n${block.code}`);
    }
    writeFileSync(
      join(project.dir, 'tsconfig.json'),
      JSON.stringify({ ...STRICT_TSCONFIG, include: blocks.map((b) => b.file) }, null, 2),
    );
    // tsc names each error's file (the first line of each file names its origin in the docs).
    await project.exec(join(project.dir, 'node_modules/.bin/tsc'), ['-p', '.']);
  }, 120_000);

  it('each entry point typechecks on its own with skipLibCheck off, needing only the packages it is for', async () => {
    // A user's strict project that checks every declaration file it loads, and imports one entry point.
    const tsconfig = {
      compilerOptions: {
        ...STRICT_TSCONFIG.compilerOptions,
        skipLibCheck: false,
        verbatimModuleSyntax: true,
        types: ['node'],
      },
    };
    // The optional packages and type packages an entry point may load: those of the backend or framework
    // it is for. Any other one it reached would be one its user must install to compile it.
    const optional = ['pg', '@types/pg', 'ioredis', 'nats', 'amqplib', '@types/amqplib', 'memjs', '@types/memjs'];
    const frameworks = ['@types/express', 'fastify', 'hono'];
    // Dependencies whose types are packages of their own, which nobody is told to install.
    const untyped = ['@types/ws', '@types/better-sqlite3'];
    const needs: Record<string, string[]> = {
      'shoal/express': ['@types/express'],
      'shoal/fastify': ['fastify'],
      'shoal/hono': ['hono'],
      'shoal/stores/redis': ['ioredis'],
      'shoal/bus/redis': ['ioredis'],
    };
    const tsc = join(project.dir, 'node_modules/.bin/tsc');
    const files = entryPoints().map((entry) => {
      const file = `types-${entry.replaceAll('/', '-')}.ts`;
      writeFileSync(
        join(project.dir, file),
        `import * as entry from '${entry}';\nexport const used: unknown = entry;\n`,
      );
      return { entry, file };
    });
    const config = (name: string, include: string[]) => {
      writeFileSync(join(project.dir, name), JSON.stringify({ ...tsconfig, files: include }));
      return name;
    };
    // What each one loads on its own (resolved, not checked: cheap): what `tsc --listFilesOnly` lists for
    // a project of that one file, for all of them in one process (test/consumer/list-files.mjs). A
    // package it needs and the project lacks is no file here but an error below.
    const configs = files.map(({ file }, i) => config(`types-one-${i}.json`, [file]));
    const printed = await project.exec(process.execPath, [listFiles(), ...configs]);
    const lists = JSON.parse(printed.split('\n').find((l) => l.startsWith('{')) ?? printed) as Record<string, string[]>;
    for (const [i, { entry, file }] of files.entries()) {
      const listed = lists[configs[i] as string] ?? [];
      expect(
        listed.some((f) => f.endsWith(`/${file}`)),
        `${entry}: ${file} in its own program`,
      ).toBe(true);
      const packages = new Set(
        listed.flatMap((f) => [...f.matchAll(/\/node_modules\/((?:@[^/]+\/)?[^/]+)\//g)].map((m) => m[1])),
      );
      const reached = [...optional, ...frameworks, ...untyped].filter((p) => packages.has(p));
      expect({ entry, reached }).toEqual({ entry, reached: needs[entry] ?? [] });
    }
    // All of them checked at once: a declaration file of shoal's that names types the project lacks fails
    // here (pg is installed as its docs say, without @types/pg; nats, amqplib and memjs are not installed).
    const all = config(
      'types-all.json',
      files.map((f) => f.file),
    );
    await project.exec(tsc, ['-p', all]);
  }, 120_000);

  it('the drop-in and its sessionErrors() typecheck beside @types/express-session, without shoal/express', async () => {
    // An express-session app's own project: @types/express-session listed, its SessionData declared,
    // every declaration file checked (skipLibCheck off shows the TS2717 a second req.session would cause).
    const sub = join(project.dir, 'dropin-types');
    cpSync(join(ROOT, 'node_modules/@types/express-session'), join(sub, 'node_modules/@types/express-session'), {
      recursive: true,
    });
    writeFileSync(
      join(sub, 'app.ts'),
      `import express from 'express';
import { session, sessionErrors } from 'shoal/express-session';

declare module 'express-session' {
  interface SessionData { views: number }
}
const app = express();
app.use(session({ secret: ['x'.repeat(40)], resave: false, saveUninitialized: false }));
app.get('/', (req, res) => {
  req.session.views = (req.session.views ?? 0) + 1;
  req.session.save((err) => res.json({ views: req.session.views, failed: err !== undefined }));
});
app.use(sessionErrors());
`,
    );
    writeFileSync(
      join(sub, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          ...STRICT_TSCONFIG.compilerOptions,
          skipLibCheck: false,
          exactOptionalPropertyTypes: true,
          types: ['node', 'express-session'],
        },
        files: ['app.ts'],
      }),
    );
    const tsc = join(project.dir, 'node_modules/.bin/tsc');
    // What `tsc --listFilesOnly` lists for it (test/consumer/list-files.mjs).
    const config = join(sub, 'tsconfig.json');
    const printed = await project.exec(process.execPath, [listFiles(), config]);
    const listed = (
      JSON.parse(printed.split('\n').find((l) => l.startsWith('{')) ?? printed) as Record<string, string[]>
    )[config];
    expect(listed?.some((f) => f.endsWith('/dropin-types/app.ts'))).toBe(true);
    expect(listed?.join('\n')).not.toMatch(/shoal\/dist\/http\/express\.d\.ts/);
    await project.exec(tsc, ['-p', config]);
  }, 120_000);

  it('exposes only the documented entry points', async () => {
    const load = (name: string) =>
      project.exec(process.execPath, ['--input-type=module', '-e', `await import('${name}')`]);
    for (const entry of ['shoal', 'shoal/express', 'shoal/client', 'shoal/stores/redis', 'shoal/bus/nats']) {
      await load(entry);
    }
    await expect(load('shoal/session/manager')).rejects.toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
    await expect(load('shoal/dist/index.js')).rejects.toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  }, 60_000);
});

/**
 * test/consumer/list-files.mjs copied into the project (so it loads the project's TypeScript): what
 * `tsc -p <config> --listFilesOnly` lists, for several configs in one process.
 */
function listFiles(): string {
  const path = join(project.dir, 'list-files.mjs');
  copyFileSync(join(ROOT, 'test/consumer/list-files.mjs'), path);
  return path;
}

/** Every entry point of the exports map but the manifest itself. */
function entryPoints(): string[] {
  const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { exports: Record<string, unknown> };
  return Object.keys(manifest.exports)
    .filter((k) => k !== './package.json')
    .map((k) => (k === '.' ? 'shoal' : `shoal/${k.slice(2)}`));
}

// Many apps, and most existing express-session apps, are CommonJS: no "type" in package.json.
describe('a CommonJS project', () => {
  const write = (file: string, text: string) => {
    mkdirSync(dirname(join(project.dir, file)), { recursive: true });
    writeFileSync(join(project.dir, file), text);
  };
  // Its own package.json makes cjs/ a CommonJS package inside the (ESM) consumer project.
  beforeAll(() => write('cjs/package.json', JSON.stringify({ type: 'commonjs' })));

  it('loads every entry point with require()', async () => {
    write(
      'cjs/require-all.js',
      `for (const entry of ${JSON.stringify(entryPoints())}) require(entry);
const { session } = require('shoal/express-session');
if (typeof session !== 'function') throw new Error('shoal/express-session has no session()');
console.log('required');`,
    );
    expect(await project.exec(process.execPath, ['cjs/require-all.js'])).toContain('required');
  }, 60_000);

  it("recognizes shoal's errors across the copy the CLI runs and the copy a CommonJS app requires", async () => {
    write(
      'cjs/errors.ts',
      `import { RpcError, StoreUnavailableError } from 'shoal';
export default { RpcError, StoreUnavailableError };
`,
    );
    // As the CLI loads an app: tsx's hooks registered, shoal imported as ESM, the app as CommonJS.
    write(
      'cjs-check.mjs',
      `import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';
registerCjs();
register();
const esm = await import('shoal');
const loaded = (await import('./cjs/errors.ts')).default;
const cjs = loaded.default ?? loaded;
const outage = new esm.StoreUnavailableError('redis', 'down');
const refused = new cjs.RpcError('out_of_stock', 'sold out');
console.log(JSON.stringify({
  twoCopies: cjs.StoreUnavailableError !== esm.StoreUnavailableError,
  outage: outage instanceof cjs.StoreUnavailableError,
  refused: refused instanceof esm.RpcError,
  notOther: outage instanceof cjs.RpcError,
}));`,
    );
    const out = await project.exec(process.execPath, ['cjs-check.mjs']);
    expect(JSON.parse(out.trim().split('\n').at(-1) ?? '{}')).toEqual({
      twoCopies: true,
      outage: true,
      refused: true,
      notOther: false,
    });
  }, 60_000);

  describe('its TypeScript app under shoal start --web 2', () => {
    let cluster: DevCluster;

    beforeAll(async () => {
      write(
        'cjs/app.ts',
        `import express from 'express';
import { defineApp } from 'shoal';
import { session } from 'shoal/express';

export default defineApp({
  web({ sessions, nodeId }) {
    const app = express();
    app.use(session(sessions));
    app.post('/count', async (req, res) => {
      const n = await req.session.increment('n', 1);
      res.json({ n, nodeId });
    });
    return app;
  },
});
`,
      );
      const port = await freePortRun(3);
      cluster = await startDevCluster({
        app: 'cjs/app.ts',
        web: 2,
        gateways: 0,
        port,
        cwd: project.dir,
        cli: [join(project.dir, 'node_modules/shoal/bin/shoal.js')],
        env: { SHOAL_STORE: `sqlite:${join(project.dir, `.shoal/${port}.db`)}` },
      });
    }, 120_000);

    afterAll(async () => {
      await cluster?.stop();
    });

    it('serves one session from both web nodes', async () => {
      const browser = new CookieJar();
      const answers: Array<{ n: number; nodeId: string }> = [];
      for (let i = 0; i < 4; i++) {
        const res = await browser.fetch(`${cluster.url}/count`, { method: 'POST' });
        expect(res.status).toBe(200);
        answers.push((await res.json()) as { n: number; nodeId: string });
      }
      expect(answers.map((a) => a.n)).toEqual([1, 2, 3, 4]);
      expect(new Set(answers.map((a) => a.nodeId)).size).toBe(2);
    }, 30_000);
  });
});

const backends = [
  { name: 'sqlite', skip: undefined as string | undefined, env: {} as Record<string, string> },
  {
    name: 'redis (no SHOAL_BUS: the bus follows the store)',
    skip: redisSkip,
    env: { SHOAL_STORE: ENGINE_URLS.redis, SHOAL_NAMESPACE: `consumer-${process.pid}` },
  },
];

describe.each(backends)('the getting-started app under shoal start --web 2 --gateways 1, $name', ({ skip, env }) => {
  let cluster: DevCluster;

  beforeAll(async () => {
    if (skip) return;
    const port = await freePortRun(4); // the balancer, 2 web nodes and a gateway
    cluster = await startDevCluster({
      app: 'getting-started/app.ts',
      web: 2,
      gateways: 1,
      port,
      cwd: project.dir,
      cli: [join(project.dir, 'node_modules/shoal/bin/shoal.js')],
      env: { SHOAL_STORE: `sqlite:${join(project.dir, `.shoal/${port}.db`)}`, ...env },
    });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it.skipIf(skip)(
    'signs in, pushes the cart to the socket from any web node, and closes it with 4001 on logout',
    async () => {
      const { connect } = (await import(
        pathToFileURL(join(project.dir, 'node_modules/shoal/dist/client/index.js')).href
      )) as typeof import('shoal/client');
      const browser = new CookieJar();
      const post = (path: string, body: unknown) =>
        browser.fetch(`${cluster.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });

      // The ops dashboard's page script ships compiled in the package.
      const script = await fetch(`${cluster.url}/_shoal/assets/main.js`);
      expect(script.status).toBe(200);
      expect(await script.text()).toContain("from './math.js'");

      expect((await post('/login', { name: 'ann' })).status).toBe(200);
      // Plain-HTTP mode of the dev cluster: the cookie both tiers read is shoal.sid.
      expect(browser.cookie).toMatch(/^shoal\.sid=/);

      const origin = cluster.url;
      const cookie = browser.cookie;
      class NodeWebSocket extends WebSocket {
        constructor(url: string) {
          super(url, { headers: { cookie, origin } });
        }
      }
      const rt = connect<{ 'cart.changed': { cart: string[] } }>(`${cluster.url}/ws`, {
        WebSocket: NodeWebSocket as never,
        transport: 'websocket',
      });
      const carts: string[][] = [];
      const states: Array<{ state: string; code?: number }> = [];
      rt.on('state', (state, detail) => states.push({ state, ...(detail.code ? { code: detail.code } : {}) }));
      const hello = await new Promise<{ user: string | null; channels: string[] }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no hello; states: ${JSON.stringify(states)}`)), 10_000);
        rt.on('hello', (h) => {
          clearTimeout(timer);
          resolve(h);
        });
      });
      expect(hello.user).toBe('ann');
      for (const channel of hello.channels) {
        rt.subscribe(channel, (m) => {
          if (m.event === 'cart.changed') carts.push(m.data.cart);
        });
      }
      await new Promise((r) => setTimeout(r, 200)); // the subscriptions reach the gateway

      // Two requests, two web nodes (round-robin): both items kept, both pushes arrive.
      expect((await post('/cart', { item: 'tea' })).status).toBe(200);
      expect((await post('/cart', { item: 'cake' })).status).toBe(200);
      await until(
        () => carts.length >= 2,
        5_000,
        () => `carts: ${JSON.stringify(carts)}`,
      );
      expect(carts.at(-1)).toEqual(['tea', 'cake']);

      expect((await post('/logout', {})).status).toBe(200);
      await until(
        () => states.some((s) => s.state === 'ended'),
        5_000,
        () => `states: ${JSON.stringify(states)}`,
      );
      expect(states.find((s) => s.state === 'ended')?.code).toBe(4001);
      rt.close();
    },
    60_000,
  );
});

async function until(done: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
  await eventually(done, { timeoutMs, intervalMs: 25, message: describe });
}
