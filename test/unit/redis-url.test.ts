import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';
import { parseRedisUrl } from '../../src/core/redis-client.js';

describe('the database a Redis URL names', () => {
  it('reads it from the path or ?db=, 0 when left out', () => {
    expect(parseRedisUrl('redis://127.0.0.1:6379')).toMatchObject({ kind: 'single', db: 0 });
    expect(parseRedisUrl('redis://127.0.0.1:6379/')).toMatchObject({ kind: 'single', db: 0 });
    expect(parseRedisUrl('redis://127.0.0.1:6379/5')).toMatchObject({ kind: 'single', db: 5 });
    expect(parseRedisUrl('rediss://:pw@cache:6380/12?timeout=1s')).toMatchObject({ kind: 'single', db: 12 });
    expect(parseRedisUrl('redis://127.0.0.1:6379?db=3')).toMatchObject({ kind: 'single', db: 3 });
  });

  // ioredis reads the path with parseInt: these would have been databases 0, 5 and 1 without a word.
  it.each(['redis://127.0.0.1:6379/abc', 'redis://127.0.0.1:6379/5x', 'redis://127.0.0.1:6379/1/2'])(
    'refuses %s, a path that is not a database number',
    (url) => {
      expect(() => parseRedisUrl(url)).toThrow(ConfigError);
      expect(() => parseRedisUrl(url)).toThrow(/is not a database number\. Write redis:\/\/host:6379\/<number>/);
    },
  );

  it('refuses a ?db= that is not a number', () => {
    expect(() => parseRedisUrl('redis://127.0.0.1:6379?db=two')).toThrow(/"two" is not a database number/);
  });

  it('refuses a path and a ?db= naming different databases, and takes them when they agree', () => {
    expect(() => parseRedisUrl('redis://127.0.0.1:6379/2?db=3')).toThrow(
      /names two databases, \/2 and \?db=3: keep one/,
    );
    expect(parseRedisUrl('redis://127.0.0.1:6379/2?db=2')).toMatchObject({ kind: 'single', db: 2 });
  });

  it('masks the password in the message', () => {
    expect(() => parseRedisUrl('redis://u:secret@127.0.0.1:6379/abc')).toThrow(
      /"redis:\/\/u:\*\*\*@127\.0\.0\.1:6379\/abc"/,
    );
  });

  it('refuses a database other than 0 on a Redis Cluster, which has only database 0', () => {
    expect(() => parseRedisUrl('redis+cluster://a:6379,b:6379/3')).toThrow(
      '"redis+cluster://a:6379,b:6379/3": a Redis Cluster has only database 0: remove "/3" from the URL',
    );
    expect(parseRedisUrl('redis+cluster://a:6379,b:6379/0')).toMatchObject({ kind: 'cluster' });
    expect(parseRedisUrl('redis+cluster://a:6379,b:6379/')).toMatchObject({ kind: 'cluster' });
  });
});
