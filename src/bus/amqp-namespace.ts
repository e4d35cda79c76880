import { BusUnavailableError, ConfigError } from '../core/errors.js';
import { importOptional } from '../core/lazy-import.js';
import { failureDetail } from '../core/redis-client.js';
import { type Amqplib, amqpAdvice, explainRefusal } from './amqp-link.js';
import { getOne, logNamesForKey } from './amqp-log.js';
import { parsePartitions } from './amqp-partition.js';

/**
 * Deletes everything a namespace made on the broker: every partition's token and stream
 * queue (and those of the earlier one-pair-per-channel layout), the registry and the exchange. For tests and decommissioning; live clients of
 * the namespace lose their history (their next publish starts a new epoch). A broker it cannot reach
 * fails it with BusUnavailableError, worded as the bus's own calls are.
 */
export async function dropAmqpNamespace(url: string, namespace: string): Promise<void> {
  const lib = await importOptional<Amqplib>('amqplib', 'The AMQP (RabbitMQ) message bus');
  const conn = await connectFor(lib, url, `dropAmqpNamespace(url, "${namespace}")`);
  try {
    const ch = await conn.createChannel();
    ch.on('error', () => undefined);
    const registry = `shoal.${namespace}.registry`;
    const keys = new Set<string>();
    await ch.assertQueue(registry, { durable: true });
    for (let i = 0; i < 1_000_000; i++) {
      const m = await getOne(ch, registry, true);
      if (!m) break;
      keys.add(m.content.toString('utf8'));
    }
    for (const key of keys) {
      const names = logNamesForKey(namespace, key);
      await ch.deleteQueue(names.token);
      await ch.deleteQueue(names.stream);
    }
    await ch.deleteQueue(registry);
    await ch.deleteExchange(`shoal.${namespace}`);
  } finally {
    await conn.close();
  }
}

/**
 * Connects as the bus does, and fails as it does when the broker is down or refuses the URL: a
 * BusUnavailableError that names the broker and what to check, not amqplib's bare "connect ECONNREFUSED".
 */
async function connectFor(lib: Amqplib, raw: string, what: string): Promise<Awaited<ReturnType<Amqplib['connect']>>> {
  const { url, label } = connectionUrl(raw);
  try {
    return await lib.connect(url);
  } catch (err) {
    const explained = explainRefusal(err, url);
    throw new BusUnavailableError(
      label,
      `${what} failed: ${failureDetail(explained, undefined)}. ${amqpAdvice(explained)}.`,
      {
        cause: err,
      },
    );
  }
}

export function connectionUrl(raw: string): { url: string; label: string; partitions: number } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch (err) {
    throw new ConfigError('amqp bus: url must look like amqp://user:pass@host:5672/vhost', { cause: err });
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') {
    throw new ConfigError(`amqp bus: "${u.protocol}" is not an AMQP URL scheme; write amqp://user:pass@host:5672`);
  }
  // Ours, not the broker's: taken off before amqplib sees the URL.
  const partitions = parsePartitions(u.searchParams.get('partitions'));
  u.searchParams.delete('partitions');
  // Heartbeats notice a dead peer behind a silent network in ~20 s instead of TCP's minutes.
  if (!u.searchParams.has('heartbeat')) u.searchParams.set('heartbeat', '10');
  const shown = new URL(u);
  if (shown.password) shown.password = '***';
  return { url: u.toString(), label: `amqp (${shown.host})`, partitions };
}
