import { ConfigError, createStore, defineSession } from 'shoal';
import { session as fastifySession } from 'shoal/fastify';
import { session as honoSession } from 'shoal/hono';
import { nodeSessions } from 'shoal/node';
import { afterAll, describe, expect, it } from 'vitest';

/** The Fastify, Hono and node:http entry points given the wrong thing: a ConfigError at the call saying how to write it. */
const SECRET = 'adapter-misuse-secret-0123456789abcdefghij';
const store = await createStore('memory:');
const sessions = defineSession({ store, secrets: [SECRET], sweep: { enabled: false } });
afterAll(() => sessions.close());

const loosely = <A extends unknown[], R>(f: (...args: A) => R, ...args: unknown[]): R => f(...(args as A));

const entries = [
  ['shoal/fastify', fastifySession, 'await app.register(session(sessions))'],
  ['shoal/hono', honoSession, 'app.use(session(sessions))'],
  ['shoal/node', nodeSessions, 'nodeSessions(sessions)'],
] as const;

describe('adapter entry points refuse what is not a session manager', () => {
  for (const [name, entry, usage] of entries) {
    it(name, () => {
      for (const [bad, got] of [
        [{}, 'an object'],
        ['x', 'a string'],
        [undefined, 'nothing'],
      ] as const) {
        const attempt = () => loosely(entry as (...a: unknown[]) => unknown, bad);
        expect(attempt, got).toThrow(ConfigError);
        expect(attempt, got).toThrow(`${usage} takes the session manager that defineSession`);
      }
      // The client option is checked the same way; a real manager passes.
      expect(() => loosely(entry as (...a: unknown[]) => unknown, sessions, { client: 'x' })).toThrow(ConfigError);
      expect(() => loosely(entry as (...a: unknown[]) => unknown, sessions)).not.toThrow();
    });
  }
});
