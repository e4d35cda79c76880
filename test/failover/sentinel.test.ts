import { afterAll, describe, expect, it } from 'vitest';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { expectFailoverHeld, printFigures, runFailoverLoad } from './fixtures/load.js';
import { type SentinelFixture, startSentinel } from './fixtures/redis-sentinel.js';
import { type Stack, startStack } from './fixtures/stack.js';

/**
 * Redis with Sentinel (1 primary, 1 replica, 3 sentinels) as store and bus of 3 web nodes and 2
 * gateways under load; the primary is SIGKILLed. The sentinels call it down after 1 s
 * (down-after-milliseconds) and promote the replica; clients follow through `redis+sentinel://`.
 */
const RECOVERY_BOUND_MS = 10_000;
const skip = binariesSkipReason(['redis-server', '--version'], ['redis-sentinel', '--version']);

describe.skipIf(skip !== undefined)('failover: Redis Sentinel', () => {
  let sentinel: SentinelFixture | undefined;
  let stack: Stack | undefined;
  afterAll(async () => {
    await stack?.stop();
    await sentinel?.stop();
  });

  it('loses no message, answers 503 + Retry-After while the primary is down, and writes again within the bound', async () => {
    sentinel = await startSentinel();
    stack = await startStack({ name: 'sentinel', store: sentinel.url, bus: sentinel.url });
    const primary = await sentinel.primary();
    const figures = await runFailoverLoad({
      engine: 'redis sentinel',
      stack,
      channel: 'room:failover-sentinel',
      durationMs: 12_000,
      faultAtMs: 3000,
      fault: () => primary.kill('SIGKILL'),
    }).catch((err: unknown) => {
      // What the sentinels did about the dead primary: whether, and when, they promoted the replica.
      const events = (sentinel?.sentinels ?? []).map(
        (s) =>
          `${s.name}: ${s
            .output()
            .split('\n')
            .filter((line) =>
              /[+-](sdown|odown|try-failover|elected-leader|failover|switch-master|vote|new-epoch)/.test(line),
            )
            .map((line) => line.replace(/^\d+:X /, '').slice(0, 120))
            .join(' · ')}`,
      );
      throw new Error(`${err instanceof Error ? err.message : String(err)}\nsentinels: ${events.join('\n')}`, {
        cause: err,
      });
    });
    printFigures(figures);
    expect((await sentinel.primary()).port).not.toBe(primary.port);
    expectFailoverHeld(figures, { boundMs: RECOVERY_BOUND_MS });
  }, 90_000);
});
