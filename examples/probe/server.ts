import { parseArgs } from 'node:util';
import { createProbe } from './app.js';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '3000' }, host: { type: 'string', default: '127.0.0.1' } },
});
const probe = await createProbe();
const server = probe.app.listen(Number(values.port), values.host, () => {
  console.log(JSON.stringify({ msg: 'probe listening', port: Number(values.port), pid: process.pid }));
});

const stop = () => {
  server.close(() => {
    void probe.close().finally(() => process.exit(0));
  });
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
