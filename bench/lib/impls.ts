import type { NodeSpec } from './nodes.js';

export type ImplName =
  | 'shoal'
  | 'express-shoal'
  | 'drop-in'
  | 'express-session'
  | 'bare'
  | 'express-floor'
  | 'fastify-shoal'
  | 'fastify-session'
  | 'fastify-bare'
  | 'node-shoal'
  | 'node-bare'
  | 'hono-shoal'
  | 'hono-bare';

export interface Impl {
  name: ImplName;
  label: string;
  script: string;
  cookieName: string | null;
  /** Whether it keeps state, i.e. whether session reads/writes can be checked. */
  stateful: boolean;
}

/** The servers compared: same routes (the probe protocol), different session layers. */
export const IMPLS: Record<ImplName, Impl> = {
  shoal: {
    name: 'shoal',
    label: 'shoal (probe, redis store)',
    script: 'examples/probe/server.ts',
    cookieName: 'shoal.sid',
    stateful: true,
  },
  'express-shoal': {
    name: 'express-shoal',
    label: "shoal/express, the express-session peer's app (redis store)",
    script: 'bench/peers/express-shoal-app.ts',
    cookieName: 'shoal.sid',
    stateful: true,
  },
  'drop-in': {
    name: 'drop-in',
    label: 'shoal/express-session drop-in (redis store)',
    script: 'bench/peers/drop-in-app.ts',
    cookieName: 'connect.sid',
    stateful: true,
  },
  'express-session': {
    name: 'express-session',
    label: 'express-session + connect-redis',
    script: 'bench/peers/express-session-app.mjs',
    cookieName: 'connect.sid',
    stateful: true,
  },
  bare: {
    name: 'bare',
    label: 'bare Express (no session)',
    script: 'bench/peers/bare-app.mjs',
    cookieName: null,
    stateful: false,
  },
  'express-floor': {
    name: 'express-floor',
    label: 'Express + signed cookie + the same Redis round trip, nothing else (floor)',
    script: 'bench/peers/express-floor-app.mjs',
    cookieName: 'shoal.sid',
    stateful: true,
  },
  'fastify-shoal': {
    name: 'fastify-shoal',
    label: 'Fastify + shoal/fastify (redis store)',
    script: 'bench/peers/fastify-shoal-app.ts',
    cookieName: 'shoal.sid',
    stateful: true,
  },
  'fastify-session': {
    name: 'fastify-session',
    label: 'Fastify + @fastify/session + connect-redis',
    script: 'bench/peers/fastify-session-app.mjs',
    cookieName: 'sessionId',
    stateful: true,
  },
  'fastify-bare': {
    name: 'fastify-bare',
    label: 'bare Fastify (no session)',
    script: 'bench/peers/fastify-bare-app.mjs',
    cookieName: null,
    stateful: false,
  },
  'node-shoal': {
    name: 'node-shoal',
    label: 'node:http + shoal/node (redis store)',
    script: 'bench/peers/node-shoal-app.ts',
    cookieName: 'shoal.sid',
    stateful: true,
  },
  'node-bare': {
    name: 'node-bare',
    label: 'bare node:http (no session)',
    script: 'bench/peers/node-bare-app.mjs',
    cookieName: null,
    stateful: false,
  },
  'hono-shoal': {
    name: 'hono-shoal',
    label: 'Hono + shoal/hono (redis store)',
    script: 'bench/peers/hono-shoal-app.ts',
    cookieName: 'shoal.sid',
    stateful: true,
  },
  'hono-bare': {
    name: 'hono-bare',
    label: 'bare Hono (no session)',
    script: 'bench/peers/hono-bare-app.mjs',
    cookieName: null,
    stateful: false,
  },
};

/** Servers of a framework other than Express, by name prefix, and the bare server of each. */
const BARE_BY_PREFIX: Array<[string, ImplName]> = [
  ['fastify-', 'fastify-bare'],
  ['node-', 'node-bare'],
  ['hono-', 'hono-bare'],
];

/** The server without a session of the same framework as `impl`: what "above bare" subtracts. */
export function bareOf(impl: ImplName): ImplName {
  return BARE_BY_PREFIX.find(([prefix]) => impl.startsWith(prefix))?.[1] ?? 'bare';
}

export const BENCH_SECRET = 'bench-secret-0123456789abcdefghijklmnopqrstuvwxyz';

/** How to start one node of an implementation against a Redis URL, isolated under `runId`. */
export function implSpec(
  impl: Impl,
  redisUrl: string,
  runId: string,
  extra: { nodeFlags?: string[]; script?: string } = {},
): NodeSpec {
  return {
    name: impl.name,
    script: extra.script ?? impl.script,
    nodeFlags: extra.nodeFlags ?? [],
    env: {
      NODE_ENV: 'production',
      SHOAL_STORE: redisUrl,
      // Every shoal key carries the run id, so runs never collide and cleanup finds them all.
      SHOAL_NAMESPACE: runId,
      // The bus only carries session-end events here; in-process keeps it out of the numbers
      // and off the shared .shoal/shoal.db the default would write to.
      SHOAL_BUS: 'memory:',
      SHOAL_SECRETS: BENCH_SECRET,
      SHOAL_COOKIE_SECURE: 'false',
      BENCH_REDIS_PREFIX: `${runId}:sess:`,
    },
  };
}
