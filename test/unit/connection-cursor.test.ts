import { describe, expect, it } from 'vitest';
import { memoryBus } from '../../src/bus/memory.js';
import { decodeCursors } from '../../src/protocol/messages.js';
import { Connection, type Transport } from '../../src/realtime/connection.js';
import type { Identity } from '../../src/realtime/identity.js';

/** An SSE stream's side of a connection: what it sent, with each frame's event id. */
function sseTransport() {
  const sent: Array<{ frame: string; id: string }> = [];
  const transport: Transport = {
    kind: 'sse',
    buffered: () => 0,
    sendMessage: (frame, cursorId) => sent.push({ frame, id: cursorId() }),
    ping: () => {},
    close: () => {},
  };
  return { transport, sent };
}

const who: Identity = {
  source: 'token',
  sessionId: null,
  userId: 'ana',
  attributes: {},
  granted: [],
  expiresAt: null,
  info: null,
};

describe("an SSE event id while a connection's channels are still being joined", () => {
  it('carries where a joining channel starts, and leaves out one whose start is not known yet', async () => {
    const bus = memoryBus();
    const { transport, sent } = sseTransport();
    const c = new Connection('1', who, transport, bus, 1 << 20, () => {});
    const published = await bus.publish('room:a', { event: 'e', data: '1' });
    await c.join('room:a', { epoch: published.epoch, offset: 0 });
    // Joins begun and not done: one from a known start (a resume, or hello's start), one not (a bare sub).
    c.enter('room:b', { epoch: 'e-b', offset: 7 });
    c.enter('room:c');
    const next = await bus.publish('room:a', { event: 'e', data: '2' });
    c.deliver(next, JSON.stringify({ type: 'msg', channel: 'room:a', offset: next.offset }));
    const id = sent.at(-1)?.id as string;
    expect(Object.fromEntries(decodeCursors(id))).toEqual({
      'room:a': { epoch: next.epoch, offset: next.offset },
      'room:b': { epoch: 'e-b', offset: 7 },
    });
    await bus.close();
  });
});
