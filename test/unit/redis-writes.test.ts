import type { Socket } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { writesPerTurn } from '../../src/core/redis-writes.js';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';

/** The Redis session store corks its connection per event-loop turn instead of auto-pipelining. */

const skip = await engineSkipReason('redis');

/** Counts the socket writes (write or writev calls that reach the socket) of a ready client. */
function countWrites(client: Redis): { readonly writes: number } {
  const socket = client.stream as Socket & {
    _write: (...args: unknown[]) => void;
    _writev: (...args: unknown[]) => void;
  };
  const counter = { writes: 0 };
  const write = socket._write;
  const writev = socket._writev;
  socket._write = function (this: unknown, ...args: unknown[]) {
    counter.writes++;
    return write.apply(this, args);
  };
  socket._writev = function (this: unknown, ...args: unknown[]) {
    counter.writes++;
    return writev.apply(this, args);
  };
  return counter;
}

describe.skipIf(skip !== undefined)('writesPerTurn', () => {
  const clients: Redis[] = [];
  const open = async () => {
    const client = new Redis(ENGINE_URLS.redis, { maxRetriesPerRequest: 1 });
    clients.push(client);
    await client.ping();
    return client;
  };
  afterEach(() => {
    for (const c of clients.splice(0)) c.disconnect();
  });

  it('sends the commands of one turn in one write, and each turn its own', async () => {
    const client = await open();
    const batch = writesPerTurn(client);
    const counter = countWrites(client);
    const send = () => {
      batch();
      return client.ping();
    };
    const first = Array.from({ length: 20 }, send);
    expect(await Promise.all(first)).toEqual(Array(20).fill('PONG'));
    expect(counter.writes).toBe(1);

    await nextTurn();
    const second = Array.from({ length: 5 }, send);
    await Promise.all(second);
    expect(counter.writes).toBe(2);
  });

  it('without it, the same commands take a write each (what the batching saves)', async () => {
    const client = await open();
    const counter = countWrites(client);
    await Promise.all(Array.from({ length: 20 }, () => client.ping()));
    expect(counter.writes).toBe(20);
  });

  it('keeps working across a dropped connection: the next turn corks the new socket', async () => {
    const client = await open();
    const batch = writesPerTurn(client);
    batch();
    const lost = client.ping().then(
      () => 'answered',
      () => 'failed',
    );
    // The connection drops while its socket is corked, before the turn's write went out.
    const dropped = client.stream as Socket;
    dropped.destroy();
    expect(['answered', 'failed']).toContain(await lost);

    if (client.status !== 'ready') await new Promise<void>((resolve) => client.once('ready', () => resolve()));
    expect(client.stream).not.toBe(dropped);
    const counter = countWrites(client);
    const replies = Array.from({ length: 3 }, () => {
      batch();
      return client.ping();
    });
    expect(await Promise.all(replies)).toEqual(['PONG', 'PONG', 'PONG']);
    expect(counter.writes).toBe(1);
  });

  it('leaves a client that is not connected yet to its offline queue', async () => {
    const client = new Redis(ENGINE_URLS.redis, { lazyConnect: true, maxRetriesPerRequest: 1 });
    clients.push(client);
    const batch = writesPerTurn(client);
    batch(); // not ready: nothing to cork, and nothing may throw
    batch();
    expect(await client.ping()).toBe('PONG');
  });
});
