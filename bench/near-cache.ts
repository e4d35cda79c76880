/**
 * Near cache: one large session (100 attributes, ~32 KiB of JSON) read over and over on
 * loopback Redis, with and without `nearCache`. Every read still asks Redis (loadIfChanged),
 * so what changes is what crosses the wire and what each side parses: Redis CPU, bytes sent
 * and client CPU per read are the numbers to read; wall time on a shared 2-core machine is noise.
 * Variants run back to back in alternating order, several rounds; the table shows medians.
 *
 * `npx tsx bench/near-cache.ts [--quick] [--write]` (--write: bench/results/near-cache.{json,md})
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { SessionManager } from '../src/session/manager.js';
import { redisStore } from '../src/stores/redis.js';
import { redisCounters } from './lib/cpu.js';
import { ROOT } from './lib/nodes.js';
import { benchRedis } from './lib/private-redis.js';
import { environment, fmt, table } from './lib/results.js';

const quick = process.argv.includes('--quick');
const write = process.argv.includes('--write');
const READS = quick ? 300 : 2000;
const ROUNDS = quick ? 2 : 5;
const IN_FLIGHT = 4;
const ATTRIBUTES = 100;

type Read = 'get one' | 'all()';
interface Variant {
  read: Read;
  encrypted: boolean;
  cached: boolean;
  /** A 3-attribute session instead of the large one: what the extra rev check costs when there is little to save. */
  small?: boolean;
}
interface Sample {
  redisCpuUs: number;
  redisBytes: number;
  clientCpuUs: number;
  wallUs: number;
}

const VARIANTS: Variant[] = [];
for (const [read, encrypted] of [
  ['get one', false],
  ['all()', false],
  ['all()', true],
] as const) {
  for (const cached of [false, true]) VARIANTS.push({ read, encrypted, cached });
}
for (const cached of [false, true]) VARIANTS.push({ read: 'get one', encrypted: false, cached, small: true });
const label = (v: Variant) => `${v.read}${v.encrypted ? ', encrypted' : ''}${v.small ? ', 3-attribute session' : ''}`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2
    ? (s[(s.length - 1) / 2] as number)
    : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
};

async function main(): Promise<void> {
  const redis = await benchRedis(process.env.SHOAL_TEST_REDIS ?? 'redis://127.0.0.1:6379/0');
  const admin = new Redis(redis.url);
  const keyPrefix = `shoal-bench-near-${randomBytes(4).toString('hex')}`;
  const store = await redisStore({ url: redis.url, keyPrefix });
  const secrets = [randomBytes(32).toString('base64url')];
  const encryptionKey = randomBytes(32).toString('base64');
  const managers = new Map<string, SessionManager>();
  const managerFor = (v: Variant) => {
    const key = `${v.encrypted}/${v.cached}`;
    let m = managers.get(key);
    if (!m) {
      m = new SessionManager({
        store,
        secrets,
        cookie: { secure: false },
        sweep: { enabled: false },
        metrics: false,
        touchInterval: '1h', // reads only: no touch writes in the measurement
        encryption: v.encrypted ? { keys: [encryptionKey] } : false,
        nearCache: v.cached ? {} : false,
      });
      managers.set(key, m);
    }
    return m;
  };
  // One session per encryption mode, ~320 characters of JSON per attribute.
  const cookies = new Map<string, string>();
  const cookieKey = (v: Pick<Variant, 'encrypted' | 'small'>) => `${v.encrypted}/${v.small === true}`;
  for (const [encrypted, small] of [
    [false, false],
    [true, false],
    [false, true],
  ] as const) {
    const m = managerFor({ read: 'all()', encrypted, cached: false });
    const s = m.open(undefined);
    for (let i = 0; i < (small ? 3 : ATTRIBUTES); i++) s.set(`attr${i}`, { i, text: randomBytes(150).toString('hex') });
    if (small) s.set('attr7', 'seven');
    await s.commit();
    cookies.set(cookieKey({ encrypted, small }), `${m.cookieName}=${m.sign(s.id as string)}`);
  }

  const readOnce = async (m: SessionManager, cookie: string, read: Read) => {
    const s = m.open(cookie);
    const value = read === 'get one' ? await s.get('attr7') : (await s.all()).attr2;
    if (value === undefined) throw new Error('the session lost an attribute');
    await s.commit();
  };
  const measure = async (v: Variant): Promise<Sample> => {
    const m = managerFor(v);
    const cookie = cookies.get(cookieKey(v)) as string;
    for (let i = 0; i < 50; i++) await readOnce(m, cookie, v.read); // warm: JIT, connection, cache entry
    const info0 = await admin.info('stats');
    const redis0 = await redisCounters(admin);
    const cpu0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < READS) {
          next += 1;
          await readOnce(m, cookie, v.read);
        }
      }),
    );
    const wallUs = Number(process.hrtime.bigint() - t0) / 1000 / READS;
    const cpu = process.cpuUsage(cpu0);
    const redis1 = await redisCounters(admin);
    const info1 = await admin.info('stats');
    const sent = (info: string) => Number(/^total_net_output_bytes:(\d+)/m.exec(info)?.[1] ?? Number.NaN);
    // INFO's used_cpu has microsecond resolution (/proc ticks are 10 ms).
    const redisCpuMs = redis1.cpuMs - redis0.cpuMs;
    return {
      redisCpuUs: (redisCpuMs * 1000) / READS,
      redisBytes: (sent(info1) - sent(info0)) / READS,
      clientCpuUs: (cpu.user + cpu.system) / READS,
      wallUs,
    };
  };

  const samples = new Map<Variant, Sample[]>(VARIANTS.map((v) => [v, []]));
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? [...VARIANTS].reverse() : VARIANTS;
      for (const v of order) samples.get(v)?.push(await measure(v));
      console.error(`[bench] near-cache: round ${round + 1}/${ROUNDS} done`);
    }
  } finally {
    for (const m of managers.values()) await m.close();
    await store.close();
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [nextCursor, page] = await admin.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 500);
      cursor = nextCursor;
      keys.push(...page);
    } while (cursor !== '0');
    for (const key of keys) await admin.del(key);
    admin.disconnect();
    redis.stop();
  }

  const rows = VARIANTS.map((v) => {
    const s = samples.get(v) as Sample[];
    const pick = (f: (x: Sample) => number) => median(s.map(f));
    return {
      read: label(v),
      nearCache: v.cached,
      redisCpuUsPerRead: pick((x) => x.redisCpuUs),
      redisBytesPerRead: pick((x) => x.redisBytes),
      clientCpuUsPerRead: pick((x) => x.clientCpuUs),
      wallUsPerRead: pick((x) => x.wallUs),
    };
  });
  const markdown = [
    '## Near cache: one 100-attribute (~32 KiB) session read on loopback Redis',
    '',
    `${READS} reads per variant, ${IN_FLIGHT} in flight, ${ROUNDS} rounds in alternating order; medians.`,
    `Redis: ${redis.private ? 'a private redis-server (its CPU is this run alone)' : 'the shared server (CPU includes other clients)'}.`,
    '',
    table(
      ['read', 'nearCache', 'Redis CPU µs/read', 'Redis bytes sent/read', 'client CPU µs/read', 'wall µs/read'],
      rows.map((r) => [
        r.read,
        r.nearCache ? 'on' : 'off',
        fmt(r.redisCpuUsPerRead, 1),
        fmt(r.redisBytesPerRead, 0),
        fmt(r.clientCpuUsPerRead, 0),
        fmt(r.wallUsPerRead, 0),
      ]),
    ),
    '',
  ].join('\n');
  console.log(markdown);
  if (write) {
    const dir = join(ROOT, 'bench', 'results');
    const report = { scenario: 'near-cache', quick, environment: environment(), rows };
    await writeFile(join(dir, 'near-cache.json'), `${JSON.stringify(report, null, 2)}\n`);
    await writeFile(join(dir, 'near-cache.md'), markdown);
  }
}

await main();
