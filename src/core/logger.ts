import { type Logger, pino } from 'pino';

/**
 * JSON logs (pino) on stdout, one line per event, level from SHOAL_LOG_LEVEL.
 * Session ids never appear in logs: callers log hashId(id).
 */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  return pino({ level: process.env.SHOAL_LOG_LEVEL ?? 'info', base: { pid: process.pid, ...bindings } });
}

export type { Logger };
