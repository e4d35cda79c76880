import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cliScratch, runCli } from '../helpers/cli.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { freePort } from '../helpers/processes.js';

/** What doctor says about a store it cannot use: the cause in shoal's words, and a fix that fits it. */
const postgresSkip = await engineSkipReason('postgres');
const memcachedSkip = await engineSkipReason('memcached');
const { dir, env } = cliScratch('doctor-backends');

describe('doctor on stores it cannot use', () => {
  it('a Redis that refuses connections: no client-library internals, and to start it or correct the URL, not more time', async () => {
    // Nothing listens on the port: the connection is refused, which no ?timeout= would help.
    const url = `redis://127.0.0.1:${await freePort()}`;
    const r = await runCli(['doctor'], { env: env({ SHOAL_STORE: url, SHOAL_BUS: 'memory:' }) });
    const line = r.stdout.split('\n').find((l) => l.startsWith('FAIL  session store')) ?? '';
    expect(line).toMatch(/no connection could be made/);
    expect(line).toMatch(/Start Redis there, or correct the host and port in the store URL\.$/);
    expect(line).not.toMatch(/maxRetriesPerRequest|max retries per request|timeoutMs/);
    expect(line).not.toMatch(/\?timeout=/);
    expect(r.stdout).toMatch(/^ {6}fix: start it, or point SHOAL_STORE at one that runs$/m);
    expect(r.code).toBe(1);
  }, 30_000);

  it.skipIf(postgresSkip !== undefined)(
    'a PostgreSQL role that does not exist: fix the credentials, not "start it"',
    async () => {
      const url = new URL(ENGINE_URLS.postgres);
      url.username = 'nobody_shoal_doctor';
      url.password = '';
      const r = await runCli(['doctor'], { env: env({ SHOAL_STORE: url.href, SHOAL_BUS: 'memory:' }) });
      expect(r.stdout).toMatch(
        /^FAIL {2}session store postgres:\/\/nobody_shoal_doctor@.*(role|password|authentication)/m,
      );
      expect(r.stdout).not.toMatch(/fix: start it/);
      expect(r.stdout).toMatch(
        /^ {6}fix: the server answered and refused the user, password, database or virtual host in SHOAL_STORE: correct them/m,
      );
      expect(r.code).toBe(1);
    },
    30_000,
  );

  it('a malformed store URL is reported alone, without a warning about the bus it would imply', async () => {
    const r = await runCli(['doctor'], { env: env({ SHOAL_STORE: 'redis//127.0.0.1:6379' }) });
    // Named by the variable it came from: what to correct.
    expect(r.stdout).toMatch(
      /^FAIL {2}session store redis\/\/127\.0\.0\.1:6379: SHOAL_STORE "redis\/\/127\.0\.0\.1:6379" has an unknown scheme/m,
    );
    expect(r.stdout).not.toMatch(/the bus is sqlite/);
    expect(r.stdout).not.toMatch(/message bus/);
    expect(r.code).toBe(1);
  }, 30_000);

  it.skipIf(memcachedSkip !== undefined)(
    'onSessionEnd on memcached: refused as a web node would refuse it, not "no problems found"',
    async () => {
      const app = join(dir, 'ends.app.mjs');
      writeFileSync(app, `export default { session: { onSessionEnd() {} }, web: () => (req, res) => res.end() };\n`);
      const r = await runCli(['doctor', '--app', app], {
        env: env({ SHOAL_STORE: ENGINE_URLS.memcached, SHOAL_BUS: 'memory:' }),
      });
      expect(r.stdout).toMatch(
        /^FAIL {2}session store memcached:\/\/[^:]+:\d+: onSessionEnd needs a store that can list ended sessions; the memcached store cannot/m,
      );
      expect(r.stdout).toMatch(/^ {6}fix: point SHOAL_STORE at a sqlite:, redis:\/\/ or postgres:\/\/ store/m);
      expect(r.stdout).not.toMatch(/no problems found/);
      expect(r.code).toBe(1);

      // The same store without the handler is fine: memcached itself is not the problem.
      const plain = join(dir, 'plain.app.mjs');
      writeFileSync(plain, `export default { web: () => (req, res) => res.end() };\n`);
      const fine = await runCli(['doctor', '--app', plain], {
        env: env({ SHOAL_STORE: ENGINE_URLS.memcached, SHOAL_BUS: 'memory:' }),
      });
      expect(fine.stdout).toMatch(/^ok {4}session store memcached:/m);
    },
    30_000,
  );
});
