import { defineApp } from '../../src/cli/app-module.js';
import { createDemo, demoSessionOptions } from './app.js';
import { ROOM_CHANNEL } from './shop.js';

/** The demo as an app module: `shoal start --app examples/demo/shoal.app.ts --web 3 --gateways 2`. */
export default defineApp({
  async web({ env }) {
    const demo = await createDemo(env);
    return {
      handler: demo.app,
      ready: async () => {
        await demo.store.ping();
        await demo.bus.ping();
      },
      close: demo.close,
    };
  },
  realtime: {
    // Signed-in visitors may join the chat rooms; their own user:/session: channels are always allowed.
    authorize: (session, channel) => session.userId !== null && ROOM_CHANNEL.test(channel),
    session: ({ env }) => demoSessionOptions(env),
  },
});
