/**
 * What every Express peer has around its session layer, so the peers differ in that layer
 * alone. Plain JavaScript, as peer-args.mjs.
 */
import express from 'express';

/**
 * An Express app with what comes before the session layer, in this order: no X-Powered-By,
 * loopback trusted as a proxy, a text body parser (1 MB), the X-Shoal-Node header, /healthz.
 */
export function expressApp(node) {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use(express.text({ type: '*/*', limit: '1mb' }));
  app.use((_req, res, next) => {
    res.setHeader('X-Shoal-Node', node);
    next();
  });
  app.get('/healthz', (_req, res) => {
    res.json({ ok: true, node });
  });
  return app;
}

/**
 * Listens and logs `<name> listening` once it does; on SIGTERM or SIGINT closes the server
 * (cutting open connections), then runs `cleanup`, then exits.
 */
export function listenUntilSignal(app, { port, host }, name, cleanup) {
  const server = app.listen(port, host, () => {
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
