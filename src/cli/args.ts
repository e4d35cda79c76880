import { parseArgs } from 'node:util';
import { nearestName } from '../core/did-you-mean.js';
import { parseDuration } from '../core/duration.js';
import { ConfigError, ShoalError } from '../core/errors.js';

/** The command line itself is wrong (unknown command or option, a value that is not one). Exit code 2. */
export class UsageError extends ShoalError {
  override name = 'UsageError';
  constructor(message: string) {
    super('ERR_SHOAL_USAGE', message);
  }
}

/** Exit codes the CLI uses beyond 0 and 1. 78 is sysexits' EX_CONFIG, which supervisors (systemd) know. */
export const EXIT_USAGE = 2;
export const EXIT_CONFIG = 78;

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  app: { type: 'string' },
  web: { type: 'string' },
  gateways: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'drain-timeout': { type: 'string' },
  'drain-delay': { type: 'string' },
  'dashboard-nodes': { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
} as const;

type OptionName = keyof typeof OPTIONS;

const EXAMPLES: Record<string, string> = {
  app: './shoal.app.js',
  web: '3',
  gateways: '2',
  port: '8080',
  host: '0.0.0.0',
  'drain-timeout': '30s',
  'drain-delay': '5s',
  'dashboard-nodes': 'web/web-1=http://10.0.0.5:3000',
};

/** Which options each command takes (--help goes with all of them). */
export const COMMANDS = {
  start: ['app', 'web', 'gateways', 'port', 'host', 'quiet'],
  web: ['app', 'port', 'host', 'drain-timeout', 'drain-delay', 'dashboard-nodes'],
  gateway: ['app', 'port', 'host'],
  doctor: ['app'],
} as const satisfies Record<string, readonly OptionName[]>;

export type Command = keyof typeof COMMANDS;

/** What each option was given: the text of a valued option, `true` for a flag (--quiet). */
export type Values = {
  [K in Exclude<OptionName, 'help'>]?: (typeof OPTIONS)[K]['type'] extends 'boolean' ? boolean : string;
};

export type Parsed =
  | { kind: 'help'; topic: Command | ''; ok: boolean }
  | { kind: 'run'; command: Command; values: Values };

const isCommand = (s: string | undefined): s is Command => s !== undefined && Object.hasOwn(COMMANDS, s);

/**
 * Reads `shoal <command> [options]`. Options may come before the command too (`shoal --port 3000 web …`),
 * as test harnesses and wrappers put them. Anything wrong throws a UsageError whose message names the
 * fix; `shoal`, `shoal help [command]` and `--help` ask for help instead.
 */
export function parseCommandLine(argv: string[]): Parsed {
  const guess = argv.find((a) => !a.startsWith('-'));
  const topic = isCommand(guess) ? guess : '';
  let parsed: { values: Record<string, string | boolean | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, strict: true, allowPositionals: true, options: OPTIONS });
  } catch (err) {
    throw fromParseError(err, topic, argv);
  }
  const { values, positionals } = parsed;
  const [first, ...rest] = positionals;
  if (first === 'help') {
    const about = rest[0];
    if (about !== undefined && !isCommand(about)) throw unknownCommand(about);
    return { kind: 'help', topic: about ?? '', ok: true };
  }
  if (first !== undefined && !isCommand(first)) throw unknownCommand(first);
  if (values.help) return { kind: 'help', topic: first ?? '', ok: true };
  if (first === undefined) return { kind: 'help', topic: '', ok: false };
  if (rest.length > 0) {
    throw new UsageError(
      `unexpected argument "${rest[0]}" after "${first}": options take the form --name value (see shoal ${first} --help)`,
    );
  }
  const allowed: readonly string[] = COMMANDS[first];
  const out: Values = {};
  for (const [name, value] of Object.entries(values)) {
    if (name === 'help' || value === undefined) continue;
    if (!allowed.includes(name)) {
      throw new UsageError(
        `--${name} is not an option of shoal ${first}; it takes ${allowed.map((a) => `--${a}`).join(', ')} (see shoal ${first} --help)`,
      );
    }
    (out as Record<string, string | boolean>)[name] = value;
  }
  return { kind: 'run', command: first, values: out };
}

function fromParseError(err: unknown, topic: Command | '', argv: string[]): Error {
  const e = err as { code?: string; message?: string };
  const see = `see shoal ${topic ? `${topic} ` : ''}--help`;
  const quoted = /'([^']+)'/.exec(e.message ?? '')?.[1] ?? '';
  if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const hint = topic ? `; shoal ${topic} takes ${COMMANDS[topic].map((a) => `--${a}`).join(', ')}` : '';
    return new UsageError(`unknown option ${quoted}${hint} (${see})`);
  }
  if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    if (/does not take an argument/.test(e.message ?? '')) {
      return new UsageError(`${quoted.split(', ').at(-1)} takes no value (${see})`);
    }
    const name = quoted.split(' ')[0] ?? quoted;
    const next = argv[argv.indexOf(name) + 1];
    // parseArgs will not take "-1" as a value: it looks like an option.
    if (next !== undefined && /^-\d/.test(next))
      return new UsageError(`${name} cannot be negative, got "${next}" (${see})`);
    return new UsageError(`${name} needs a value, e.g. ${name} ${EXAMPLES[name.slice(2)] ?? 'value'} (${see})`);
  }
  return err instanceof Error ? err : new Error(String(err));
}

function unknownCommand(name: string): UsageError {
  const names = Object.keys(COMMANDS);
  const near = nearestName(name, names);
  return new UsageError(
    `unknown command "${name}"${near ? ` (did you mean "${near}"?)` : ''}; commands: ${names.join(', ')} (see shoal --help)`,
  );
}

/** A whole number from `min` to `max`, from a flag (UsageError) or an environment or file value (ConfigError). */
export function wholeNumber(
  setting: string,
  raw: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  flag = setting.startsWith('--'),
): number {
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isSafeInteger(n) && n >= min && n <= max) return n;
  const range = max < Number.MAX_SAFE_INTEGER ? ` from ${min} to ${max}` : min > 0 ? ` of at least ${min}` : '';
  return fail(flag, `${setting} must be a whole number${range}, got "${raw}"`);
}

/** A TCP port. 0 (any free port) only where the caller allows it. */
export function portNumber(setting: string, raw: string, allowZero: boolean, flag = setting.startsWith('--')): number {
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isInteger(n) && n <= 65_535 && (n > 0 || allowZero)) return n;
  return fail(flag, `${setting} must be a port number from ${allowZero ? 0 : 1} to 65535, got "${raw}"`);
}

/** A duration ("30s", "500ms"; a unit is required), named by the flag or variable it came from. */
export function durationValue(setting: string, raw: string, flag = setting.startsWith('--')): number {
  try {
    return parseDuration(raw, setting);
  } catch (err) {
    if (err instanceof ConfigError) return fail(flag, err.message);
    throw err;
  }
}

function fail(flag: boolean, message: string): never {
  throw flag ? new UsageError(message) : new ConfigError(message);
}

/** The exit code for an error that stopped a command: 2 usage, 78 configuration, else 1. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof UsageError) return EXIT_USAGE;
  if (err instanceof ConfigError) return EXIT_CONFIG;
  if (err instanceof ShoalError && err.code === 'ERR_SHOAL_MISSING_DEPENDENCY') return EXIT_CONFIG;
  return 1;
}
