import { defineApp } from '../../src/cli/app-module.js';
import { createProbe } from './app.js';

/** The probe as an app module: `shoal start --app examples/probe/shoal.app.ts`. */
export default defineApp({
  async web({ env }) {
    const probe = await createProbe(env);
    return { handler: probe.app, ready: () => probe.store.ping(), close: probe.close };
  },
});
