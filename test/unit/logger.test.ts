import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/logger.js';

describe('createLogger', () => {
  it("logs an error's message once, with its cause kept apart", () => {
    const lines: string[] = [];
    const logger = createLogger({ node: 'web-1' }, 'info', { write: (line: string) => void lines.push(line) });
    const cause = new Error('connect ECONNREFUSED 127.0.0.1:1');
    const err = new StoreUnavailableError(
      'redis',
      `load failed at redis://127.0.0.1:1: ${cause.message}. Check that Redis is running and reachable, or raise timeoutMs.`,
      { cause },
    );
    logger.error({ err }, 'store unreachable');
    const entry = JSON.parse(lines[0] ?? '{}') as {
      node: string;
      err: { message: string; cause: { message: string } };
    };
    expect(entry.node).toBe('web-1');
    expect(entry.err.message).toBe(err.message);
    expect(entry.err.cause.message).toBe(cause.message);
  });
});
