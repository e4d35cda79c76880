import { execFileSync } from 'node:child_process';

/**
 * Fails early, in words, when a process cannot hold `sockets` descriptors: a server past its
 * limit refuses connections with EMFILE, which would otherwise show up as a slow benchmark.
 * Children inherit this process's limit.
 */
export function requireOpenFiles(sockets: number): void {
  if (process.platform === 'win32') return;
  let limit = Number.POSITIVE_INFINITY;
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    if (out !== 'unlimited') limit = Number(out);
  } catch {
    return;
  }
  const needed = sockets + 1024;
  if (Number.isFinite(limit) && limit < needed) {
    throw new Error(
      `open-file limit is ${limit}, this scenario needs about ${needed} in one process: ` +
        `run it from a shell after \`ulimit -n ${Math.max(65_536, needed)}\` (or lower the socket count)`,
    );
  }
}
