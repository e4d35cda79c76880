/** Where a reader stands in a channel's log. Imports nothing from Node (shared with the browser SDK). */
export interface Cursor {
  epoch: string;
  offset: number;
}

/** Longest epoch a client may send back: epochs the buses make are far shorter. */
const MAX_EPOCH = 100;

/**
 * A cursor a client sent (`sub.from`, `history.since`): `{ epoch: string, offset: non-negative
 * integer }`, copied to just those two fields; undefined for anything else.
 */
export function parseCursor(value: unknown): Cursor | undefined {
  const c = value as Record<string, unknown> | null;
  if (
    typeof c !== 'object' ||
    c === null ||
    typeof c.epoch !== 'string' ||
    c.epoch.length > MAX_EPOCH ||
    !Number.isSafeInteger(c.offset) ||
    (c.offset as number) < 0
  ) {
    return undefined;
  }
  return { epoch: c.epoch, offset: c.offset as number };
}
