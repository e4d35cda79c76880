/**
 * Calls `onGone` once when the process that started this one has gone away.
 *
 * `npx shoal start` runs as npm exec → sh -c → node: `kill <npm's pid>` ends npm and the shell
 * without the signal reaching this process, which is handed to init (or a subreaper) and would
 * keep every node of the cluster running, holding its ports. A process whose parent exited is
 * reparented, so its parent pid changes: that is what is watched, whatever stopped the parent.
 * A process started by init from the first has no parent to lose, and is not watched.
 */
export function watchParent(onGone: (parentPid: number) => void, everyMs = 500): () => void {
  const parent = process.ppid;
  if (parent <= 1) return () => {};
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone(parent);
  }, everyMs);
  // Never what keeps the process alive: the balancer and the nodes are.
  timer.unref();
  return () => clearInterval(timer);
}
