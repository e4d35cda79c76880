import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { redact } from '../../src/core/url.js';
import { SessionManager } from '../../src/session/manager.js';
import { createStore } from '../../src/stores/index.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { faultProxy, targetOf, viaProxy } from '../helpers/fault-proxy.js';

/**
 * A Redis store that becomes unreachable (its TCP proxy goes down) while the sweeper polls it
 * every 50 ms: the outage is logged once when it starts and once when it ends, not per failed claim.
 */
const skip = await engineSkipReason('redis');

describe.skipIf(skip !== undefined)('the sweeper while the store is unreachable', () => {
  const closers: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  });

  it('logs the outage once when it starts and once when the store is back', async () => {
    const proxy = await faultProxy(targetOf(ENGINE_URLS.redis));
    closers.push(() => proxy.close());
    const url = `${viaProxy(ENGINE_URLS.redis, proxy)}?timeout=200ms`;
    const store = await createStore(url, { namespace: `outage-${randomBytes(4).toString('hex')}` });
    closers.push(() => store.close());
    const lines: Array<{ level: string; msg: string }> = [];
    const at =
      (level: string) =>
      (_obj: object, msg = '') =>
        lines.push({ level, msg });
    const manager = new SessionManager({
      store,
      storeLabel: redact(url),
      secrets: [randomBytes(32).toString('base64url')],
      sweep: { interval: 50 },
      onSessionEnd: () => {},
      logger: { info: at('info'), warn: at('warn'), error: at('error') },
    });
    closers.push(() => manager.close());

    await new Promise((r) => setTimeout(r, 300));
    expect(lines).toEqual([]);
    await proxy.down();
    await new Promise((r) => setTimeout(r, 2_000)); // ≥ 8 failed claims (each fails within its 200 ms timeout)
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(
      new RegExp(
        `^store redis redis://127\\.0\\.0\\.1:${proxy.port}/0\\?timeout=200ms unreachable: .+; session end handling paused$`,
      ),
    );
    await proxy.up();
    const until = Date.now() + 5_000;
    while (!lines.some((l) => l.level === 'info') && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(lines.filter((l) => l.level === 'error')).toHaveLength(1);
    const recovered = lines.filter((l) => l.level === 'info');
    expect(recovered).toHaveLength(1);
    expect(recovered[0]?.msg).toMatch(
      /^store redis .+ reachable again after \d+ s \(\d+ failures\); session end handling resumed$/,
    );
  });
});
