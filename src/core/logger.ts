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
  return destination ? pino(options, destination) : pino(options);
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
