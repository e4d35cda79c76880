/**
 * A TCP proxy that adds a fixed delay each way, run as its own process:
 * `node --import tsx bench/lib/delay-proxy.ts <host> <port> <one-way delay ms>`.
 * Loopback Redis answers in ~50 µs; a managed Redis in another zone takes about a
 * millisecond. Only with that latency does the number of round trips per request show.
 * Prints `{"port": n}` once listening.
 */
import { connect, createServer } from 'node:net';

const [host = '127.0.0.1', port = '6379', delay = '0.5'] = process.argv.slice(2);
const delayMs = Number(delay);

const server = createServer((client) => {
  client.setNoDelay(true);
  const upstream = connect({ host, port: Number(port) });
  upstream.setNoDelay(true);
  // Timers of equal delay fire in the order they were set, so the byte order is kept.
  client.on('data', (chunk) => setTimeout(() => upstream.write(chunk), delayMs));
  upstream.on('data', (chunk) => setTimeout(() => client.write(chunk), delayMs));
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close);
  upstream.on('error', close);
  client.on('close', () => setTimeout(close, delayMs));
  upstream.on('close', () => setTimeout(close, delayMs));
});

server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
process.once('SIGTERM', () => process.exit(0));
