import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { createWebNode, nodeConfigFromEnv } from 'shoal';
import probe from './shoal.app.js';

/** The probe in a plain node:http server, as an app that runs its own server would host it. */
const { values } = parseArgs({
  options: { port: { type: 'string', default: '3000' }, host: { type: 'string', default: '127.0.0.1' } },
});
const node = await createWebNode(probe, nodeConfigFromEnv(process.env, 'web'));
const server = createServer(node.handler);
server.listen(Number(values.port), values.host, () => {
  console.log(JSON.stringify({ msg: 'probe listening', port: Number(values.port), pid: process.pid }));
});

const stop = () => {
  server.close(() => {
    void node.close().finally(() => process.exit(0));
  });
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
