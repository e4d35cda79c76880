import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { doctor } from '../../src/cli/doctor.js';
import { runCli } from '../helpers/cli.js';
import { ENGINE_URLS, engineSkipReason, redisUrlWithDatabase } from '../helpers/engines.js';
import { freePort, ROOT } from '../helpers/processes.js';

const redisSkip = await engineSkipReason('redis');
const dir = mkdtempSync(join(tmpdir(), 'shoal-doctor-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const REALTIME_APP = join(dir, 'realtime.app.mjs');
writeFileSync(
  REALTIME_APP,
  `export default { async web() { return { handler: (req, res) => res.end(), async close() {} }; }, realtime: {} };\n`,
);

/** A configuration every node accepts: the baseline each case breaks one thing of. */
const good = (): NodeJS.ProcessEnv => ({
  SHOAL_STORE: `sqlite:${join(dir, 'doctor.db')}`,
  SHOAL_SECRETS: SECRET,
  SHOAL_ORIGINS: 'http://localhost:8080',
});

async function diagnose(env: NodeJS.ProcessEnv, app: string | undefined = REALTIME_APP) {
  const lines: string[] = [];
  const code = await doctor(env, { app, print: (l) => lines.push(l) });
  return { code, text: lines.join('\n') };
}

describe('shoal doctor', () => {
  it('passes a configuration every node accepts', async () => {
    const r = await diagnose(good());
    expect(r.text).toMatch(/^ok {4}app module .*realtime\.app\.mjs loads/m);
    expect(r.text).toMatch(/^ok {4}session store sqlite:/m);
    expect(r.text).toMatch(/^ok {4}session settings: idle 1800 s, absolute 43200 s/m);
    expect(r.text).toMatch(/^ok {4}message bus \(SHOAL_BUS unset: the default\) sqlite:/m);
    expect(r.text).toMatch(/no problems found/);
    expect(r.code).toBe(0);
  });

  it('fails a secret shorter than 32 characters, as the nodes refuse it', async () => {
    const r = await diagnose({ ...good(), SHOAL_SECRETS: 'short' });
    expect(r.text).toMatch(/^FAIL {2}SHOAL_SECRETS: a session secret is 5 characters long; use at least 32/m);
    expect(r.text).not.toMatch(/no problems found/);
    expect(r.code).toBe(1);
  });

  it('fails when SHOAL_SECRETS is not set and says how to make one', async () => {
    const r = await diagnose({ ...good(), SHOAL_SECRETS: undefined });
    expect(r.text).toMatch(/^FAIL {2}SHOAL_SECRETS is not set: .*openssl rand -base64 48/m);
    expect(r.code).toBe(1);
  });

  it('fails an origin no browser sends (a path) and names the form to write', async () => {
    const r = await diagnose({ ...good(), SHOAL_ORIGINS: 'https://app.example.com/login' });
    expect(r.text).toMatch(/^FAIL {2}SHOAL_ORIGINS has "https:\/\/app\.example\.com\/login", which no browser sends/m);
    expect(r.text).toMatch(/^ {6}fix: write it as the browser sends it: https:\/\/app\.example\.com$/m);
    expect(r.code).toBe(1);
  });

  it('fails origins without a scheme or that are no URL, each with its fix, and keeps a trailing slash and "*"', async () => {
    const r = await diagnose({ ...good(), SHOAL_ORIGINS: '127.0.0.1:23100,not-a-url' });
    expect(r.text).toMatch(/^FAIL {2}SHOAL_ORIGINS has "127\.0\.0\.1:23100", "not-a-url", which no browser sends/m);
    expect(r.text).toMatch(
      /^ {6}fix: "127\.0\.0\.1:23100": write it as the browser sends it: http:\/\/127\.0\.0\.1:23100; "not-a-url": write it as scheme:\/\/host\[:port\]/m,
    );
    expect(r.code).toBe(1);
    expect((await diagnose({ ...good(), SHOAL_ORIGINS: 'http://localhost:8080/' })).code).toBe(0);
    const any = await diagnose({ ...good(), SHOAL_ORIGINS: '*' });
    expect(any.text).toMatch(/^warn {2}SHOAL_ORIGINS is "\*"/m);
    expect(any.code).toBe(0);
  });

  it("fails an app module's realtime.origins given as one string, saying to pass a list", async () => {
    const single = join(dir, 'single-origin.app.mjs');
    writeFileSync(
      single,
      `export default { async web() { return { handler: (q, s) => s.end(), async close() {} }; }, realtime: { origins: 'http://127.0.0.1:24850' } };\n`,
    );
    const r = await diagnose(good(), single);
    expect(r.text).toMatch(/^FAIL {2}realtime\.origins must be a list of origins, not a string$/m);
    expect(r.text).toMatch(/^ {6}fix: pass \['http:\/\/127\.0\.0\.1:24850'\]$/m);
    expect(r.code).toBe(1);
  });

  it('fails missing origins when the app has realtime rules, warns when it has none', async () => {
    const withRealtime = await diagnose({ ...good(), SHOAL_ORIGINS: undefined });
    expect(withRealtime.text).toMatch(/^FAIL {2}SHOAL_ORIGINS is not set.*: gateways refuse to start/m);
    expect(withRealtime.code).toBe(1);
    const webOnly = join(dir, 'web-only.app.mjs');
    writeFileSync(
      webOnly,
      `export default { async web() { return { handler: (q, s) => s.end(), async close() {} }; } };\n`,
    );
    const withoutRealtime = await diagnose({ ...good(), SHOAL_ORIGINS: undefined }, webOnly);
    expect(withoutRealtime.text).toMatch(/^warn {2}SHOAL_ORIGINS is not set/m);
    expect(withoutRealtime.code).toBe(0);
  });

  it('fails an app module that does not load, with its error', async () => {
    const broken = join(dir, 'broken.app.mjs');
    writeFileSync(broken, 'export default {\n');
    const r = await diagnose(good(), broken);
    expect(r.text).toMatch(/^FAIL {2}could not load the app module .*broken\.app\.mjs/m);
    expect(r.code).toBe(1);
    const missing = await diagnose(good(), join(dir, 'nope.app.mjs'));
    expect(missing.text).toMatch(/^FAIL {2}could not load the app module .*nope\.app\.mjs/m);
    expect(missing.code).toBe(1);
  });

  it('fails a store that does not answer and says to start it or point SHOAL_STORE elsewhere', async () => {
    const port = await freePort();
    const r = await diagnose({ ...good(), SHOAL_STORE: `redis://127.0.0.1:${port}`, SHOAL_BUS: 'memory:' });
    expect(r.text).toMatch(new RegExp(`^FAIL {2}session store redis://127\\.0\\.0\\.1:${port}`, 'm'));
    expect(r.text).toMatch(/^ {6}fix: start it, or point SHOAL_STORE at one that runs/m);
    expect(r.code).toBe(1);
  }, 30_000);

  it('fails a bus that does not answer, the one the nodes would use', async () => {
    const port = await freePort();
    const r = await diagnose({ ...good(), SHOAL_BUS: `redis://127.0.0.1:${port}` });
    expect(r.text).toMatch(/^ok {4}session store/m);
    expect(r.text).toMatch(new RegExp(`^FAIL {2}message bus redis://127\\.0\\.0\\.1:${port}`, 'm'));
    expect(r.text).toMatch(/^ {6}fix: start it, or point SHOAL_BUS at one that runs/m);
    expect(r.code).toBe(1);
  }, 30_000);

  it.skipIf(redisSkip !== undefined)(
    'fails a Redis database the server does not have, rather than reporting database 0 as answering',
    async () => {
      const raw = new Redis(ENGINE_URLS.redis, { maxRetriesPerRequest: 1 });
      const count = Number(((await raw.config('GET', 'databases')) as string[])[1]);
      await raw.quit();
      const url = redisUrlWithDatabase(count);
      const r = await diagnose({ ...good(), SHOAL_STORE: url, SHOAL_BUS: 'memory:' });
      expect(r.text).toContain(
        `FAIL  session store ${url}: Redis refused database ${count} (ERR DB index is out of range); ` +
          `this server has ${count} databases (the "databases" setting in redis.conf): use 0–${count - 1}`,
      );
      expect(r.text).not.toMatch(/fix: start it/);
      expect(r.code).toBe(1);
    },
    30_000,
  );

  it('fails a malformed bus URL with what to write', async () => {
    const r = await diagnose({ ...good(), SHOAL_BUS: 'kafka://broker:9092' });
    expect(r.text).toMatch(/^FAIL {2}message bus kafka:\/\/broker:9092: /m);
    expect(r.code).toBe(1);
  });

  it('fails a bad duration, a bad connection limit and a short dashboard token, each by name', async () => {
    const r = await diagnose({
      ...good(),
      SHOAL_DRAIN_TIMEOUT: 'soon',
      SHOAL_MAX_CONNECTIONS_PER_USER: 'lots',
      SHOAL_DASHBOARD_TOKEN: 'tiny',
    });
    expect(r.text).toMatch(/^FAIL {2}SHOAL_DRAIN_TIMEOUT "soon" is not a duration/m);
    expect(r.text).toMatch(/^FAIL {2}.*SHOAL_MAX_CONNECTIONS_PER_USER/m);
    expect(r.text).toMatch(/^FAIL {2}.*SHOAL_DASHBOARD_TOKEN is 4 characters long/m);
    expect(r.text).toMatch(/^3 problems found$/m);
    expect(r.code).toBe(1);
  });

  it('fails a short SHOAL_TOKEN_SECRET, as a gateway refuses it, and lists a good one', async () => {
    const bad = await diagnose({ ...good(), SHOAL_TOKEN_SECRET: 'short' });
    expect(bad.text).toMatch(/^FAIL {2}.*SHOAL_TOKEN_SECRET must be at least 32 characters/m);
    expect(bad.code).toBe(1);
    const ok = await diagnose({ ...good(), SHOAL_TOKEN_SECRET: 'x'.repeat(32) });
    expect(ok.text).toMatch(/^ok {4}connection tokens on gateways.*HS256 secret/m);
    expect(ok.code).toBe(0);
  });

  it('fails a SHOAL_COOKIE_SECURE that is neither true nor false', async () => {
    const r = await diagnose({ ...good(), SHOAL_COOKIE_SECURE: 'yes' });
    expect(r.text).toMatch(/^FAIL {2}SHOAL_COOKIE_SECURE must be true or false, got "yes"/m);
    expect(r.code).toBe(1);
  });

  it('warns when the store is not a bus and the bus falls back to a file on this machine', async () => {
    const r = await diagnose({ ...good(), SHOAL_STORE: 'memcached://127.0.0.1:11211' });
    expect(r.text).toMatch(/^warn {2}the bus is sqlite:.*a file only processes on this machine share.*set SHOAL_BUS/m);
  }, 30_000);

  it.each([
    ['SHOAL_IDLE_TIMEOUT', 'bogus', /SHOAL_IDLE_TIMEOUT "bogus" is not a duration/],
    ['SHOAL_ABSOLUTE_TIMEOUT', '-5', /SHOAL_ABSOLUTE_TIMEOUT "-5" is not a duration/],
    ['SHOAL_SWEEP_INTERVAL', 'zz', /SHOAL_SWEEP_INTERVAL "zz" is not a duration/],
    ['SHOAL_MAX_SIZE', 'abc', /SHOAL_MAX_SIZE must be a positive whole number/],
    ['SHOAL_ENCRYPTION_KEYS', 'notbase64', /encryption key #1/],
  ])('fails the session setting %s=%s, as a web node refuses it', async (name, value, message) => {
    const r = await diagnose({ ...good(), [name]: value });
    expect(r.code).toBe(1);
    expect(r.text).toMatch(/^FAIL {2}session settings: /m);
    expect(r.text).toMatch(message);
  });

  it('agrees with `shoal web`: what doctor fails, the web node refuses', async () => {
    const env = { ...good(), SHOAL_SECRETS: 'short', SHOAL_STORE: `sqlite:${join(dir, 'web.db')}` };
    const app = join(ROOT, 'examples/probe/shoal.app.ts');
    const [diagnosis, web] = await Promise.all([
      runCli(['doctor', '--app', app], { env }),
      runCli(['web', '--app', app, '--port', String(await freePort())], { env }),
    ]);
    expect(diagnosis.code).toBe(1);
    expect(diagnosis.stdout).toMatch(/FAIL {2}SHOAL_SECRETS: a session secret is 5 characters long/);
    expect(web.code).toBe(78);
    expect(web.stderr.trim()).toMatch(/^shoal: a session secret is 5 characters long/);
  }, 90_000);
});
