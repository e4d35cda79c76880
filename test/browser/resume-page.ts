/**
 * The script the resume test puts in its pages: the SDK (built from the `shoal/client` entry
 * point) and a small harness on `window.resume` that opens one client, records what it delivers
 * and when its state changed, and reports it. It is added to a page the app itself served
 * (the probe's `/`), so the page has the front's real origin: the session cookie and Origin are
 * the real ones, and Chromium's local-network checks see a loopback page talking to loopback.
 */
import { build } from 'esbuild';
import { ROOT } from '../helpers/processes.js';

export async function harnessBundle(): Promise<string> {
  const out = await build({
    stdin: { contents: HARNESS, resolveDir: ROOT, sourcefile: 'resume-harness.js', loader: 'js' },
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'es2022',
    write: false,
  });
  const file = out.outputFiles[0];
  if (!file) throw new Error('esbuild produced no harness bundle');
  return file.text;
}
/** What one page reports after a round. */
export interface PageReport {
  transport: string;
  /** `data.n` of every delivered message, in delivery order. */
  got: number[];
  /** [state, at (ms since epoch), close code] in order. */
  states: Array<[string, number, number | null]>;
  /** [gateway, at] for every hello. */
  hellos: Array<[string, number]>;
  /** When each message was delivered, parallel to `got`. */
  gotAt: number[];
}

const HARNESS = `
import { connect } from 'shoal/client';
let current = null;
const helloOf = (c) =>
  new Promise((resolve) => {
    if (c.hello) return resolve(c.hello.gateway);
    const t = setTimeout(() => resolve(null), 10000);
    c.on('hello', (h) => { clearTimeout(t); resolve(h.gateway); });
  });
const joined = async (c, channel) => {
  for (let i = 0; i < 500 && c.cursor(channel) === undefined; i++) await new Promise((r) => setTimeout(r, 20));
  return c.cursor(channel) !== undefined;
};
globalThis.resume = {
  // Opens a client on \`channel\`; with \`target\`, keeps trying until one lands on that gateway
  // (the attempts stay open meanwhile, so a least-connections balancer moves on to the target).
  async open(url, transport, channel, target, tries) {
    current?.client.close();
    current = null;
    const extras = [];
    try {
      for (let i = 0; i < tries; i++) {
        const rec = { client: null, got: [], gotAt: [], states: [], hellos: [] };
        const c = connect(url, { transport });
        rec.client = c;
        // Subscribed before the first connect: the channel rides in the first URL (SSE cannot add it later
        // without reopening, which could land on another gateway).
        c.subscribe(channel, (m) => { rec.got.push(m.data.n); rec.gotAt.push(Date.now()); });
        c.on('state', (s, d) => { rec.states.push([s, Date.now(), d.code ?? null]); console.log('state', s, d.code, d.reason); });
        c.on('hello', (h) => rec.hellos.push([h.gateway, Date.now()]));
        const gw = await helloOf(c);
        if (gw && (!target || gw === target) && (await joined(c, channel))) {
          current = rec;
          return gw;
        }
        extras.push(c);
      }
      return null;
    } finally {
      for (const c of extras) c.close();
    }
  },
  count: () => current?.got.length ?? 0,
  report() {
    const { client, ...rest } = current;
    return { transport: client.transport, ...rest };
  },
};
`;
