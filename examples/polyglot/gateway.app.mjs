// The app module `shoal gateway --app` needs. The app itself is app.py: the gateways ask it who
// connects (SHOAL_CONNECT_PROXY_URL) and, with tokens, check its JWTs (SHOAL_TOKEN_SECRET); the
// channels a user may join come from those answers, so there is no `authorize` here. `web` is
// never run: the Python app serves the pages.
import { defineApp } from 'shoal';

export default defineApp({
  realtime: {},
  web: () => (_req, res) => {
    res.statusCode = 404;
    res.end('served by app.py\n');
  },
});
