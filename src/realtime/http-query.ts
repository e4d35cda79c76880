import type { Bus } from '../bus/contract.js';
import { queryChannels, queryPresence } from './presence-query.js';
import { ServerCallTable } from './server-call-table.js';
import { appChannel, BadCallError, readHistory } from './server-calls.js';

/** How long a presence or channels call waits for the gateways' answers. */
const ANSWER_TIMEOUT_MS = 1000;

/** POST /presence, /presence_stats, /history, /channels, with the bearer key of `POST /publish`: 200 with the answer. */
export const QUERIES = new ServerCallTable({
  '/presence': {
    shape: '{"channel": "...", "clients"?: true}',
    fields: ['channel', 'clients'],
    status: 200,
    answer: async (bus: Bus, b: Record<string, unknown>) => {
      if (b.clients !== undefined && typeof b.clients !== 'boolean') {
        throw new BadCallError('clients must be true or false: true lists each connection with its info');
      }
      return queryPresence(bus, appChannel(b.channel), { timeoutMs: ANSWER_TIMEOUT_MS, clients: b.clients === true });
    },
  },
  '/presence_stats': {
    shape: '{"channel": "..."}',
    fields: ['channel'],
    status: 200,
    answer: async (bus: Bus, b: Record<string, unknown>) => {
      const p = await queryPresence(bus, appChannel(b.channel), { timeoutMs: ANSWER_TIMEOUT_MS });
      return { users: p.users.length, connections: p.connections, gateways: p.gateways, complete: p.complete };
    },
  },
  '/history': {
    shape: '{"channel": "...", "limit"?: n, "since"?: {"epoch": "...", "offset": n}}',
    fields: ['channel', 'limit', 'since'],
    status: 200,
    answer: async (bus: Bus, b: Record<string, unknown>) =>
      readHistory(bus, b.channel, { limit: b.limit, since: b.since }),
  },
  '/channels': {
    shape: '{"pattern"?: "prefix"}',
    fields: ['pattern'],
    status: 200,
    answer: async (bus: Bus, b: Record<string, unknown>) => {
      if (b.pattern !== undefined && typeof b.pattern !== 'string') {
        throw new BadCallError('pattern must be a string: the prefix of the channels to list');
      }
      return queryChannels(bus, b.pattern ?? '', ANSWER_TIMEOUT_MS);
    },
  },
});
