/**
 * Preloaded into a server by the memory benchmark (`node --expose-gc --import <this>`):
 * on SIGUSR2 it runs full garbage collections until the heap stops shrinking and prints
 * `BENCH_MEMORY <n> <process.memoryUsage() JSON>` on stdout, n counting the reports.
 */
import { setTimeout as sleep } from 'node:timers/promises';

let reports = 0;
process.on('SIGUSR2', async () => {
  const gc = globalThis.gc;
  if (typeof gc === 'function') {
    let last = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 10; i++) {
      gc();
      await sleep(50);
      const used = process.memoryUsage().heapUsed;
      if (used >= last * 0.995) break;
      last = used;
    }
  }
  process.stdout.write(`BENCH_MEMORY ${++reports} ${JSON.stringify(process.memoryUsage())}\n`);
});
