import { writeSync } from 'node:fs';
import { type DestinationStream, type Logger as PinoLogger, pino, stdSerializers } from 'pino';

/**
 * What shoal logs through: pino's `(obj, msg)` calls. A pino logger fits as it is; so does anything
 * shaped like one (a child logger of the app's, a test's collector).
 */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/**
 * JSON logs (pino) on stdout, one line per event, at `level` and above (CLI nodes: SHOAL_LOG_LEVEL,
 * see logLevelFromEnv). Session ids never appear in logs: callers log hashId(id).
 */
export function createLogger(
  bindings: Record<string, unknown> = {},
  level = 'info',
  destination?: DestinationStream,
): PinoLogger {
  // pino's default error serializer appends every cause's message to the error's own ("…points at it.:
  // connect ECONNREFUSED"); shoal's messages already name their cause, so the cause is kept apart.
  const options = {
    level,
    base: { pid: process.pid, ...bindings },
    serializers: { err: stdSerializers.errWithCause },
  };
  return pino(options, destination ?? stdoutLines());
}

/** How long one line may wait on a full stdout pipe (its reader busy) before it is dropped. */
const FULL_PIPE_WAIT_MS = 1000;
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * stdout, one synchronous write per line as pino's default destination does, but a line with no
 * reader left (EPIPE: the `shoal start` that read a node's output was killed) is dropped, and so is
 * every later one. pino's default retries such a write forever, blocking the process: a gateway
 * then never finished draining on SIGTERM. A reader that is only slow (EAGAIN) is waited for, up to
 * FULL_PIPE_WAIT_MS a line.
 */
function stdoutLines(fd = 1): DestinationStream {
  let gone = false;
  return {
    write(line: string) {
      if (gone) return;
      let rest = Buffer.from(line);
      const giveUpAt = Date.now() + FULL_PIPE_WAIT_MS;
      while (rest.length > 0) {
        try {
          rest = rest.subarray(writeSync(fd, rest));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if ((code === 'EAGAIN' || code === 'EBUSY') && Date.now() < giveUpAt) {
            Atomics.wait(pause, 0, 0, 10);
            continue;
          }
          if (code === 'EPIPE' || code === 'EBADF') gone = true;
          return;
        }
      }
    },
  };
}

let fallback: Logger | undefined;

/** The logger a component uses when it was given none: one pino logger at info, made on first use. */
export function defaultLogger(): Logger {
  fallback ??= createLogger();
  return fallback;
}

/** A logger that drops everything: for tests and tools that report through their own channel. */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** One structured log line: `level` picks the logger method, `msg` its message, the rest its fields. */
export type LogLine = Record<string, unknown> & { level?: 'info' | 'warn' | 'error'; msg?: string };

/** Writes `{ level, msg, …fields }` lines to a Logger, so call sites can build one object per event. */
export function lineWriter(logger: Logger): (line: LogLine) => void {
  return ({ level = 'info', msg, ...fields }) => logger[level](fields, msg);
}
