/**
 * Two apps on one Redis, told apart by SHOAL_NAMESPACE (NodeConfig.namespace): what one app
 * publishes to a user reaches that app's nodes only, never the same user id of the other app.
 */
import { randomUUID } from 'node:crypto';
import { defineApp, type OpenedApp, openApp } from 'shoal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENGINE_URLS, engineSkipReason } from '../helpers/engines.js';
import { eventually } from '../helpers/eventually.js';

const skip = await engineSkipReason('redis');
const SECRET = 'app-namespaces-test-secret-0123456789-abcdef';
const app = defineApp({ session: { secrets: [SECRET] }, web: () => (_req, res) => res.end() });
const run = randomUUID().slice(0, 8);
const opened: OpenedApp[] = [];

async function node(namespace: string, nodeId: string): Promise<OpenedApp> {
  const o = await openApp(app, { role: 'gateway', nodeId, env: {}, store: ENGINE_URLS.redis, namespace });
  opened.push(o);
  return o;
}

afterAll(async () => {
  for (const o of opened) await o.close();
});

describe.skipIf(skip)('apps apart by namespace on one Redis', () => {
  let shop: OpenedApp;
  let shopGateway: OpenedApp;
  let blog: OpenedApp;
  const got = { shop: [] as string[], blog: [] as string[] };

  beforeAll(async () => {
    shop = await node(`shop-${run}`, 'shop-web');
    shopGateway = await node(`shop-${run}`, 'shop-gateway');
    blog = await node(`blog-${run}`, 'blog-gateway');
    shopGateway.bus.onMessage((m) => got.shop.push(m.event));
    blog.bus.onMessage((m) => got.blog.push(m.event));
    await shopGateway.bus.subscribe('user:alice');
    await blog.bus.subscribe('user:alice');
  });

  it("one app's message to a user reaches its own gateways only", async () => {
    await shop.realtime.publisher.to({ user: 'alice' }).send('cart.changed', { items: 1 });
    await eventually(() => got.shop.includes('cart.changed'), { message: 'the shop gateway got it' });
    await new Promise((r) => setTimeout(r, 300)); // time for a stray delivery to show
    expect(got.blog).toEqual([]);
    expect((await blog.bus.read('user:alice', 0)).messages).toEqual([]);
  });
});
