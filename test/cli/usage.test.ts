import { describe, expect, it } from 'vitest';
import { parseCommandLine, UsageError } from '../../src/cli/args.js';
import { runCli } from '../helpers/cli.js';

/** Every bad command line: the one line the CLI prints, exit code 2, and nothing started. */
const BAD: Array<[args: string[], message: RegExp]> = [
  [['strat'], /^shoal: unknown command "strat" \(did you mean "start"\?\); commands: start, web, gateway, doctor/],
  [['deploy'], /^shoal: unknown command "deploy"; commands: start, web, gateway, doctor/],
  [['help', 'strat'], /^shoal: unknown command "strat"/],
  [['start', '--wbe', '3'], /^shoal: unknown option --wbe; shoal start takes --app, --web, --gateways, --port, --host/],
  [['--verbose', 'web'], /^shoal: unknown option --verbose; shoal web takes --app/],
  [['gateway', '--web', '2'], /^shoal: --web is not an option of shoal gateway; it takes --app, --port, --host/],
  [['start', 'extra'], /^shoal: unexpected argument "extra" after "start"/],
  [['start', '--web', 'abc'], /^shoal: --web must be a whole number from 0 to 1000, got "abc"/],
  [['start', '--web', '1001'], /^shoal: --web must be a whole number from 0 to 1000, got "1001"/],
  [
    ['start', '--web', '0', '--gateways', '0'],
    /^shoal: --web 0 and --gateways 0 start no node: give --web N for web nodes, --gateways M for realtime gateways, or both/,
  ],
  [['start', '--web', '0'], /^shoal: --web 0 and no --gateways start no node: give --web N/],
  [['start', '--web', '-1'], /^shoal: --web cannot be negative, got "-1"/],
  [['start', '--web=-1'], /^shoal: --web must be a whole number from 0 to 1000, got "-1"/],
  [['start', '--web', '2.5'], /^shoal: --web must be a whole number from 0 to 1000, got "2.5"/],
  [['start', '--gateways', 'two'], /^shoal: --gateways must be a whole number from 0 to 1000, got "two"/],
  [['start', '--port', '99999'], /^shoal: --port must be a port number from 1 to 65535, got "99999"/],
  [['start', '--port', '0'], /^shoal: --port must be a port number from 1 to 65535, got "0"/],
  [['start', '--port', '65530', '--web', '10'], /^shoal: --port 65530 leaves no room for 10 nodes/],
  [['start', '--app', 'no-such-app.ts'], /^shoal: --app: the app module no-such-app.ts does not exist/],
  [['web', '--port', 'http'], /^shoal: --port must be a port number from 0 to 65535, got "http"/],
  [['web', '--port'], /^shoal: --port needs a value, e.g. --port 8080/],
  [['web', '--drain-timeout', '5x', '--app', 'a.js'], /^shoal: --drain-timeout "5x" is not a duration: write a number/],
  [['web', '--drain-delay', 'soon', '--app', 'a.js'], /^shoal: --drain-delay "soon" is not a duration/],
  [['web'], /^shoal: missing --app <module>/],
  [['--help=yes'], /^shoal: --help takes no value/],
  [['start', '--quiet=yes'], /^shoal: --quiet takes no value/],
  [['web', '--quiet', '--app', 'a.js'], /^shoal: --quiet is not an option of shoal web; it takes --app/],
];

describe('shoal with a bad command line', () => {
  it.concurrent.each(BAD)(
    'shoal %j: one line, exit code 2',
    async (args, message) => {
      const r = await runCli(args, { env: { SHOAL_STORE: 'memory:', SHOAL_BUS: 'memory:' }, timeoutMs: 60_000 });
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stdout).toBe('');
      expect(r.code).toBe(2);
    },
    90_000,
  );

  it('shoal alone prints the help on stderr and exits 2; --help and help <command> exit 0', async () => {
    const [bare, help, startHelp] = await Promise.all([runCli([]), runCli(['--help']), runCli(['help', 'start'])]);
    expect(bare.code).toBe(2);
    expect(bare.stderr).toMatch(/Usage: shoal <command>/);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: shoal <command>/);
    expect(startHelp.code).toBe(0);
    expect(startHelp.stdout).toMatch(/Usage: shoal start/);
  });

  it('a bad value from the environment names the variable and exits 78 (a configuration error)', async () => {
    const r = await runCli(['web', '--app', 'a.js'], { env: { SHOAL_DRAIN_TIMEOUT: 'later' } });
    expect(r.stderr.trim()).toMatch(/^shoal: SHOAL_DRAIN_TIMEOUT "later" is not a duration/);
    expect(r.code).toBe(78);
    const port = await runCli(['gateway', '--app', 'a.js'], { env: { PORT: '-3' } });
    expect(port.stderr.trim()).toMatch(/^shoal: PORT must be a port number from 0 to 65535, got "-3"$/);
    expect(port.code).toBe(78);
  });
});

describe('parseCommandLine', () => {
  it('takes options before or after the command, and only those of the command', () => {
    expect(parseCommandLine(['--port', '3001', 'web', '--app', 'x.js'])).toEqual({
      kind: 'run',
      command: 'web',
      values: { port: '3001', app: 'x.js' },
    });
    expect(() => parseCommandLine(['doctor', '--web', '3'])).toThrow(UsageError);
  });

  it('gives a flag as true, long or short', () => {
    for (const flag of ['--quiet', '-q']) {
      expect(parseCommandLine(['start', flag, '--app', 'x.js'])).toEqual({
        kind: 'run',
        command: 'start',
        values: { quiet: true, app: 'x.js' },
      });
    }
  });
});
