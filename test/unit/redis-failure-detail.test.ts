import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { failureDetail } from '../../src/core/redis-client.js';

const { MaxRetriesPerRequestError } = createRequire(import.meta.url)('ioredis/built/errors') as {
  MaxRetriesPerRequestError: new (n: number) => Error;
};

describe('what a Redis failure says', () => {
  it("says a dropped command in the user's terms, not by ioredis's option name, with the connection's last error", () => {
    const detail = failureDetail(new MaxRetriesPerRequestError(1), new Error('connect ECONNREFUSED 127.0.0.1:6390'));
    expect(detail).toBe(
      'the connection was lost before an answer came (last connection error: connect ECONNREFUSED 127.0.0.1:6390)',
    );
    expect(detail).not.toMatch(/maxRetriesPerRequest/);
  });

  it('says a connection lost and refused since, not only that none could be made (the command had been sent)', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    expect(failureDetail(new MaxRetriesPerRequestError(1), refused)).toBe(
      'the connection was lost before an answer came, and no new one could be made: nothing accepts connections there (last connection error: connect ECONNREFUSED 127.0.0.1:1)',
    );
  });

  it('keeps any other error as it is', () => {
    expect(failureDetail(new Error('NOPERM this user has no permissions'), undefined)).toBe(
      'NOPERM this user has no permissions',
    );
  });

  it('says what a client library rejected with when it is not an Error (amqplib does so with some broker replies)', () => {
    const frame = { fields: { replyCode: 404, replyText: "NOT_FOUND - no queue 'q'" } };
    const detail = failureDetail(frame, undefined);
    expect(detail).toContain("NOT_FOUND - no queue 'q'");
    expect(detail).not.toContain('[object Object]');
  });
});
