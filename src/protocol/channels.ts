/**
 * Channel names: the rules the gateway enforces, the publisher checks before it
 * publishes and the browser SDK checks before it subscribes. Imports nothing from Node.
 */

const MAX_CHANNEL = 200;
const CHANNEL = /^[A-Za-z0-9_:.@\-/]+$/;

/** What an error message tells a caller whose channel name was refused. */
export const CHANNEL_RULE = '1–200 characters from A–Z a–z 0–9 _ : . @ - /';

/** Channels only the gateways use (canary, presence, control): never joined by or published to from outside. */
export const INTERNAL_CHANNEL_PREFIX = '_shoal:';
/** Internal events (never app events) start with this prefix. */
export const INTERNAL_EVENT_PREFIX = 'shoal:';

export function isValidChannel(channel: unknown): channel is string {
  return typeof channel === 'string' && channel.length > 0 && channel.length <= MAX_CHANNEL && CHANNEL.test(channel);
}

/** A user's own channel, joined automatically by each of that user's connections. */
export function userChannel(userId: string): string {
  return `user:${userId}`;
}

export function isInternalChannel(channel: string): boolean {
  return channel.startsWith(INTERNAL_CHANNEL_PREFIX);
}

/**
 * `user:` and `session:` channels belong to one user or session: joined only by their owner,
 * and with no audience to show presence to.
 */
export function isPersonalChannel(channel: string): boolean {
  return channel.startsWith('session:') || channel.startsWith('user:');
}
