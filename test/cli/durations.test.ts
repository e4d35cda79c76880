import { createBus, createStore, defineSession, parseDuration } from 'shoal';
import { describe, expect, it } from 'vitest';
import { cliScratch, runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/processes.js';

/**
 * A duration read from the environment, a flag or a URL needs its unit: "5" could be 5 ms or 5 s,
 * and taken as milliseconds it ends every session at once. Numbers in code stay milliseconds.
 */
const { env } = cliScratch('durations');

describe('durations from outside the code', () => {
  it('parseDuration refuses text without a unit and keeps numbers as milliseconds', () => {
    expect(() => parseDuration('5', 'SHOAL_IDLE_TIMEOUT')).toThrow(
      /^SHOAL_IDLE_TIMEOUT "5" has no unit: write 5s, 5m or 5ms \(units ms, s, m, h, d\)$/,
    );
    expect(parseDuration(5)).toBe(5);
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1500);
  });

  it('a store or bus URL ?timeout= needs a unit', async () => {
    await expect(createStore('memory:?timeout=500')).rejects.toThrow(
      /^the store URL's \?timeout= "500" has no unit: write 500s, 500m or 500ms/,
    );
    // The bus defaults to the store's URL, so its ?timeout= is read the same way, not ignored.
    await expect(createBus('memory:?timeout=2')).rejects.toThrow(
      /^the bus URL's \?timeout= "2" has no unit: write 2s, 2m or 2ms/,
    );
    await expect(createBus('memory:?timeout=abc')).rejects.toThrow(/^the bus URL's \?timeout= "abc" is not a duration/);
    // A misspelt one is named rather than passed to the driver, which would ignore it.
    await expect(createStore('memory:?tiemout=2s')).rejects.toThrow(
      /^the store URL's \?tiemout= is not a setting shoal reads; did you mean \?timeout=\?$/,
    );
    await expect(createBus('memory:?a=1&timeOut=2s')).rejects.toThrow(/^the bus URL's \?timeOut= is not a setting/);
    // The same for every setting shoal reads from a URL: a lost ?waitReplicas= would drop the replica wait.
    await expect(createStore('memory:?waitReplica=1')).rejects.toThrow(
      /^the store URL's \?waitReplica= is not a setting shoal reads; did you mean \?waitReplicas=\?$/,
    );
    await expect(createBus('memory:?norandomize=1')).rejects.toThrow(/did you mean \?noRandomize=\?$/);
    await expect(createBus('memory:?replica=3')).rejects.toThrow(/did you mean \?replicas=\?$/);
    const bus = await createBus('memory:?timeout=2s');
    await bus.close();
  });

  it('doctor fails SHOAL_IDLE_TIMEOUT=5 by name, and an idle timeout under a second', async () => {
    const bare = await runCli(['doctor'], { env: env({ SHOAL_IDLE_TIMEOUT: '5' }) });
    expect(bare.stdout).toMatch(/^FAIL {2}session settings: SHOAL_IDLE_TIMEOUT "5" has no unit: write 5s, 5m or 5ms/m);
    expect(bare.stdout).not.toMatch(/no problems found/);
    expect(bare.code).toBe(1);
    const tiny = await runCli(['doctor'], { env: env({ SHOAL_IDLE_TIMEOUT: '500ms', SHOAL_ABSOLUTE_TIMEOUT: '2s' }) });
    expect(tiny.stdout).toMatch(
      /^FAIL {2}session settings: the idle timeout is 0\.5 s, so every session ends 0\.5 s after its last request/m,
    );
    expect(tiny.stdout).toMatch(/^ {6}fix: .*e\.g\. SHOAL_IDLE_TIMEOUT=30m/m);
    expect(tiny.code).toBe(1);
  }, 60_000);

  it('doctor fails an absolute timeout shorter than the idle one', async () => {
    const r = await runCli(['doctor'], { env: env({ SHOAL_IDLE_TIMEOUT: '30m', SHOAL_ABSOLUTE_TIMEOUT: '10m' }) });
    expect(r.stdout).toMatch(
      /^FAIL {2}session settings: the absolute timeout \(600 s\) is shorter than the idle timeout \(1800 s\)/m,
    );
    expect(r.code).toBe(1);
  }, 30_000);

  it('doctor fails a proxy timeout and a drain setting without a unit', async () => {
    const r = await runCli(['doctor'], {
      env: env({
        SHOAL_CONNECT_PROXY_URL: 'http://127.0.0.1:8000/shoal/connect',
        SHOAL_CONNECT_PROXY_TIMEOUT: '3000',
        SHOAL_DRAIN_WINDOW: '10',
      }),
    });
    expect(r.stdout).toMatch(
      /^FAIL {2}.*SHOAL_CONNECT_PROXY_TIMEOUT "3000" has no unit: write 3000s, 3000m or 3000ms/m,
    );
    expect(r.stdout).toMatch(/^FAIL {2}SHOAL_DRAIN_WINDOW "10" has no unit: write 10s, 10m or 10ms/m);
    expect(r.code).toBe(1);
  }, 30_000);

  it('a session timeout of 0 is refused at start, from code and from the environment', async () => {
    // Accepted, it ended every session as it started, and each first write then failed with a 500.
    const store = await createStore('memory:');
    const secrets = ['a-test-secret-of-at-least-32-characters-0123456789'];
    expect(() => defineSession({ store, secrets, idleTimeout: 0 })).toThrow(
      /^idleTimeout must be longer than 0 \(got 0\), e\.g\. '30m'$/,
    );
    expect(() => defineSession({ store, secrets, absoluteTimeout: '0' })).toThrow(
      /^absoluteTimeout must be longer than 0/,
    );
    expect(() => defineSession({ store, secrets, sweep: { interval: 0 } })).toThrow(/^sweep\.interval must be longer/);
    const port = String(await freePort());
    const r = await runCli(['web', '--app', 'nope.mjs', '--port', port], { env: env({ SHOAL_IDLE_TIMEOUT: '0' }) });
    expect(r.code).toBe(78);
    expect(r.stderr.trim()).toBe('shoal: SHOAL_IDLE_TIMEOUT must be longer than 0 (got "0"), e.g. 30m');
    await store.close();
  }, 60_000);

  it('a web node refuses a flag or a variable without a unit, in one line', async () => {
    const port = String(await freePort());
    const flag = await runCli(['web', '--app', 'nope.mjs', '--port', port, '--drain-timeout', '30'], { env: env({}) });
    expect(flag.code).toBe(2);
    expect(flag.stderr.trim()).toBe(
      'shoal: --drain-timeout "30" has no unit: write 30s, 30m or 30ms (units ms, s, m, h, d)',
    );
    const variable = await runCli(['web', '--app', 'nope.mjs', '--port', port], {
      env: env({ SHOAL_IDLE_TIMEOUT: '5' }),
    });
    expect(variable.code).toBe(78);
    expect(variable.stderr.trim()).toBe(
      'shoal: SHOAL_IDLE_TIMEOUT "5" has no unit: write 5s, 5m or 5ms (units ms, s, m, h, d)',
    );
  }, 60_000);
});
