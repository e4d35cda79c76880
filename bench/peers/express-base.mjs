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

// An Express app is a node:http request listener: the node peers' server start and shutdown serve it as is.
export { listenUntilSignal } from './node-base.mjs';
