import type { NodeMetrics } from './dashboard-ui/state.js';

export type { NodeMetrics } from './dashboard-ui/state.js';

/** One line of the Prometheus text exposition format. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/** Parses the text format (version 0.0.4, what prom-client writes). Comments and malformed lines are skipped. */
export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const v = m[3] as string;
    const value = v === '+Inf' ? Number.POSITIVE_INFINITY : v === '-Inf' ? Number.NEGATIVE_INFINITY : Number(v);
    out.push({ name: m[1] as string, labels, value });
  }
  return out;
}

export function summarize(samples: PromSample[]): NodeMetrics {
  const sum = (name: string, where: (labels: Record<string, string>) => boolean = () => true) =>
    samples.reduce((n, s) => (s.name === name && where(s.labels) ? n + s.value : n), 0);
  const buckets = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== 'shoal_store_latency_seconds_bucket' || s.labels.le === undefined) continue;
    buckets.set(s.labels.le, (buckets.get(s.labels.le) ?? 0) + s.value);
  }
  return {
    requests: sum('shoal_http_requests_total'),
    conflicts: sum('shoal_session_conflicts_total'),
    storeLatency: [...buckets.entries()],
    sessionsCreated: sum('shoal_store_calls_total', (l) => l.op === 'create' && l.outcome === 'ok'),
    sockets: sum('shoal_gateway_connections'),
    messagesOut: sum('shoal_gateway_messages_out_total'),
  };
}

/** GET <base>/metrics within the timeout; rejects with the reason on failure. */
export async function scrapeMetrics(base: string, timeoutMs: number): Promise<NodeMetrics> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  return summarize(parsePrometheus(await res.text()));
}
