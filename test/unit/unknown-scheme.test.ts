/**
 * A URL of no known scheme is named by where it came from: what the code passed it to, or the
 * variable the CLI read it from. An environment variable the user never set would send them looking
 * in the wrong place.
 */
import { ConfigError, createBus, createStore, createWebNode, defineApp, nodeConfigFromEnv } from 'shoal';
import { describe, expect, it } from 'vitest';

const app = defineApp({ web: () => () => {} });

describe('an unknown scheme', () => {
  it('from createBus names the URL given to it, not SHOAL_BUS', async () => {
    const err = await createBus('amqps+foo://x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /^createBus\(url\): "amqps\+foo:\/\/x" has an unknown scheme\. Use one of: /,
    );
    expect((err as Error).message).not.toContain('SHOAL_BUS');
  });

  it('from createStore names the URL given to it, not SHOAL_STORE', async () => {
    const err = await createStore('bogus://nowhere').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /^createStore\(url\): "bogus:\/\/nowhere" has an unknown scheme\. Use one of: /,
    );
    expect((err as Error).message).not.toContain('SHOAL_STORE');
  });

  it('in a node config read from the environment names the variable', async () => {
    const store = nodeConfigFromEnv({ SHOAL_STORE: 'bogus://nowhere' }, 'web', 'web-1');
    await expect(createWebNode(app, store)).rejects.toThrow(/^SHOAL_STORE "bogus:\/\/nowhere" has an unknown scheme/);
    const bus = nodeConfigFromEnv({ SHOAL_STORE: 'memory:', SHOAL_BUS: 'amqps+foo://x' }, 'web', 'web-1');
    await expect(createWebNode(app, bus)).rejects.toThrow(/^SHOAL_BUS "amqps\+foo:\/\/x" has an unknown scheme/);
  });

  it('in a node config the code wrote names the setting', async () => {
    const config = { nodeId: 'web-1', env: {}, store: 'bogus://nowhere' };
    await expect(createWebNode(app, config)).rejects.toThrow(
      /^the node config's store "bogus:\/\/nowhere" has an unknown scheme/,
    );
    await expect(
      createWebNode(app, { nodeId: 'web-1', env: {}, store: 'memory:', bus: 'amqps+foo://x' }),
    ).rejects.toThrow(/^the node config's bus "amqps\+foo:\/\/x" has an unknown scheme/);
  });
});
