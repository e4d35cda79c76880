/**
 * `npm run bench [-- --quick] [-- --only <scenario>]`: every scenario in order, each
 * writing bench/results/<name>.json|md and its section of bench/results/latest.md.
 * Add a scenario by exporting a Scenario from its file and listing it here.
 */
import { busLatency } from './bus-latency.js';
import { concurrency } from './concurrency.js';
import { fanout } from './fanout.js';
import type { Scenario } from './lib/scenario.js';
import { main } from './lib/scenario.js';
import { lifecycleLag } from './lifecycle-lag.js';
import { memory } from './memory.js';
import { reconnectStorm } from './reconnect-storm.js';
import {
  sessionHttp,
  sessionHttpFastify,
  sessionHttpHono,
  sessionHttpNode,
  sessionHttpRemote,
} from './session-http.js';

export const SCENARIOS: Scenario[] = [
  concurrency,
  sessionHttp,
  sessionHttpRemote,
  sessionHttpFastify,
  sessionHttpNode,
  sessionHttpHono,
  fanout,
  memory,
  reconnectStorm,
  busLatency,
  lifecycleLag,
];

await main(SCENARIOS);
