import { ConfigError, createBus, createStore } from 'shoal';
import { describe, expect, it } from 'vitest';

describe('PostgreSQL URLs with several hosts', () => {
  it('refuses a target_session_attrs it does not support, with one line naming the choices', async () => {
    const url = 'postgres://u@127.0.0.1:1,127.0.0.1:2/db?target_session_attrs=standby';
    const err = await createStore(url).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toBe(
      'target_session_attrs=standby is not supported: use read-write (or primary) or any',
    );
    await expect(createBus(url)).rejects.toThrow(/target_session_attrs=standby is not supported/);
  });

  it('refuses a host list it cannot read, saying how to write one', async () => {
    await expect(createStore('postgres://u@127.0.0.1:1,:5432/db')).rejects.toThrow(
      /is not a list of PostgreSQL hosts: write postgres:\/\/user@host1:5432,host2:5432\/db/,
    );
    await expect(createStore('postgres://u@127.0.0.1:99999,127.0.0.1:5432/db')).rejects.toThrow(ConfigError);
  });

  it('names every host, and no password, when none can be reached', async () => {
    const store = await createStore('postgres://u:secret@127.0.0.1:1,127.0.0.1:2/db?timeout=500ms');
    try {
      const err = await store.load('x', Date.now()).catch((e: unknown) => e);
      expect(String(err)).toMatch(/127\.0\.0\.1:1,127\.0\.0\.1:2\/db/);
      expect(String(err)).toMatch(/no PostgreSQL host accepts writes/);
      expect(String(err)).not.toMatch(/secret/);
    } finally {
      await store.close();
    }
  });
});
