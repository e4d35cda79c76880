import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, captureOutput, freePort, ROOT } from '../helpers/processes.js';

/**
 * The CLI as a user installs it: compiled JavaScript on plain Node (the repo's dist/, current for
 * the run: test/global-setup.ts), no TypeScript loader of its own, in a project outside the
 * repository. Its .ts app and config modules load through the project's tsx, or the CLI says in one
 * line how to make them load.
 */
const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const projects: string[] = [];
const children: ChildProcess[] = [];

const APP_TS = `import type { IncomingMessage, ServerResponse } from 'node:http';

interface Greeting { text: string }
const greeting: Greeting = { text: 'hello from TypeScript' };

export default {
  async web() {
    return {
      handler(_req: IncomingMessage, res: ServerResponse): void {
        res.end(greeting.text);
      },
      async close(): Promise<void> {},
    };
  },
  realtime: {},
};
`;

const CONFIG_TS = `const web: number = 1;
export default { app: './shoal.app.ts', web } satisfies { app: string; web: number };
`;

/** A project dir outside the repo with the two modules; tsx linked into its node_modules when asked. */
function project(withTsx: boolean): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-ts-project-'));
  projects.push(dir);
  writeFileSync(join(dir, 'package.json'), '{ "name": "my-app", "private": true, "type": "module" }\n');
  writeFileSync(join(dir, 'shoal.app.ts'), APP_TS);
  writeFileSync(join(dir, 'shoal.config.ts'), CONFIG_TS);
  if (withTsx) {
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(join(ROOT, 'node_modules/tsx'), join(dir, 'node_modules/tsx'), 'dir');
  }
  return dir;
}

function env(dir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_OPTIONS: '',
    NODE_PATH: '',
    SHOAL_STORE: `sqlite:${join(dir, 'shoal.db')}`,
    SHOAL_SECRETS: SECRET,
    SHOAL_ORIGINS: 'http://localhost:8080',
  };
}

async function cli(dir: string, args: string[]) {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: env(dir),
      timeout: 60_000,
    });
    return { code: 0, ...r };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? null, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of projects) rmSync(d, { recursive: true, force: true });
});

describe('TypeScript app and config modules from the installed CLI', () => {
  it('load through the project’s tsx: shoal.config.ts names shoal.app.ts, doctor loads both', async () => {
    const r = await cli(project(true), ['doctor']);
    expect(r.stdout).toMatch(/^ok {4}app module \.\/shoal\.app\.ts loads/m);
    expect(r.stdout).toMatch(/no problems found/);
    expect(r.code).toBe(0);
  }, 90_000);

  it('serve: shoal web --app shoal.app.ts answers with the TypeScript handler', async () => {
    const dir = project(true);
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'web', '--port', String(port)], {
      cwd: dir,
      env: env(dir),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    const out = captureOutput(child);
    const deadline = Date.now() + 60_000;
    let body = '';
    while (!body) {
      if (child.exitCode !== null) throw new Error(`shoal web exited (${child.exitCode}):\n${out()}`);
      if (Date.now() > deadline) throw new Error(`shoal web did not answer:\n${out()}`);
      body = await fetch(`http://127.0.0.1:${port}/`).then(
        (r) => r.text(),
        () => '',
      );
      if (!body) await new Promise((r) => setTimeout(r, 200));
    }
    expect(body).toBe('hello from TypeScript');
  }, 90_000);

  // Newer Node strips types on its own; Node 20, which the package supports, cannot.
  const stripsTypes = Boolean((process.features as { typescript?: unknown }).typescript);

  it.skipIf(stripsTypes)(
    'without tsx: one line naming the fix, exit 78',
    async () => {
      const r = await cli(project(false), ['doctor']);
      expect(r.stderr.trim()).toMatch(
        /^shoal: .*shoal\.config\.ts is TypeScript, which Node [\d.]+ cannot load on its own: install tsx \(npm i -D tsx\), or compile it to \.js$/,
      );
      expect(r.code).toBe(78);
    },
    90_000,
  );

  it.skipIf(stripsTypes)(
    'without tsx: --app shoal.app.ts gets the same hint from shoal web',
    async () => {
      const dir = project(false);
      rmSync(join(dir, 'shoal.config.ts'));
      const r = await cli(dir, ['web', '--app', 'shoal.app.ts', '--port', String(await freePort())]);
      expect(r.stderr.trim()).toMatch(
        /^shoal: shoal\.app\.ts is TypeScript, .*install tsx \(npm i -D tsx\), or compile it to \.js$/,
      );
      expect(r.code).toBe(78);
    },
    90_000,
  );
});
