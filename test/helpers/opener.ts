import { afterAll } from 'vitest';

/**
 * Opens clients (buses, stores) for a describe's own tests through `open(extra)`, and closes every
 * one it opened after that describe's tests (a close that fails does not fail the others). Call it
 * inside the describe.
 */
export function closedAfterAll<C extends { close(): Promise<unknown> }, O>(
  open: (extra: O) => Promise<C>,
): (extra?: O) => Promise<C> {
  const opened: C[] = [];
  afterAll(async () => {
    await Promise.allSettled(opened.map((c) => c.close()));
  });
  return async (extra = {} as O) => {
    const client = await open(extra);
    opened.push(client);
    return client;
  };
}
