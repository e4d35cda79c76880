import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { binariesSkipReason } from './fixtures/engine-process.js';
import { ask } from './fixtures/probe.js';
import { type RedisClusterFixture, startRedisCluster } from './fixtures/redis-cluster.js';

/**
 * docs/deploying.md says to run Redis Cluster with cluster-require-full-coverage no: shoal doctor
 * warns about the nodes that run with yes (a warning: nodes start all the same), and says nothing
 * when every node says no.
 */
const skip = binariesSkipReason(['redis-server', '--version'], ['redis-cli', '--version']);
let cluster: RedisClusterFixture;
const SECRET = 'a-test-secret-of-at-least-32-characters-0123456789';

beforeAll(async () => {
  if (skip) return;
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 0 });
}, 60_000);
afterAll(() => cluster?.stop());

const doctor = () => runCli(['doctor'], { env: { SHOAL_STORE: cluster.url, SHOAL_SECRETS: SECRET } });

describe.skipIf(skip !== undefined)('shoal doctor on a Redis Cluster', () => {
  it('says nothing about coverage when every node runs with cluster-require-full-coverage no', async () => {
    const r = await doctor();
    expect(r.stdout).toMatch(/^ok {4}session store redis\+cluster:/m);
    expect(r.stdout).not.toMatch(/full-coverage/);
  });

  it('warns, naming the node, when one runs with yes; still no problem', async () => {
    const node = cluster.nodes[1];
    if (!node) throw new Error('no second node');
    await ask(node.port, 'CONFIG', 'SET', 'cluster-require-full-coverage', 'yes');
    try {
      const r = await doctor();
      const line = r.stdout.split('\n').find((l) => l.includes('full-coverage')) ?? r.stdout;
      expect(line).toMatch(
        new RegExp(
          `^warn {2}Redis Cluster node 127\\.0\\.0\\.1:${node.port} runs with cluster-require-full-coverage yes`,
        ),
      );
      expect(line).toMatch(/Set it to no on every node/);
      expect(r.code).toBe(0);
    } finally {
      await ask(node.port, 'CONFIG', 'SET', 'cluster-require-full-coverage', 'no');
    }
  });
});
