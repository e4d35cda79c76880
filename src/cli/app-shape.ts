import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../core/errors.js';

/** What `shoal start` needs to know of the app module before it decides which nodes to run. */
export interface AppShape {
  /** It has web(ctx): without it, only gateways can run it. */
  web: boolean;
}

/** What the child answers: the shape, or the one-line error a node would have given. */
export type AppShapeReply = AppShape | { error: string };

// Compiled, the child is a .js beside this file; run through tsx (npm start in a checkout), the .ts source.
const CHILD = fileURLToPath(
  new URL(`./app-shape-child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
);

/** Longer than any app module takes to import; a module that never finishes importing must not hang start. */
const TIMEOUT_MS = 60_000;

/**
 * Reads the app module in a child process and says whether it has web(). Importing the module runs its
 * top-level code, which may print, open connections or keep timers running; none of that belongs in
 * the process that supervises the nodes, which otherwise never loads the app.
 */
export function readAppShape(path: string): Promise<AppShape> {
  return new Promise((resolve, reject) => {
    // stdout ignored: what the module prints as it loads is printed again by each node that loads it.
    const child = fork(CHILD, [path], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let stderr = '';
    let answered = false;
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d).slice(-2000);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new ConfigError(`the app module ${path} did not finish loading within ${TIMEOUT_MS / 1000} s`));
    }, TIMEOUT_MS);
    child.once('message', (reply: AppShapeReply) => {
      answered = true;
      clearTimeout(timer);
      if ('error' in reply) reject(new ConfigError(reply.error));
      else resolve({ web: reply.web });
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (answered) return;
      const last = stderr.trim().split('\n').at(-1) ?? '';
      reject(
        new ConfigError(
          `could not load the app module ${path}: it ended the process as it loaded (${code === null ? `signal ${signal}` : `exit code ${code}`})${last ? `: ${last}` : ''}`,
        ),
      );
    });
  });
}
