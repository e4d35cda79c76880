import { type Logger, pino } from 'pino';

/**
 * JSON logs (pino) on stdout, one line per event, at `level` and above (CLI nodes: SHOAL_LOG_LEVEL,
 * see logLevelFromEnv). Session ids never appear in logs: callers log hashId(id).
 */
export function createLogger(bindings: Record<string, unknown> = {}, level = 'info'): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } });
}

export type { Logger };
