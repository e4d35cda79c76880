import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A test server on a free port of 127.0.0.1. */
export interface Served {
  url: string;
  /** Stops listening and drops kept-alive connections, so close() does not wait for clients to leave. */
  close(): Promise<void>;
}

export async function listen(server: Server): Promise<Served> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
