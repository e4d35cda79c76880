/**
 * docs/protocol.md is the wire protocol for clients written without the SDK: it must name every
 * frame type, URL parameter, error and close code the code has, and its cursor example must decode.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  type ClientMessage,
  CloseCode,
  decodeCursors,
  isFinalCloseCode,
  parseClientMessage,
  REPLY_CODES,
  type ServerMessage,
} from '../../src/protocol/index.js';
import { REMOVED_BY_SERVER } from '../../src/realtime/connection.js';
import { sseTransport } from '../../src/realtime/transports.js';

const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The text of one `## ` section, up to the next one. */
function section(title: string): string {
  const start = doc.indexOf(`\n## ${title}\n`);
  expect(start, `docs/protocol.md has a "## ${title}" section`).toBeGreaterThan(-1);
  const end = doc.indexOf('\n## ', start + 1);
  return doc.slice(start, end === -1 ? undefined : end);
}

/** The first cells of a section's table rows, without their backticks. */
function tableKeys(text: string): string[] {
  return [...text.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1] as string);
}

/** Every server frame type. The type below fails to compile when ServerMessage gains one not listed. */
const SERVER_TYPES = [
  'hello',
  'refreshed',
  'msg',
  'subscribed',
  'unsubscribed',
  'presence',
  'error',
  'pong',
  'reply',
] as const satisfies readonly ServerMessage['type'][];
const allServerTypes: [Exclude<ServerMessage['type'], (typeof SERVER_TYPES)[number]>] extends [never] ? true : false =
  true;

/** Every client frame type, checked the same way against ClientMessage and, below, against the parser. */
const CLIENT_TYPES = [
  'sub',
  'unsub',
  'presence',
  'ping',
  'refresh',
  'rpc',
  'pub',
  'history',
  'clients',
] as const satisfies readonly ClientMessage['type'][];
const allClientTypes: [Exclude<ClientMessage['type'], (typeof CLIENT_TYPES)[number]>] extends [never] ? true : false =
  true;

/**
 * The connect URL parameters a gateway reads: `token` in authenticate() (src/realtime/handshake.ts),
 * `channels`, `resume` and `presence` in resumeChannels() (src/realtime/resume.ts).
 */
const URL_PARAMETERS = ['token', 'channels', 'resume', 'presence'];

/**
 * The codes of `error` frames: src/realtime/dispatch.ts (`protocol`, `forbidden`, `not-subscribed`,
 * `unavailable`), src/realtime/resume.ts (`forbidden`), src/realtime/token-refresh.ts (`protocol`,
 * `unavailable`, and for subscription tokens `token-invalid`, `token-expired`, `forbidden`).
 */
const ERROR_CODES = ['protocol', 'forbidden', 'not-subscribed', 'unavailable', 'token-invalid', 'token-expired'];

/**
 * The reasons of `unsubscribed`: REMOVED_BY_SERVER (src/realtime/control.ts, resume.ts), 'forbidden'
 * (reauthorize, control.ts), 'token expired' (src/realtime/sub-token-expiry.ts).
 */
const UNSUBSCRIBED_REASONS = [REMOVED_BY_SERVER, 'forbidden', 'token expired'];

/** Whether the parser knows a frame type: anything else is refused as an unknown type. */
function parserAccepts(type: string): boolean {
  const m = parseClientMessage(JSON.stringify({ type }));
  return !('error' in m && m.error.startsWith('unknown message type'));
}

describe('docs/protocol.md', () => {
  it('lists every client frame type the parser accepts, and no other', () => {
    expect(allClientTypes && allServerTypes).toBe(true);
    const documented = tableKeys(section('Client frames'));
    // Candidates: the known types, every server type, and whatever the doc puts in the table.
    const candidates = new Set<string>([...CLIENT_TYPES, ...SERVER_TYPES, ...documented, 'subscribe', 'publish']);
    const accepted = [...candidates].filter(parserAccepts).sort();
    expect(accepted).toEqual([...CLIENT_TYPES].sort());
    expect(documented.sort()).toEqual(accepted);
  });

  it('lists every server frame type', () => {
    expect(tableKeys(section('Server frames')).sort()).toEqual([...SERVER_TYPES].sort());
  });

  it('lists every connect URL parameter in its table', () => {
    expect(tableKeys(section('Connect URL parameters')).sort()).toEqual([...URL_PARAMETERS].sort());
  });

  it('names every error code, reply code and unsubscribed reason', () => {
    const server = section('Server frames');
    for (const code of ERROR_CODES) expect(server, `error code ${code}`).toContain(`\`${code}\``);
    for (const code of REPLY_CODES) expect(doc, `reply code ${code}`).toContain(`\`${code}\``);
    for (const reason of UNSUBSCRIBED_REASONS) expect(server, `reason ${reason}`).toContain(`\`"${reason}"\``);
  });

  it('names every close code, and exactly the final ones as final', () => {
    for (const code of Object.values(CloseCode)) expect(doc, `close code ${code}`).toContain(String(code));
    const sentence = /Do \*\*not\*\* reconnect after the final codes: ([^.]*)\./.exec(section('Reconnecting'));
    expect(sentence, 'the Reconnecting section lists the final codes').not.toBeNull();
    const listed = new Set([...(sentence?.[1] ?? '').matchAll(/\b\d{4}\b/g)].map((m) => Number(m[0])));
    const final = Object.values(CloseCode).filter(isFinalCloseCode);
    expect([...listed].filter((c) => c < 4500).sort()).toEqual(final.sort());
    // The app's range, given as 4500–4999.
    expect(isFinalCloseCode(4500) && isFinalCloseCode(4999) && !isFinalCloseCode(5000)).toBe(true);
    expect(sentence?.[1]).toContain('4500–4999');
  });

  it('gives a cursor example that decodes to what it says', () => {
    const example = /```text\n(\{.*\})\n→ ([\w-]+)\n```/.exec(section('Connect URL parameters'));
    expect(example, 'a JSON object, then → and its encoding').not.toBeNull();
    const json = JSON.parse(example?.[1] ?? '{}') as Record<string, [string, number]>;
    const decoded = decodeCursors(example?.[2]);
    expect(Object.fromEntries([...decoded].map(([ch, c]) => [ch, [c.epoch, c.offset]]))).toEqual(json);
    expect(decoded.size).toBeGreaterThan(0);
    // The SSE example's event ids are the same encoding.
    for (const [, id] of doc.matchAll(/^id: (\S+)$/gm)) expect(decodeCursors(id).size).toBeGreaterThan(0);
  });

  it('shows the SSE framing the gateway writes', () => {
    let written = '';
    const onClose: (() => void)[] = [];
    const res = {
      writeHead: () => res,
      write: (text: string) => {
        written += text;
        return true;
      },
      end: (text: string) => {
        written += text;
        res.writableEnded = true;
      },
      on: (event: string, listener: () => void) => {
        if (event === 'close') onClose.push(listener);
        return res;
      },
      writableEnded: false,
      writableLength: 0,
    };
    const sse = sseTransport(res as unknown as ServerResponse, 20_000);
    const msg = '{"type":"msg","channel":"room:42","epoch":"k3f9x2","offset":17,"event":"e","data":1}';
    sse.sendMessage(msg, () => 'CURSORS');
    sse.sendMessage('{"type":"pong"}', () => 'CURSORS');
    sse.close(1012, 'gateway restarting');
    for (const listener of onClose) listener(); // stops its heartbeat timer
    expect(written).toBe(
      `retry: 1000\n\nid: CURSORS\ndata: ${msg}\n\ndata: {"type":"pong"}\n\n` +
        'event: close\ndata: {"code":1012,"reason":"gateway restarting"}\n\n',
    );
    const sseSection = section('Endpoints and transports');
    for (const line of ['retry: 1000', 'event: ping', 'data: {"every":20000}', 'event: close']) {
      expect(sseSection).toContain(line);
    }
    expect(sseSection).toContain('data: {"code":1012,"reason":"gateway restarting"}');
  });
});
