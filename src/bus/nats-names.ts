import { createHash } from 'node:crypto';
import { ConfigError } from '../core/errors.js';

/**
 * A subject token that is safe for any channel name: bytes outside [A-Za-z0-9_:-] become
 * `=XX`, so `.`, `*`, `>` and spaces never split or widen a subject, and names stay unique.
 */
export function token(name: string): string {
  if (name === '') return '=';
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9_:-]/.test(c) ? c : `=${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function streamName(namespace: string): string {
  const clean = namespace.replace(/[^A-Za-z0-9_-]/g, '_');
  // Names that needed cleaning get a hash suffix so two namespaces never share a stream.
  const suffix = clean === namespace ? '' : `_${createHash('sha256').update(namespace).digest('hex').slice(0, 8)}`;
  return `SHOAL_${clean}${suffix}`;
}

export function parseNatsUrl(url: string) {
  const servers: string[] = [];
  let user: string | undefined;
  let pass: string | undefined;
  let tls = false;
  const shown: string[] = [];
  // `nats://a:4222,b:4222`: a server without a scheme takes the first one's (and its credentials).
  const first = /^([a-z]+:\/\/(?:[^@/]*@)?)/i.exec(url)?.[1] ?? 'nats://';
  for (const part of url.split(',')) {
    let u: URL;
    try {
      u = new URL(/^[a-z]+:\/\//i.test(part.trim()) ? part.trim() : `${first}${part.trim()}`);
    } catch (err) {
      throw new ConfigError(`nats bus: "${part}" is not a URL; write nats://host:4222`, { cause: err });
    }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') {
      throw new ConfigError(`nats bus: "${u.protocol}" is not a NATS URL scheme; write nats://host:4222`);
    }
    if (u.protocol === 'tls:') tls = true;
    if (u.username) user = decodeURIComponent(u.username);
    if (u.password) pass = decodeURIComponent(u.password);
    servers.push(`${u.hostname}:${u.port || 4222}`);
    shown.push(`nats://${u.hostname}:${u.port || 4222}`);
  }
  // ?replicas=3 (the stream's JetStream replicas, for a cluster) and ?noRandomize=1 (try servers in the order given).
  const params = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const replicas = params.has('replicas') ? Number(params.get('replicas')) : undefined;
  if (replicas !== undefined && !(Number.isInteger(replicas) && replicas >= 1 && replicas <= 5)) {
    throw new ConfigError(`nats bus: replicas=${params.get('replicas')} must be 1 to 5, e.g. ?replicas=3`);
  }
  const noRandomize = params.get('noRandomize') === '1' || params.get('noRandomize') === 'true';
  return { servers, user, pass, tls, replicas, noRandomize, label: `nats (${shown.join(',')})` };
}

/**
 * The stream's replicas when neither `?replicas` nor the `replicas` option says: one per server the
 * URL lists, at most 3. A URL that lists a cluster's servers asks for a stream that outlives one of
 * them; a single server gets 1, which is all a server outside a cluster can hold.
 */
export function defaultReplicas(servers: readonly string[]): number {
  return Math.max(1, Math.min(3, servers.length));
}
