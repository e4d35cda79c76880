import { afterAll, describe, expect, it } from 'vitest';
import { redisBus } from '../../src/bus/redis.js';
import { freePort } from '../helpers/processes.js';
import {
  binariesSkipReason,
  type EngineProcess,
  killEngines,
  portOpen,
  scratch,
  spawnRedis,
  waitUntil,
} from './fixtures/engine-process.js';
import { ask } from './fixtures/probe.js';

/**
 * Redis replicates asynchronously: a replica promoted after a failover can lack the old master's
 * last log entries, and hands their offsets out again, to other messages. A client that saw the
 * old entries must not skip the new ones as already seen, and a client that saw only what the
 * replica kept must not be sent it again. The promotion is a new epoch that continues the old
 * one from the newest offset the replica kept. Here the lost tail is made on purpose: the
 * replica is promoted, then the old master takes two more publishes it never passes on.
 */
const skip = binariesSkipReason(['redis-server', '--version']);
const CHANNEL = 'room:promoted';

describe.skipIf(skip !== undefined)('redis bus on a promoted replica', () => {
  const engines: EngineProcess[] = [];
  const tmp = scratch('redis-promoted');
  afterAll(async () => {
    await killEngines(engines);
    tmp.remove();
  });

  async function server(name: string, replicaOf?: number): Promise<EngineProcess> {
    const port = await freePort();
    const engine = spawnRedis(name, port, tmp.dir, replicaOf ? ['--replicaof', '127.0.0.1', String(replicaOf)] : []);
    engines.push(engine);
    await waitUntil(`${name} listening`, () => portOpen(port), 10_000, [engine]);
    return engine;
  }

  it('continues the old epoch from what the replica kept, so reissued offsets are neither skipped nor replayed', async () => {
    const primary = await server('redis-primary');
    const replica = await server('redis-replica', primary.port);
    const onPrimary = await redisBus({ url: `redis://127.0.0.1:${primary.port}` });
    let onReplica: Awaited<ReturnType<typeof redisBus>> | undefined;
    try {
      const seen = [];
      for (const data of ['1', '2', '3']) seen.push(await onPrimary.publish(CHANNEL, { event: 'e', data }));
      await waitUntil(
        'replica caught up',
        async () =>
          /master_link_status:up/.test(String(await ask(replica.port, 'INFO', 'replication'))) &&
          Number(await ask(replica.port, 'GET', `shoal:{shoal:${CHANNEL}}:seq`)) === 3,
        10_000,
        engines,
      );
      await ask(replica.port, 'REPLICAOF', 'NO', 'ONE');
      // The old master's tail: acknowledged, delivered to its subscribers, never replicated.
      for (const data of ['4', '5']) seen.push(await onPrimary.publish(CHANNEL, { event: 'e', data }));
      const before = seen.at(-1);
      expect(before).toMatchObject({ offset: 5 });
      const old = before?.epoch as string;

      onReplica = await redisBus({ url: `redis://127.0.0.1:${replica.port}` });
      const next = await onReplica.publish(CHANNEL, { event: 'e', data: 'after failover' });
      expect(next.offset, 'the promoted replica hands out offset 4 again').toBe(4);
      expect(next.epoch, 'under a new epoch').not.toBe(old);
      const data = (r: { messages: { data: string }[] }) => r.messages.map((m) => m.data);

      const sawTail = await onReplica.read(CHANNEL, 5, { epoch: old });
      expect(sawTail, 'a client that saw offset 5 continues from 3, the newest the replica kept').toMatchObject({
        epoch: next.epoch,
        complete: true,
        from: 3,
      });
      expect(data(sawTail)).toEqual(['after failover']);

      const sawKept = await onReplica.read(CHANNEL, 3, { epoch: old });
      expect(sawKept).toMatchObject({ epoch: next.epoch, complete: true, from: 3 });
      expect(data(sawKept), 'nothing it already had comes again').toEqual(['after failover']);

      const behind = await onReplica.read(CHANNEL, 1, { epoch: old });
      expect(behind).toMatchObject({ epoch: next.epoch, complete: true, from: 1 });
      expect(data(behind)).toEqual(['2', '3', 'after failover']);

      const unrelated = await onReplica.read(CHANNEL, 1, { epoch: 'some-other-log.0123456789ab' });
      expect(unrelated, 'an epoch this log does not continue').toMatchObject({ complete: false, messages: [] });
      expect(unrelated.from).toBeUndefined();
    } finally {
      await onPrimary.close();
      await onReplica?.close();
    }
  }, 60_000);
});
