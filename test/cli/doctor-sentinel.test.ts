import { afterAll, describe, expect, it } from 'vitest';
import { binariesSkipReason } from '../failover/fixtures/engine-process.js';
import { type SentinelFixture, startSentinel } from '../failover/fixtures/redis-sentinel.js';
import { runCli } from '../helpers/cli.js';

/**
 * A Sentinel set whose sentinels know no replica cannot fail over: a dead primary is never replaced.
 * shoal doctor warns about it (a warning: the store works until the primary fails), and says nothing
 * when the sentinels know a replica.
 */
const skip = binariesSkipReason(['redis-server', '--version'], ['redis-sentinel', '--version']);
const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';
const sets: SentinelFixture[] = [];
afterAll(() => Promise.all(sets.map((s) => s.stop())));

const doctor = (url: string) => runCli(['doctor'], { env: { SHOAL_STORE: url, SHOAL_SECRETS: SECRET } });

// Two sets of their own, nothing changed in either: side by side.
describe.skipIf(skip !== undefined)('shoal doctor on Redis Sentinel', { concurrent: true }, () => {
  it('warns when the sentinels know no replica to promote; the store itself is ok', async () => {
    const alone = await startSentinel({ replicas: 0, sentinels: 2 });
    sets.push(alone);
    const r = await doctor(alone.url);
    expect(r.stdout).toMatch(/^ok {4}session store redis\+sentinel:/m);
    const line = r.stdout.split('\n').find((l) => l.includes('know no replica')) ?? r.stdout;
    expect(line).toMatch(/^warn {2}the sentinels know no replica of mymaster: if its primary fails/);
    expect(line).toMatch(/Run a replica/);
    expect(r.code).toBe(0);
  }, 60_000);

  it('says nothing of replicas when the sentinels know one', async () => {
    const set = await startSentinel({ replicas: 1, sentinels: 2 });
    sets.push(set);
    const r = await doctor(set.url);
    expect(r.stdout).toMatch(/^ok {4}session store redis\+sentinel:/m);
    expect(r.stdout).not.toMatch(/know no replica/);
  }, 60_000);
});
