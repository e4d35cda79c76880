/** SQLSTATEs of a PostgreSQL server that answered and refused who connects or what they asked for. */
const PG_REFUSALS: Record<string, string> = {
  '28000': 'the role', // invalid_authorization_specification: no such role, or pg_hba.conf refuses it
  '28P01': 'the password', // invalid_password
  '3D000': 'the database', // invalid_catalog_name: no such database
  '42501': 'the privileges', // insufficient_privilege
};

/** Refusals in other servers' words: Redis (NOAUTH, WRONGPASS), NATS (Authorization Violation), RabbitMQ (ACCESS_REFUSED, a virtual host). */
const REFUSED_TEXT =
  /\b(NOAUTH|WRONGPASS|Authorization Violation|ACCESS[_-]REFUSED|authentication failed|refused the virtual host)\b/i;

/**
 * True when a backend answered and refused the credentials, the role or the database a URL names,
 * as opposed to not answering: starting the server would not help, correcting the URL would. Looks
 * through the error's causes, where the client library's own error is kept.
 */
export function refusedByServer(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && Object.hasOwn(PG_REFUSALS, code)) return true;
    if (REFUSED_TEXT.test(e.message)) return true;
  }
  return false;
}
