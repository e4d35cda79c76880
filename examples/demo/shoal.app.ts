import { defineApp } from 'shoal';
import { createDemo } from './app.js';
import { type DemoEvents, type DemoSchema, ROOM_CHANNEL } from './shop.js';

/** The demo as an app module: `shoal start --app examples/demo/shoal.app.ts --web 3 --gateways 2`. */
export default defineApp<DemoSchema, DemoEvents>({
  realtime: {
    // Signed-in visitors may join the chat rooms; their own user:/session: channels are always allowed.
    authorize: (session, channel) => session.userId !== null && ROOM_CHANNEL.test(channel),
  },
  web: createDemo,
});
