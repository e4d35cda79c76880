/**
 * What both node:http peers have around their session layer (routing, the text body, JSON
 * answers, the X-Shoal-Node header, shutdown), so they differ in that layer alone. Plain
 * JavaScript, as peer-args.mjs.
 */
import { createServer } from 'node:http';

/** The request's body as text, at most 1 MB (as the Express peers' text parser). */
export function readText(req) {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      text += chunk;
      if (text.length > 1_048_576) req.destroy(new Error('body over 1 MB'));
    });
    req.once('end', () => resolve(text));
    req.once('error', reject);
  });
}

/** Answers `body` as JSON with `status`, and the X-Shoal-Node header. */
export function sendJson(res, node, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'x-shoal-node': node,
  });
  res.end(text);
}

/** The route a request asks for: its name and, for /set/:key, the key. Undefined: no such route. */
export function routeOf(req) {
  const url = new URL(req.url ?? '/', 'http://peer');
  const { pathname } = url;
  if (req.method === 'GET' && pathname === '/healthz') return { name: 'healthz', url };
  if (req.method === 'GET' && pathname === '/session') return { name: 'session', url };
  if (req.method === 'POST' && pathname === '/login') return { name: 'login', url };
  if (req.method === 'POST' && pathname.startsWith('/set/') && pathname.length > 5)
    return { name: 'set', url, key: decodeURIComponent(pathname.slice(5)) };
  return undefined;
}

/**
 * Serves `listener`, logs `<name> listening` once it does; on SIGTERM or SIGINT closes the server
 * (cutting open connections), then runs `cleanup`, then exits.
 */
export function listenUntilSignal(listener, { port, host }, name, cleanup) {
  const server = createServer(listener);
  server.listen(port, host, () => {
    console.log(JSON.stringify({ msg: `${name} listening`, port, pid: process.pid }));
  });
  const stop = () => {
    server.close(() => {
      if (!cleanup) process.exit(0);
      else void cleanup().finally(() => process.exit(0));
    });
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
