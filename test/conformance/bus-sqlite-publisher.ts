// Child process for bus-sqlite.test.ts: publishes `count` messages, paced, from another process.
import { sqliteBus } from '../../src/bus/sqlite.js';

const [path, namespace, channel, count] = process.argv.slice(2);
if (!path || !namespace || !channel || !count)
  throw new Error('usage: bus-sqlite-publisher <path> <namespace> <channel> <count>');

const bus = await sqliteBus({ path, namespace });
for (let i = 0; i < Number(count); i++) {
  await bus.publish(channel, { event: 'tick', data: JSON.stringify({ i }) });
  // Paced like real traffic: latency, not queueing behind a flood, is what the parent measures.
  if (i % 2 === 1) await new Promise((r) => setTimeout(r, 1));
}
await bus.close();
