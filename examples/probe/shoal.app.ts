import { defineApp } from 'shoal';
import { createProbe, ended } from './app.js';

/** Only for the probe: tests and benchmarks run it without configuring a secret. */
const DEV_SECRET = 'probe-development-secret-never-use-in-production';

/**
 * The probe as an app module: `shoal start --app examples/probe/shoal.app.ts` (and `shoal web|gateway
 * --app …`); examples/probe/server.ts serves the same definition from a plain node:http server.
 */
export default defineApp({
  session: ({ env }) => ({
    ...(env.SHOAL_SECRETS ? {} : { secrets: [DEV_SECRET] }),
    // Plain HTTP unless told otherwise: tests talk to nodes directly, without TLS.
    cookie: { secure: env.SHOAL_COOKIE_SECURE === 'true' },
    // memcached cannot list ended sessions, so there is no end event to record there.
    ...(env.SHOAL_STORE?.startsWith('memcached:')
      ? {}
      : {
          onSessionEnd: async (snapshot, { reason, attempt }) => {
            // A slow handler lets tests kill a process while it holds claims.
            const delay = Number(env.SHOAL_PROBE_END_DELAY ?? 0);
            if (delay) await new Promise((r) => setTimeout(r, delay));
            const { id, userId, attributes, endedAt } = snapshot;
            ended.push({ id, reason, attempt, userId, attributes, endedAt, handledAt: Date.now() });
          },
        }),
  }),
  client: true,
  realtime: {
    // Any signed-in visitor may join a room; their own user:/session: channels are always allowed.
    authorize: (_session, channel) => channel.startsWith('room:'),
  },
  web: createProbe,
});
