import type { SessionSchema } from './options.js';
import type { Session } from './session.js';

/**
 * The attributes of a request's session as the framework adapters type them (`req.session` in
 * Express, `request.session` in Fastify, …). Empty by default: any key, values of type unknown.
 * An app names its own attributes once, by declaration merging:
 *
 *   declare module 'shoal' {
 *     interface SessionData { cart: { items: string[] }; visits: number }
 *   }
 */
// biome-ignore lint/suspicious/noEmptyInterface: apps add their attributes to it by declaration merging
export interface SessionData {}

/** A request's session typed by SessionData; keys it does not name stay readable as unknown. */
export type RequestSession = Session<SessionData & SessionSchema>;
