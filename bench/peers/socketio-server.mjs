/**
 * The Socket.IO peer: one server of a cluster, WebSocket transport only, the Redis
 * adapter (BENCH_REDIS_URL; key prefix BENCH_SIO_KEY) so an emit from any server reaches
 * every server's sockets. Each connection joins the room BENCH_SIO_ROOM and is told
 * `ready`. Flags: --port, --host. GET /healthz answers.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '3000' }, host: { type: 'string', default: '127.0.0.1' } },
});
const room = process.env.BENCH_SIO_ROOM ?? 'bench';

const http = createServer((req, res) => {
  if (req.url === '/healthz') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ ok: true, connections: io.engine.clientsCount }));
    return;
  }
  // Socket.IO answers its own path before this handler runs; anything else is unknown.
  res.writeHead(404).end();
});
const io = new Server(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
const redisUrl = process.env.BENCH_REDIS_URL;
let pub;
let sub;
if (redisUrl) {
  pub = new Redis(redisUrl);
  sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub, { key: process.env.BENCH_SIO_KEY ?? 'socket.io' }));
}
io.on('connection', (socket) => {
  socket.join(room);
  socket.emit('ready');
});

http.listen(Number(values.port), values.host, () => {
  console.log(JSON.stringify({ msg: 'socket.io peer listening', port: Number(values.port), pid: process.pid }));
});
const stop = () => {
  void io.close();
  pub?.disconnect();
  sub?.disconnect();
  http.close(() => process.exit(0));
  http.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
