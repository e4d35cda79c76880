/** One of a node's output streams; `shoal start` prints each to its own. */
export type OutputStream = 'stdout' | 'stderr';

/**
 * The most a line may grow to without a newline before it is printed anyway: a node that writes
 * without one (a progress bar redrawn with \r) must not grow the supervisor's memory.
 */
const MAX_PENDING = 1024 * 1024;

/**
 * Cuts a stream's text into lines, whatever its chunks: the complete lines of each chunk at once,
 * a partial last line held until its newline arrives or `end()` (the stream ended, the process
 * exited). The text is searched once per chunk, not per character; \r\n counts as one newline.
 */
export class LineSplitter {
  #pending = '';

  /** The lines `chunk` completes, without their newlines (none while it only continues one). */
  push(chunk: string): string[] {
    const last = chunk.lastIndexOf('\n');
    if (last === -1) {
      this.#pending += chunk;
      return this.#pending.length >= MAX_PENDING ? this.end() : [];
    }
    const text = this.#pending + chunk.slice(0, last);
    this.#pending = chunk.slice(last + 1);
    return text.split('\n').map(withoutCR);
  }

  /** The partial line held, if any: the stream will not finish it. */
  end(): string[] {
    const rest = this.#pending;
    this.#pending = '';
    return rest ? [withoutCR(rest)] : [];
  }
}

const withoutCR = (line: string) => (line.endsWith('\r') ? line.slice(0, -1) : line);

/** Prefix colours, one per node in turn; no red, which reads as an error. */
const COLOURS = [36, 35, 33, 32, 34, 96, 95, 93, 92, 94];

interface Destination {
  write(text: string): unknown;
  /** tty.WriteStream's: false under NO_COLOR or TERM=dumb; absent on pipes and files. */
  hasColors?(): boolean;
}

/**
 * Writes each node's lines to this process's stdout or stderr (the stream the node used), each
 * behind its node's name padded to the longest: `web-1     | …`, `gateway-1 | …`. The prefix is
 * coloured only on a terminal that takes colours; a pipe or a file gets plain text. One write per
 * batch of lines.
 */
export function nodeOutputWriter(
  names: readonly string[],
  out: Record<OutputStream, Destination> = { stdout: process.stdout, stderr: process.stderr },
): (name: string, stream: OutputStream, lines: readonly string[]) => void {
  const width = Math.max(0, ...names.map((n) => n.length));
  const colour = { stdout: out.stdout.hasColors?.() === true, stderr: out.stderr.hasColors?.() === true };
  const prefixes = new Map<string, Record<OutputStream, string>>();
  const prefixOf = (name: string) => {
    let p = prefixes.get(name);
    if (!p) {
      const plain = `${name.padEnd(width)} |`;
      const code = COLOURS[Math.max(0, names.indexOf(name)) % COLOURS.length];
      const coloured = `\x1b[${code}m${plain}\x1b[0m`;
      p = { stdout: colour.stdout ? coloured : plain, stderr: colour.stderr ? coloured : plain };
      prefixes.set(name, p);
    }
    return p;
  };
  return (name, stream, lines) => {
    if (lines.length === 0) return;
    const prefix = prefixOf(name)[stream];
    let text = '';
    for (const line of lines) text += line ? `${prefix} ${line}\n` : `${prefix}\n`;
    out[stream].write(text);
  };
}
