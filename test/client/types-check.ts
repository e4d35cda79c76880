/**
 * Compile-time checks of the SDK's public types, run by `npm run typecheck`:
 * the browser's and the `ws` package's constructors fit the injectable slots,
 * and an event map narrows `data` by `event`.
 */
import { WebSocket as NodeWs } from 'ws';
import type { EventSourceConstructor, WebSocketConstructor } from '../../src/client/index.js';
import { connect } from '../../src/client/index.js';
export const a: WebSocketConstructor = globalThis.WebSocket;
export const b: EventSourceConstructor = globalThis.EventSource;
export const c: WebSocketConstructor = NodeWs;
const rt = connect<{ chat: { n: number }; bye: null }>('wss://x');
rt.subscribe('room', (m) => {
  if (m.event === 'chat') {
    const n: number = m.data.n;
    void n;
  }
  // @ts-expect-error data of bye is null
  if (m.event === 'bye') m.data.n;
});
const h = (m: { offset: number }) => void m;
rt.subscribe('x', h);
rt.unsubscribe('x', h);
