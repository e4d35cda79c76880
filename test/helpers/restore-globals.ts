import { afterAll } from 'vitest';

/**
 * A worker runs its test files in one process (vitest.config.ts: isolate: false), so they share one
 * global object. @hono/node-server puts its own Request and Response on it when a server is made;
 * a later file's `fetch` still answers with the platform's Response, and `instanceof Response` fails.
 * Run before each file: whatever a file replaces of these is put back when it ends.
 */
const NAMES = ['Request', 'Response', 'Headers', 'fetch', 'FormData', 'Blob', 'WebSocket'] as const;
const global = globalThis as Record<string, unknown>;
const saved = NAMES.map((name) => [name, Object.getOwnPropertyDescriptor(global, name)] as const);

afterAll(() => {
  for (const [name, descriptor] of saved) {
    if (!descriptor) delete global[name];
    else if (global[name] !== descriptor.value || !('value' in descriptor))
      Object.defineProperty(global, name, descriptor);
  }
});
