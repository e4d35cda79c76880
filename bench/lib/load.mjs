/**
 * Load generator, run as its own process (`node bench/lib/load.mjs '<LoadSpec JSON>'`, see measure.ts)
 * so the client never shares an event loop or a CPU slice with the server it measures. Plain
 * JavaScript: a benchmark starts one per measured run, and loading TypeScript took a second each.
 * Prints one line of LoadResult JSON on stdout.
 */
import autocannon from 'autocannon';

/** @type {import('./measure.js').LoadSpec} */
const spec = JSON.parse(process.argv[2] ?? '');

let sent = 0;

/** @param {number} connection */
function requestFor(connection) {
  /** @type {Record<string, string>} */
  const headers = { ...spec.headers };
  const cookie = spec.cookies?.[connection % spec.cookies.length];
  if (cookie) headers.cookie = cookie;
  /** @type {Record<string, unknown>} */
  const request = { method: spec.method, path: spec.path, headers };
  if (spec.body !== undefined) request.body = spec.body;
  // autocannon's own idReplacement sends the literal placeholder (v8.0.0), hence a setupRequest.
  if (spec.varyBody) request.setupRequest = (r) => ({ ...r, body: `${spec.body ?? ''}${sent++}` });
  return request;
}

let connection = 0;
const r = await autocannon({
  url: spec.url,
  connections: spec.connections,
  duration: spec.durationS,
  timeout: 10,
  // autocannon only notices the end of `duration` at its next sample, once a second by default: a
  // 0.5 s run took 1 s, and a 4 s one 4 or 5. Every figure here is a total over the run, not per sample.
  sampleInt: 100,
  // Each connection is one browser: its own request object, its own session cookie.
  setupClient: (client) => client.setRequests([requestFor(connection++)]),
});
/** @type {import('./measure.js').LoadResult} */
const result = {
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
