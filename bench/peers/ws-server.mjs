/**
 * The ceiling for fan-out: one process, the `ws` package, no session, no bus. Every
 * client on `/` is a subscriber; text frames from the one client on `/publish` are
 * broadcast to all of them with the techniques shoal's gateway uses, so that this stays
 * the ceiling: each WebSocket frame is built once, the frames of one tick are joined once,
 * and the same bytes leave in one write per socket at the next tick. (ws's own broadcast
 * example, `client.send(data)` per socket, makes a system call per frame per socket and
 * is several times slower.)
 * Flags: --port, --host. GET /healthz answers.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocketServer } from 'ws';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '3000' }, host: { type: 'string', default: '127.0.0.1' } },
});

const subscribers = new Set();
/**
 * The frames of this tick, and the subscribers they are pending for: each subscriber's
 * pending frames are a run of this list (first..last), joined once per distinct run and
 * written to the socket in one write at the next tick, as shoal's gateway does.
 */
const tickFrames = [];
const runs = new Map();
let pending = [];
function runOf(first, last) {
  if (first === last) return tickFrames[first];
  const key = first * 2 ** 26 + last;
  let run = runs.get(key);
  if (!run) {
    run = Buffer.concat(tickFrames.slice(first, last + 1));
    runs.set(key, run);
  }
  return run;
}
function flushAll() {
  const outs = pending;
  pending = [];
  for (const s of outs) {
    const bytes = runOf(s.tickFirst, s.tickLast);
    s.tickFirst = -1;
    if (s.readyState === s.OPEN && !s.socket.destroyed) s.socket.write(bytes);
  }
  tickFrames.length = 0;
  runs.clear();
}
/** An unmasked text frame (RFC 6455), as a server sends it; permessage-deflate is off. */
function textFrame(payload) {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81;
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  payload.copy(frame, head);
  return frame;
}

const server = createServer((req, res) => {
  res.writeHead(req.url === '/healthz' ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ok: req.url === '/healthz', connections: subscribers.size }));
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => {
    // The connection this WebSocket writes to: frames are written to it directly.
    ws.socket = socket;
    wss.emit('connection', ws, req);
  });
});

wss.on('connection', (ws, req) => {
  ws.on('error', () => {});
  if (req.url?.startsWith('/publish')) {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const index = tickFrames.push(textFrame(data)) - 1;
      if (index === 0) process.nextTick(flushAll);
      for (const s of subscribers) {
        if (s.readyState !== s.OPEN) continue;
        if (s.tickFirst < 0) {
          s.tickFirst = index;
          pending.push(s);
        }
        s.tickLast = index;
      }
    });
    return;
  }
  ws.tickFirst = -1;
  ws.tickLast = -1;
  subscribers.add(ws);
  ws.on('close', () => subscribers.delete(ws));
  ws.send('{"type":"ready"}');
});

server.listen(Number(values.port), values.host, () => {
  console.log(JSON.stringify({ msg: 'ws peer listening', port: Number(values.port), pid: process.pid }));
});
const stop = () => {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
