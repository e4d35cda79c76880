import type { Redis } from 'ioredis';
import { withDeadline } from './deadline.js';

/** host:port of one sentinel (redis-client.ts's HostPort, named here so the two files do not import each other). */
type HostPort = { host: string; port: number };

/** What every sentinel answers for a master name it does not monitor. */
const NO_SUCH_MASTER = /No such master with that name/i;

/**
 * The sentinels answered that they monitor no master by the name the URL gives: a wrong name, not an
 * outage. Its message says so, the name asked for and the names they know; `advice` what to change.
 */
export class SentinelMasterNameError extends Error {
  override readonly name = 'SentinelMasterNameError';
  constructor(
    readonly masterName: string,
    /** The names the sentinels monitor (SENTINEL MASTERS); undefined when they could not be listed. */
    readonly known: readonly string[] | undefined,
    sentinels: readonly HostPort[],
  ) {
    const where = sentinels.map((s) => `${s.host.includes(':') ? `[${s.host}]` : s.host}:${s.port}`).join(', ');
    const they =
      known === undefined
        ? ''
        : known.length
          ? ` (they know ${known.map((n) => `"${n}"`).join(', ')})`
          : ' (they monitor none)';
    super(`the sentinels at ${where} answer, but know no master named "${masterName}"${they}`);
  }

  /** What to do, as a sentence (without the final period). */
  get advice(): string {
    const name = this.known?.length === 1 ? this.known[0] : '<master name>';
    return `The master name is wrong: write the one the sentinels monitor after the hosts in the URL, redis+sentinel://…/${name}`;
  }
}

/** Whether a connection error is the sentinels saying they monitor no master by the URL's name. */
export function isUnknownMasterName(err: Error): boolean {
  return NO_SUCH_MASTER.test(err.message);
}

/** The advice for a failed Redis call: the master name when the sentinels said it is wrong, else `otherwise`. */
export function redisAdvice(lastError: Error | undefined, otherwise: string): string {
  return lastError instanceof SentinelMasterNameError ? lastError.advice : otherwise;
}

/**
 * Turns the sentinels' "No such master with that name" (ioredis wraps it in "All sentinels are
 * unreachable") into a SentinelMasterNameError for `onError`. The names they know are asked once with
 * SENTINEL MASTERS, within `timeoutMs`; until that answers (or if it cannot) the error names none.
 */
export function sentinelNameErrors(
  o: { name: string; sentinels: HostPort[]; timeoutMs: number; open: (s: HostPort) => Redis },
  onError: (err: Error) => void,
): (err: Error) => void {
  let named: SentinelMasterNameError | undefined;
  let asking = false;
  return (err: Error) => {
    if (!NO_SUCH_MASTER.test(err.message)) return onError(err);
    if (named) return onError(named);
    onError(new SentinelMasterNameError(o.name, undefined, o.sentinels));
    if (asking) return;
    asking = true;
    void knownMasters(o).then((known) => {
      named = new SentinelMasterNameError(o.name, known, o.sentinels);
      onError(named);
    });
  };
}

/** The master names the first sentinel that answers monitors, or undefined when none does in time. */
async function knownMasters(o: {
  sentinels: HostPort[];
  timeoutMs: number;
  open: (s: HostPort) => Redis;
}): Promise<string[] | undefined> {
  for (const s of o.sentinels) {
    const client = o.open(s);
    client.on('error', () => {});
    try {
      const masters = (await withDeadline(() => client.call('SENTINEL', 'MASTERS'), o.timeoutMs)) as unknown[];
      return masters.flatMap((m) => {
        const flat = Array.isArray(m) ? (m as unknown[]) : [];
        const i = flat.indexOf('name');
        return i >= 0 && typeof flat[i + 1] === 'string' ? [flat[i + 1] as string] : [];
      });
    } catch {
      // The next sentinel, if any.
    } finally {
      client.disconnect();
    }
  }
  return undefined;
}
