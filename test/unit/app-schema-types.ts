/**
 * Compile-time check (npm run typecheck): the schema given to defineApp<Schema>() types
 * `who.attributes` in realtime.authorize and realtime.connectionInfo, as it types the web tier's sessions.
 */
import { defineApp } from 'shoal';

type Schema = { profile?: { name: string }; role: 'admin' | 'member' };

export const typed = defineApp<Schema>({
  realtime: {
    connectionInfo: (who) => ({ name: who.attributes.profile?.name }),
    authorize: (who, channel) => {
      const role: 'admin' | 'member' | undefined = who.attributes.role;
      // @ts-expect-error: not in the schema
      void who.attributes.nothing;
      return channel === 'room:admins' ? role === 'admin' : true;
    },
  },
});
