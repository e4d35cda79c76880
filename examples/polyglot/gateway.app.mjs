// An app module for `shoal gateway --app`, which this example could do without: every setting it
// uses comes from SHOAL_* variables. The app itself is app.py: the gateways ask it who connects
// (SHOAL_CONNECT_PROXY_URL) and, with tokens, check its JWTs (SHOAL_TOKEN_SECRET); the channels a
// user may join come from those answers, so there is no `authorize` here, and no `web()`: the
// Python app serves the pages.
import { defineApp } from 'shoal';

export default defineApp({ realtime: {} });
