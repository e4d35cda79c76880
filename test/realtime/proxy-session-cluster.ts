import { randomUUID } from 'node:crypto';
import { redisBus } from 'shoal/bus/redis';
import { memoryStore } from 'shoal/stores/memory';
import { afterAll, beforeAll } from 'vitest';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { PUBLISH_KEY, type RunningGateway, realtimeCluster } from './fixture.js';
import { appServer, json } from './proxy-helpers.js';

/**
 * Two gateways on a Redis bus whose connections authenticate through one connect proxy: a real
 * HTTP server standing in for an app that keeps its own sessions (a Python or Java backend). The
 * browser's `APPSID=<user>.<device>` cookie is that app's session; `answer(sid)` is what the proxy
 * says for it (an error answer when the cookie is missing). Started before the file's tests, closed
 * after them; `skip` says why not when Redis is unreachable.
 */
export async function proxySessionGateways(answer: (sid: string) => unknown) {
  const skip = await engineSkipReason('redis');
  // One namespace for the file: every gateway's bus must be the same one.
  const namespace = `psg-${randomUUID().slice(0, 8)}`;
  const cluster = realtimeCluster({
    store: memoryStore(),
    openBus: () => redisBus({ url: ENGINE_URLS.redis, namespace }),
  });
  const gateways: RunningGateway[] = [];
  let closeApp: () => Promise<void> = async () => {};
  beforeAll(async () => {
    if (skip) return;
    const app = await appServer((req, res) => {
      const sid = /APPSID=([\w.-]+)/.exec(req.headers.cookie ?? '')?.[1];
      if (!sid) return json(res, { error: { code: 4501, reason: 'sign in first' } });
      json(res, answer(sid));
    });
    closeApp = app.close;
    const connectProxy = { url: app.url, timeoutMs: 2000 };
    gateways.push(await cluster.gateway({ connectProxy }), await cluster.gateway({ connectProxy }));
  });
  afterAll(async () => {
    await cluster.close();
    await closeApp();
  });
  return { skip, cluster, gateways };
}

/** A call to a gateway's HTTP server API (`/publish`, `/disconnect`, …) with the publish key. */
export function serverCall(g: RunningGateway, path: string, body: unknown): Promise<Response> {
  return fetch(`${g.http}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${PUBLISH_KEY}` },
    body: JSON.stringify(body),
  });
}
