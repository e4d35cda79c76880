import { parseDuration } from '../core/duration.js';
import { SessionValueError } from '../core/errors.js';
import { kindOf } from '../core/kind-of.js';
import type { LifetimeChange, SessionMeta } from '../stores/contract.js';

/** What `session.setLifetime()` takes: durations as text ('30d', '12h') or milliseconds. */
export interface SessionLifetime {
  /** Ends the session after this much inactivity. Default: the manager's idleTimeout. */
  idle?: string | number;
  /** Ends the session this long after it started. Default: the manager's absoluteTimeout, or `idle` if that is longer. */
  absolute?: string | number;
}

const DAY_MS = 86_400_000;
/**
 * The longest lifetime a session may be given: browsers keep a cookie at most 400 days
 * (RFC 6265bis caps Max-Age there), so a longer session would outlive every cookie naming it.
 */
export const MAX_LIFETIME_MS = 400 * DAY_MS;

const CALL = 'session.setLifetime()';
const NOTHING = 'nothing was changed';

/** setLifetime()'s argument as the store applies it, against the manager's timeouts; throws before anything is recorded. */
export function resolveLifetime(
  lifetime: SessionLifetime | null,
  defaults: { readonly idleMs: number; readonly absoluteMs: number },
): LifetimeChange {
  if (lifetime === null) return { idleMs: null, absoluteMs: defaults.absoluteMs };
  if (typeof lifetime !== 'object' || Array.isArray(lifetime)) {
    throw new SessionValueError(
      `${CALL} takes { idle, absolute }, e.g. setLifetime({ idle: '30d', absolute: '90d' }), or null for the manager's timeouts; got ${kindOf(lifetime)}; ${NOTHING}`,
    );
  }
  for (const key of Object.keys(lifetime)) {
    if (key !== 'idle' && key !== 'absolute') {
      throw new SessionValueError(
        `${CALL} does not know "${key}": give idle and/or absolute, e.g. setLifetime({ idle: '30d', absolute: '90d' }); ${NOTHING}`,
      );
    }
  }
  const idle = lifetime.idle === undefined ? undefined : durationOf('idle', lifetime.idle);
  const absolute = lifetime.absolute === undefined ? undefined : durationOf('absolute', lifetime.absolute);
  if (idle === undefined && absolute === undefined) {
    throw new SessionValueError(
      `${CALL} needs idle and/or absolute, e.g. setLifetime({ idle: '30d', absolute: '90d' }); got neither; ${NOTHING}`,
    );
  }
  if (idle !== undefined && absolute !== undefined && idle > absolute) {
    throw new SessionValueError(
      `${CALL}: idle (${show(lifetime.idle)}) is longer than absolute (${show(lifetime.absolute)}), so the session would end at absolute however active it is; give an absolute at least as long as idle, or leave absolute out (it then defaults to the longer of absoluteTimeout and idle); ${NOTHING}`,
    );
  }
  const idleMs = idle ?? defaults.idleMs;
  return { idleMs, absoluteMs: absolute ?? Math.max(defaults.absoluteMs, idleMs) };
}

/** A session's own lifetime as a store keeps it, to carry over to a new id (regenerate). */
export function lifetimeOf(meta: SessionMeta): LifetimeChange | undefined {
  if (meta.idleMs === undefined) return undefined;
  return { idleMs: meta.idleMs, absoluteMs: meta.absoluteDeadline - meta.createdAt };
}

function durationOf(name: 'idle' | 'absolute', value: unknown): number {
  let ms: number | undefined;
  if (typeof value === 'string' || typeof value === 'number') {
    try {
      ms = parseDuration(value, name);
    } catch {
      ms = undefined;
    }
  }
  if (ms === undefined || !(ms > 0)) {
    throw new SessionValueError(
      `${CALL}: ${name} must be a duration longer than 0, such as '30d', '12h' or a number of milliseconds; got ${show(value)}; ${NOTHING}`,
    );
  }
  if (ms > MAX_LIFETIME_MS) {
    throw new SessionValueError(
      `${CALL}: ${name} (${show(value)}) is longer than 400 days, the longest a browser keeps a cookie; give '400d' or less; ${NOTHING}`,
    );
  }
  return ms;
}

/** A duration as the caller wrote it: text quoted, a number as it is, anything else by its kind only. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') return String(value);
  return kindOf(value);
}
