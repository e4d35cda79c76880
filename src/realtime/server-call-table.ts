import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Bus } from '../bus/contract.js';
import { sendJson } from '../core/http.js';
import { readServerCall } from './http-publish.js';
import { BadCallError } from './server-calls.js';

/** One server API call once its bearer key and JSON body have passed. */
export interface ServerCall {
  /** What the body must look like, said when it is not a JSON object. */
  readonly shape: string;
  /** The body's fields; any other is refused with 400, as a typo would otherwise be ignored. */
  readonly fields: readonly string[];
  /** The status of a successful answer: 200 for a read, 202 for a command put on the bus. */
  readonly status: 200 | 202;
  /** The answer's body; a BadCallError is the caller's mistake and answered 400 with its message. */
  readonly answer: (bus: Bus, body: Record<string, unknown>) => Promise<unknown>;
}

/** A route table of server API calls, dispatched one way: key, body, answer or 400 saying what was wrong. */
export class ServerCallTable<P extends string> {
  readonly paths: readonly P[];

  constructor(private readonly calls: Readonly<Record<P, ServerCall>>) {
    this.paths = Object.keys(calls) as P[];
  }

  has(path: string): path is P {
    return Object.hasOwn(this.calls, path);
  }

  async handle(path: P, req: IncomingMessage, res: ServerResponse, bus: Bus, key: string | undefined): Promise<void> {
    const call = this.calls[path];
    const body = await readServerCall(req, res, key, call.shape, call.fields);
    if (!body) return;
    let answer: unknown;
    try {
      answer = await call.answer(bus, body);
    } catch (err) {
      if (err instanceof BadCallError) return sendJson(res, 400, { error: err.message });
      throw err;
    }
    sendJson(res, call.status, answer);
  }
}
