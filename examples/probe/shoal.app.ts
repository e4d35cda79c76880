import { defineApp } from '../../src/cli/app-module.js';
import { createProbe, probeSessionOptions } from './app.js';

/** The probe as an app module: `shoal start --app examples/probe/shoal.app.ts` (and `shoal gateway --app …`). */
export default defineApp({
  async web({ env }) {
    const probe = await createProbe(env);
    return {
      handler: probe.app,
      ready: async () => {
        await probe.store.ping();
        await probe.bus.ping();
      },
      close: probe.close,
    };
  },
  realtime: {
    // Any signed-in visitor may join a room; their own user:/session: channels are always allowed.
    authorize: (_session, channel) => channel.startsWith('room:'),
    session: ({ env }) => probeSessionOptions(env),
  },
});
