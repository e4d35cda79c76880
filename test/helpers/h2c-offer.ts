import { connect } from 'node:net';

/**
 * Sends one HTTP/1.1 request offering an upgrade to h2c, as Java's HttpClient does on every
 * plain-http request, and reads the answer off the raw socket (node's own client would treat the
 * offer specially). The server is expected to decline the offer by answering the request itself.
 */
export function requestOfferingH2c(
  url: string,
  method: string,
  headers: Record<string, string> = {},
  body = '',
): Promise<{ status: number; headers: string; body: string }> {
  const { hostname, port, pathname, search } = new URL(url);
  const lines = [
    `${method} ${pathname}${search} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    'Connection: Upgrade, HTTP2-Settings',
    'Upgrade: h2c',
    'HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let got = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within 5 s; got: ${JSON.stringify(got.slice(0, 300))}`));
    }, 5000);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      got += chunk.toString('latin1');
      const end = got.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = got.slice(0, end);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? Number.NaN);
      const rest = got.slice(end + 4);
      if (!Number.isNaN(length) && Buffer.byteLength(rest, 'latin1') < length) return;
      clearTimeout(timer);
      socket.end();
      resolve({
        status: Number(head.split(' ')[1]),
        headers: head,
        body: Buffer.from(rest, 'latin1').toString('utf8'),
      });
    });
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body}`);
  });
}
