import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, SessionManager } from 'shoal';
import { memoryBus } from 'shoal/bus/memory';
import { createGateway } from 'shoal/gateway';
import { memoryStore } from 'shoal/stores/memory';
import { describe, expect, it } from 'vitest';
import { cliScratch, runCli } from '../helpers/cli.js';
import { freePort, ROOT } from '../helpers/processes.js';

/**
 * Keys anyone could guess or has read: a one-character publish key, and the placeholders the
 * shipped Kubernetes Secret carries, are refused where they would be used (production), with the
 * variable to set and how to make a value; doctor says the same.
 */
const { env } = cliScratch('weak-secrets');

/** The values deploy/k8s/secret.yaml ships, as a pod that never replaced them would read them. */
function shippedSecret(): Record<string, string> {
  const text = readFileSync(join(ROOT, 'deploy/k8s/secret.yaml'), 'utf8');
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^ {2}(SHOAL_[A-Z_]+): (\S+)$/gm)) out[m[1] as string] = m[2] as string;
  return out;
}

const oneLine = (text: string, pattern: RegExp) => {
  const line = text.split('\n').find((l) => pattern.test(l));
  expect(line, text).toBeDefined();
  return line as string;
};

describe('the publish key', () => {
  it('shoal gateway refuses one shorter than 16 characters, saying what to set and how to make one', async () => {
    const r = await runCli(['gateway', '--port', String(await freePort())], {
      env: env({ SHOAL_PUBLISH_KEY: 'x' }),
      timeoutMs: 20_000,
    });
    expect(r.code).toBe(78);
    const line = oneLine(r.stderr, /SHOAL_PUBLISH_KEY is 1 characters long/);
    expect(line).toMatch(/at least 16/);
    expect(line).toMatch(/openssl rand -base64 32/);
  });

  it('createGateway refuses a short publishKey before it starts anything', async () => {
    const bus = memoryBus();
    const sessions = new SessionManager({
      store: memoryStore(),
      secrets: ['a-test-secret-of-at-least-32-characters-0123456789'],
      sweep: { enabled: false },
    });
    await expect(createGateway({ bus, sessions, origins: ['http://localhost'], publishKey: 'short' })).rejects.toThrow(
      ConfigError,
    );
    await sessions.close();
    await bus.close();
  });

  it('shoal doctor fails a short one and passes a long one', async () => {
    const short = await runCli(['doctor'], { env: env({ SHOAL_PUBLISH_KEY: 'x' }) });
    expect(short.code).toBe(1);
    expect(short.stdout).toMatch(/^FAIL {2}SHOAL_PUBLISH_KEY is 1 characters long/m);
    const long = await runCli(['doctor'], { env: env({ SHOAL_PUBLISH_KEY: 'a-publish-key-of-24-chars' }) });
    expect(long.stdout).toMatch(/^ok {4}SHOAL_PUBLISH_KEY: /m);
  });
});

describe("the shipped Secret's placeholders", () => {
  const placeholders = () => {
    const s = shippedSecret();
    expect(s.SHOAL_SECRETS).toContain('CHANGE-ME');
    // Long enough for every length rule: only the placeholder marker tells it was never replaced.
    return { SHOAL_SECRETS: s.SHOAL_SECRETS as string, SHOAL_PUBLISH_KEY: `${s.SHOAL_PUBLISH_KEY}-0123456789` };
  };

  it('stop shoal web and shoal gateway in production, naming the variables', async () => {
    for (const role of ['web', 'gateway']) {
      const args = [role, '--port', String(await freePort())];
      if (role === 'web') args.push('--app', 'examples/probe/shoal.app.ts');
      const r = await runCli(args, { env: env({ ...placeholders(), NODE_ENV: 'production' }), timeoutMs: 20_000 });
      expect(r.code, role).toBe(78);
      const line = oneLine(r.stderr, /placeholder "CHANGE-ME"/);
      expect(line).toMatch(/SHOAL_SECRETS, SHOAL_PUBLISH_KEY still hold/);
      expect(line).toMatch(/openssl rand -base64 32/);
    }
  });

  it('shoal doctor fails them in production and warns about them elsewhere', async () => {
    const prod = await runCli(['doctor'], { env: env({ ...placeholders(), NODE_ENV: 'production' }) });
    expect(prod.code).toBe(1);
    expect(prod.stdout).toMatch(/^FAIL {2}SHOAL_SECRETS, SHOAL_PUBLISH_KEY still hold the placeholder "CHANGE-ME"/m);
    const dev = await runCli(['doctor'], { env: env({ ...placeholders(), NODE_ENV: 'development' }) });
    expect(dev.stdout).toMatch(/^warn {2}SHOAL_SECRETS, SHOAL_PUBLISH_KEY still hold the placeholder/m);
    expect(dev.stdout).toMatch(/NODE_ENV=production web nodes and gateways refuse/);
  });
});
