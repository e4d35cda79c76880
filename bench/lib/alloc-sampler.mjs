/**
 * Preloaded into a benchmarked server (`node --import ./bench/lib/alloc-sampler.mjs …`): V8's sampling
 * heap profiler, counting every allocation sampled, collected ones included (what the garbage collector
 * has to deal with, not what stays). SIGUSR2 starts a window; the next SIGUSR2 ends it and writes
 * `{ bytes, sites }` to $BENCH_ALLOC_OUT: the estimated bytes allocated in the window and the largest
 * allocating functions. Bytes per request do not depend on what else the machine runs, as CPU time does.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const out = process.env.BENCH_ALLOC_OUT;
const intervalBytes = Number(process.env.BENCH_ALLOC_INTERVAL ?? 512);
const session = new Session();
session.connect();
session.post('HeapProfiler.enable');
let sampling = false;

process.on('SIGUSR2', () => {
  if (!sampling) {
    sampling = true;
    session.post('HeapProfiler.startSampling', {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    return;
  }
  sampling = false;
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err || !out) return;
    writeFileSync(out, JSON.stringify(summarize(result.profile.head)));
  });
});

/** Total bytes, and self bytes per function (name, file and line) sorted by size. */
function summarize(head) {
  const sites = new Map();
  let bytes = 0;
  const stack = [head];
  while (stack.length > 0) {
    const node = stack.pop();
    bytes += node.selfSize;
    if (node.selfSize > 0) {
      const { functionName, url, lineNumber } = node.callFrame;
      const site = `${functionName || '(anonymous)'} ${url.replace(/^file:\/\//, '')}:${lineNumber + 1}`;
      sites.set(site, (sites.get(site) ?? 0) + node.selfSize);
    }
    stack.push(...node.children);
  }
  return { bytes, sites: [...sites].sort((a, b) => b[1] - a[1]).slice(0, 40) };
}
