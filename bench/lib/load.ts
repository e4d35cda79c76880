/**
 * Load generator, run as its own process (`node --import tsx bench/lib/load.ts '<LoadSpec JSON>'`)
 * so the client never shares an event loop or a CPU slice with the server it measures.
 * Prints one line of LoadResult JSON on stdout.
 */
import autocannon, { type AutocannonRequest } from 'autocannon';
import type { LoadResult, LoadSpec } from './measure.js';

const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;

let sent = 0;

function requestFor(connection: number): AutocannonRequest {
  const headers: Record<string, string> = { ...spec.headers };
  const cookie = spec.cookies?.[connection % spec.cookies.length];
  if (cookie) headers.cookie = cookie;
  const request: AutocannonRequest = { method: spec.method, path: spec.path, headers };
  if (spec.body !== undefined) request.body = spec.body;
  // autocannon's own idReplacement sends the literal placeholder (v8.0.0), hence a setupRequest.
  if (spec.varyBody) request.setupRequest = (r) => ({ ...r, body: `${spec.body ?? ''}${sent++}` });
  return request;
}

async function run(durationS: number) {
  let connection = 0;
  return autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: durationS,
    timeout: 10,
    // Each connection is one browser: its own request object, its own session cookie.
    setupClient: (client) => client.setRequests([requestFor(connection++)]),
  });
}

const r = await run(spec.durationS);
const result: LoadResult = {
  requestsPerSec: r.requests.total / r.duration,
  requests: r.requests.total,
  durationS: r.duration,
  latencyMs: { avg: r.latency.average, p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max },
  non2xx: r.non2xx,
  errors: r.errors,
  timeouts: r.timeouts,
  statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s.count])),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
