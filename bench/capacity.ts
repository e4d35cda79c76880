/**
 * Capacity model: turns per-node figures measured by `npm run bench` (bench/results/latest.json) into
 * counts of gateways, web nodes, Redis shards and NATS servers for a target load, printing every
 * assumption. Usage:
 *   npm run capacity -- --sockets 1000000 --rps 100000 [--msgs-per-socket 0.2] [--write-share 0.5] …
 * Every figure can be overridden by a flag (run with --help for the list).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const flags = {
  sockets: { type: 'string', default: '100000' },
  rps: { type: 'string', default: '10000' },
  'msgs-per-socket': { type: 'string', default: '0.2' },
  'write-share': { type: 'string', default: '0.5' },
  'publishes-per-request': { type: 'string', default: '0.05' },
  'cores-per-web': { type: 'string', default: '2' },
  'cores-per-gateway': { type: 'string', default: '1' },
  'gateway-memory-gib': { type: 'string', default: '2' },
  'max-sockets-per-gateway': { type: 'string', default: '50000' },
  'cpu-target': { type: 'string', default: '0.6' },
  'redis-cpu-target': { type: 'string', default: '0.5' },
  'nats-msgs-per-server': { type: 'string', default: '100000' },
  'web-cpu-us': { type: 'string' },
  'web-read-cpu-us': { type: 'string' },
  'redis-cpu-us': { type: 'string' },
  'delivery-cpu-us': { type: 'string' },
  'socket-bytes': { type: 'string' },
  results: { type: 'string', default: 'bench/results/latest.json' },
  help: { type: 'boolean', default: false },
} as const;

const { values: v } = parseArgs({ options: flags, strict: true });
if (v.help) {
  console.log(
    `npm run capacity -- --sockets N --rps N [flags]\n${Object.keys(flags)
      .map((f) => `  --${f}`)
      .join('\n')}`,
  );
  process.exit(0);
}

const num = (name: keyof typeof v, value: string | undefined): number => {
  const n = Number(value);
  if (value === undefined || !Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a non-negative number (got ${value}); run with --help`);
    process.exit(2);
  }
  return n;
};

interface Measured {
  webWriteCpuUs: number;
  webReadCpuUs: number;
  redisCpuUsPerRequest: number;
  deliveryCpuUs: number;
  clientCpuUsPerDelivery: number;
  redisCpuUsPerDelivery: number;
  socketBytes: number;
  fanout: { sockets: number; deliveredPerSec: number };
  source: string;
}

/** The per-node figures of the last `npm run bench`; flags replace any of them. */
function measured(): Measured {
  let json: Record<string, { data: unknown; startedAt: string }>;
  try {
    json = JSON.parse(readFileSync(v.results, 'utf8'));
  } catch (err) {
    console.error(
      `cannot read ${v.results} (${(err as Error).message}): run npm run bench first, or pass every figure by flag`,
    );
    process.exit(2);
  }
  type Route = { costs: { serverCpuUs: number; redisCpuUs: number } };
  const http = (json['session-http']?.data ?? { levels: [] }) as {
    levels: Array<{ results: { shoal: { read: Route; write: Route } } }>;
  };
  const shoal = http.levels[0]?.results.shoal;
  const fan = (
    (json.fanout?.data ?? { saturation: [] }) as {
      saturation: Array<{ system: string; sockets: number; deliveredPerSec: number; cpu: Record<string, number> }>;
    }
  ).saturation.filter((r) => r.system === 'shoal');
  const top = fan.at(-1);
  const mem = (
    (json.memory?.data ?? { rows: [] }) as { rows: Array<{ system: string; perConnection: { rss: number } }> }
  ).rows.find((r) => r.system === 'shoal');
  if (!shoal || !top || !mem) {
    console.error(`${v.results} lacks the session-http, fanout or memory scenario: run npm run bench`);
    process.exit(2);
  }
  return {
    webWriteCpuUs: v['web-cpu-us'] ? num('web-cpu-us', v['web-cpu-us']) : shoal.write.costs.serverCpuUs,
    webReadCpuUs: v['web-read-cpu-us'] ? num('web-read-cpu-us', v['web-read-cpu-us']) : shoal.read.costs.serverCpuUs,
    redisCpuUsPerRequest: v['redis-cpu-us']
      ? num('redis-cpu-us', v['redis-cpu-us'])
      : (shoal.write.costs.redisCpuUs + shoal.read.costs.redisCpuUs) / 2,
    deliveryCpuUs: v['delivery-cpu-us'] ? num('delivery-cpu-us', v['delivery-cpu-us']) : (top.cpu.servers ?? 0) / 1000,
    clientCpuUsPerDelivery: (top.cpu.clients ?? 0) / 1000,
    redisCpuUsPerDelivery: (top.cpu.redis ?? 0) / 1000,
    socketBytes: v['socket-bytes'] ? num('socket-bytes', v['socket-bytes']) : mem.perConnection.rss,
    fanout: { sockets: top.sockets, deliveredPerSec: top.deliveredPerSec },
    source: `${v.results} (session-http ${json['session-http']?.startedAt}, fanout ${json.fanout?.startedAt})`,
  };
}

const m = measured();
const sockets = num('sockets', v.sockets);
const rps = num('rps', v.rps);
const msgsPerSocket = num('msgs-per-socket', v['msgs-per-socket']);
const writeShare = Math.min(1, num('write-share', v['write-share']));
const publishesPerRequest = num('publishes-per-request', v['publishes-per-request']);
const coresPerWeb = num('cores-per-web', v['cores-per-web']);
const coresPerGateway = num('cores-per-gateway', v['cores-per-gateway']);
const gatewayBytes = num('gateway-memory-gib', v['gateway-memory-gib']) * 2 ** 30;
const maxPerGateway = num('max-sockets-per-gateway', v['max-sockets-per-gateway']);
const cpuTarget = num('cpu-target', v['cpu-target']);
const redisTarget = num('redis-cpu-target', v['redis-cpu-target']);
const natsPerServer = num('nats-msgs-per-server', v['nats-msgs-per-server']);

// Web nodes: CPU per request (read/write mix) at the target utilisation; at least 2 for redundancy.
const requestCpuUs = writeShare * m.webWriteCpuUs + (1 - writeShare) * m.webReadCpuUs;
const webCores = (rps * requestCpuUs) / 1e6 / cpuTarget;
const webNodes = Math.max(2, Math.ceil(webCores / coresPerWeb));

// Gateways: the tighter of memory (RSS per socket, 70 % of the box), CPU for deliveries, and a socket cap.
const deliveries = sockets * msgsPerSocket;
const byMemory = Math.ceil(sockets / ((gatewayBytes * 0.7) / m.socketBytes));
const byCpu = Math.ceil((deliveries * m.deliveryCpuUs) / 1e6 / cpuTarget / coresPerGateway);
const byCap = Math.ceil(sockets / maxPerGateway);
const gateways = Math.max(2, byMemory, byCpu, byCap);

// Redis: one core per shard; store CPU per request plus bus CPU per delivery; a cluster has ≥ 3 masters.
const redisCores = (rps * m.redisCpuUsPerRequest + deliveries * m.redisCpuUsPerDelivery) / 1e6 / redisTarget;
const shards = Math.max(3, Math.ceil(redisCores));
// NATS as the bus instead: every publish is stored (R3) and sent to every gateway.
const publishes = rps * publishesPerRequest;
const natsMsgs = publishes * (3 + gateways);
const natsServers = Math.max(3, Math.ceil(natsMsgs / natsPerServer));

const f = (n: number) => Math.round(n).toLocaleString('en-US');
console.log(`shoal capacity model — ${f(sockets)} concurrent sockets, ${f(rps)} requests/s`);
console.log(`\nfigures (from ${m.source}; flags override):`);
console.log(`  web node CPU per request: write ${m.webWriteCpuUs.toFixed(0)} µs, read ${m.webReadCpuUs.toFixed(0)} µs`);
console.log(`  Redis CPU per session request: ${m.redisCpuUsPerRequest.toFixed(1)} µs`);
console.log(
  `  gateway CPU per delivery: ${m.deliveryCpuUs.toFixed(3)} µs; Redis CPU per delivery: ${m.redisCpuUsPerDelivery.toFixed(4)} µs`,
);
console.log(`  gateway RSS per idle socket: ${(m.socketBytes / 1024).toFixed(1)} KiB`);
console.log('\nassumptions:');
console.log(
  `  ${msgsPerSocket} messages per socket per second (${f(deliveries)} deliveries/s); ${writeShare * 100}% of requests write`,
);
console.log(
  `  ${publishesPerRequest} publishes per request (${f(publishes)}/s); CPU target ${cpuTarget * 100}% (Redis ${redisTarget * 100}%)`,
);
console.log(
  `  web node ${coresPerWeb} cores; gateway ${coresPerGateway} core, ${v['gateway-memory-gib']} GiB (70% for sockets), ≤ ${f(maxPerGateway)} sockets`,
);
console.log(
  `  Redis: one core per shard (plus one replica each); NATS: ${f(natsPerServer)} msgs/s per server, streams R3`,
);
console.log('\nresult:');
console.log(`  web nodes:    ${webNodes}  (${webCores.toFixed(1)} cores)`);
console.log(`  gateways:     ${gateways}  (memory ${byMemory}, CPU ${byCpu}, socket cap ${byCap})`);
console.log(`  Redis shards: ${shards} masters + ${shards} replicas  (${redisCores.toFixed(2)} cores)`);
console.log(`  NATS servers: ${natsServers}  (if NATS is the bus; ${f(natsMsgs)} msgs/s)`);

// One measured point: the fan-out benchmark saturated 2 cores shared by gateways, clients and Redis.
const predicted = 2e6 / (m.deliveryCpuUs + m.clientCpuUsPerDelivery + m.redisCpuUsPerDelivery);
const ratio = predicted / m.fanout.deliveredPerSec;
console.log(
  `\ncheck: the model predicts ${f(predicted)} deliveries/s on 2 shared cores at ${f(m.fanout.sockets)} sockets; ` +
    `measured ${f(m.fanout.deliveredPerSec)} (model/measured ${ratio.toFixed(2)}×)`,
);
