import type { AppDefinition } from '../app/define.js';
import {
  listFromEnv,
  misspeltVariableMessage,
  placeholderSecrets,
  placeholderSecretsMessage,
  unknownShoalVariables,
} from '../app/env.js';
import { resolveNodeSession } from '../app/node-session.js';
import { backendOf } from '../core/backend-url.js';
import { ConfigError, ShoalError } from '../core/errors.js';
import { refusedByServer } from '../core/refused.js';
import { redact } from '../core/url.js';
import { limitFromEnv } from '../realtime/connection-limits.js';
import { keepSessionAliveFromEnv } from '../realtime/keep-alive.js';
import { originsProblem } from '../realtime/origin.js';
import { connectProxyFromEnv, rpcProxyFromEnv, subscribeProxyFromEnv } from '../realtime/proxy-env.js';
import { checkPublishKey } from '../realtime/publish-key.js';
import { busUrlFromEnv } from '../realtime/realtime.js';
import { tokenOptionsFromEnv } from '../realtime/token-env.js';
import { endsUnsupported } from '../session/lifecycle.js';
import type { SessionConfig } from '../session/options.js';
import { KeyRing } from '../session/signing.js';
import { storeFromUrl } from '../stores/from-url.js';
import { DEFAULT_STORE_URL } from '../stores/index.js';
import { loadApp } from './app-module.js';
import { durationValue, portNumber } from './args.js';
import { fullCoverageWarning } from './doctor-cluster.js';
import { sentinelReplicaWarning } from './doctor-sentinel.js';
import { ensureTypeScript } from './ts-loader.js';
import { webDashboardSettings } from './web-dashboard.js';

export interface DoctorOptions {
  /** The app module (--app, or shoal.config's app); checked that it loads when given. */
  app?: string | undefined;
  /** Where the report goes, one line per check. */
  print?: (line: string) => void;
}

interface Backend {
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Checks what a web node or a gateway would refuse, in the order they would meet it, and says
 * what to do about each problem: settings first (nothing opened), then the app module, then the
 * store and the bus. Exit code 0 only when no node would refuse; warnings do not count.
 */
export async function doctor(env: NodeJS.ProcessEnv, o: DoctorOptions = {}): Promise<number> {
  const print = o.print ?? ((line: string) => console.log(line));
  let problems = 0;
  const ok = (what: string) => print(`ok    ${what}`);
  const warn = (what: string) => print(`warn  ${what}`);
  const fail = (what: string, fix?: string) => {
    problems++;
    print(`FAIL  ${what}`);
    if (fix) print(`      fix: ${fix}`);
  };
  /** A setting whose parser throws a ConfigError that already names the fix. */
  const setting = (what: string, check: () => string | undefined) => {
    try {
      const detail = check();
      if (detail !== undefined) ok(`${what}${detail ? `: ${detail}` : ''}`);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      fail(err.message.includes(what) ? err.message : `${what}: ${err.message}`);
    }
  };

  // 1. The app module: its realtime rules decide whether gateways matter, and it may bring its own secrets.
  let app: AppDefinition | undefined;
  if (o.app) {
    try {
      await ensureTypeScript(o.app);
      app = await loadApp(o.app);
      const gatewaysOnly =
        typeof app.web !== 'function'
          ? ', for gateways only: no web(), which shoal web needs; shoal start runs no web node for it'
          : '';
      ok(`app module ${o.app} loads${app.realtime ? ` (with realtime rules for gateways${gatewaysOnly})` : ''}`);
    } catch (err) {
      fail((err as Error).message.split('\n')[0] ?? String(err));
    }
  } else {
    warn('no app module given (--app, or app in shoal.config): not checked that it loads');
  }

  // 2. Settings every node reads before it opens anything; a misspelt name leaves its setting at the default.
  for (const { name, near } of unknownShoalVariables(env)) {
    if (near) fail(misspeltVariableMessage(name, near), `rename it to ${near}`);
    else warn(`${name} is not a shoal setting: fine if your app reads it, else remove it`);
  }
  const placeholders = placeholderSecrets(env);
  if (placeholders.length) {
    const what = placeholderSecretsMessage(placeholders);
    if (env.NODE_ENV === 'production') fail(what);
    else warn(`${what}; under NODE_ENV=production web nodes and gateways refuse to start with it`);
  }
  setting('SHOAL_PUBLISH_KEY', () =>
    checkPublishKey(env.SHOAL_PUBLISH_KEY, 'SHOAL_PUBLISH_KEY') ? "the gateways' HTTP server API is on" : undefined,
  );
  const appSecrets = appSessionSecrets(app, env);
  setting('SHOAL_SECRETS', () => {
    const secrets = listFromEnv(env.SHOAL_SECRETS) ?? [];
    if (secrets.length === 0 && appSecrets) return undefined;
    if (secrets.length === 0) {
      throw new ConfigError(
        'SHOAL_SECRETS is not set: web nodes and gateways refuse to start without a signing secret — ' +
          'set it to 32+ random characters, the same on every node (e.g. SHOAL_SECRETS=$(openssl rand -base64 48))',
      );
    }
    new KeyRing(secrets);
    return `${secrets.length} secret(s) of 32+ characters`;
  });
  if (appSecrets) {
    setting("the app module's session secrets", () => {
      new KeyRing(appSecrets);
      return env.SHOAL_SECRETS ? 'they win over SHOAL_SECRETS, on web nodes and gateways alike' : '';
    });
  }
  checkOrigins(listFromEnv(env.SHOAL_ORIGINS) ?? [], app?.realtime?.origins ?? [], Boolean(app?.realtime), {
    ok,
    warn,
    fail,
  });
  let sessionConfig: SessionConfig | undefined;
  setting('session settings', () => {
    const c = resolveNodeSession(app, env);
    sessionConfig = c;
    // Values a node accepts but no one means: every session would end right after its request.
    const implausible = implausibleTimeouts(c.idleMs, c.absoluteMs);
    if (implausible) {
      fail(`session settings: ${implausible.what}`, implausible.fix);
      return undefined;
    }
    return `idle ${c.idleMs / 1000} s, absolute ${c.absoluteMs / 1000} s, at most ${c.maxSize} bytes`;
  });
  setting('SHOAL_COOKIE_SECURE', () => {
    const v = env.SHOAL_COOKIE_SECURE;
    if (v === undefined || v === '') return undefined;
    if (!/^(true|false)$/i.test(v.trim())) {
      throw new ConfigError(
        `SHOAL_COOKIE_SECURE must be true or false, got "${v}": false only for plain-HTTP development, where a browser would drop a Secure cookie`,
      );
    }
    return v;
  });
  setting('connection limits', () => {
    const session = limitFromEnv('SHOAL_MAX_CONNECTIONS_PER_SESSION', env.SHOAL_MAX_CONNECTIONS_PER_SESSION);
    const user = limitFromEnv('SHOAL_MAX_CONNECTIONS_PER_USER', env.SHOAL_MAX_CONNECTIONS_PER_USER);
    return session || user ? `${session ?? 'default'} per session, ${user ?? 'default'} per user` : undefined;
  });
  setting('session keep-alive on gateways', () => {
    const rule = keepSessionAliveFromEnv(env.SHOAL_KEEP_SESSION_ALIVE);
    return rule === undefined ? undefined : rule === false ? 'off: only web requests' : rule;
  });
  setting('connection tokens on gateways', () => {
    const tokens = tokenOptionsFromEnv(env, undefined);
    if (!tokens) return undefined;
    return [tokens.secret ? 'HS256 secret' : '', tokens.jwksUrl ? `JWKS ${tokens.jwksUrl}` : '']
      .filter(Boolean)
      .join(', ');
  });
  setting('connect proxy on gateways', () => connectProxyFromEnv(env, undefined)?.url);
  setting('RPC proxy on gateways', () => rpcProxyFromEnv(env, undefined)?.url);
  setting('subscribe proxy on gateways', () => subscribeProxyFromEnv(env, undefined, false)?.url);
  setting('ops dashboard', () => {
    const dashboard = webDashboardSettings(env.SHOAL_DASHBOARD_TOKEN, env.SHOAL_DASHBOARD_NODES);
    return dashboard ? `on, watching ${dashboard.nodes.length || 'each node itself'}` : undefined;
  });
  for (const name of ['SHOAL_DRAIN_TIMEOUT', 'SHOAL_DRAIN_DELAY', 'SHOAL_DRAIN_WINDOW']) {
    const v = env[name];
    if (v) setting(name, () => `${durationValue(name, v, false)} ms`);
  }
  const port = env.PORT;
  if (port) setting('PORT', () => String(portNumber('PORT', port, true, false)));

  // 3. The backends, as the nodes would open them.
  const storeUrl = env.SHOAL_STORE || DEFAULT_STORE_URL;
  const busUrl = busUrlFromEnv(env);
  // Both are tried at once (a backend that does not answer takes its whole timeout); their lines print in order.
  const storeReport = reported({ ok, fail });
  const busReport = reported({ ok, fail });
  // A store URL of no known kind (redis//host: a missing colon) implies no bus: its error is the whole story.
  const storeKnown = backendOf(storeUrl) !== undefined;
  await Promise.all([
    reach(
      'session store',
      storeUrl,
      () => storeFromUrl(storeUrl, { timeoutMs: 3000 }, 'SHOAL_STORE'),
      storeReport,
      (store) =>
        // What a web node refuses at start, once it has the store: onSessionEnd where ends cannot be listed.
        sessionConfig?.onSessionEnd && !store.capabilities.lifecycle
          ? {
              what: `session store ${redact(storeUrl)}: ${endsUnsupported(store.kind)}`,
              fix: `point SHOAL_STORE at a sqlite:, redis:// or postgres:// store, or drop onSessionEnd from the app's session options`,
            }
          : undefined,
    ),
    env.SHOAL_BUS || storeKnown
      ? reach(
          `message bus${env.SHOAL_BUS ? '' : ' (SHOAL_BUS unset: the default)'}`,
          busUrl,
          // Under the nodes' namespace: a bus that makes its resources on first use (a NATS stream) makes the
          // ones the nodes use, as they would.
          async () =>
            (await import('../bus/from-url.js')).busFromUrl(
              busUrl,
              { timeoutMs: 3000, ...(env.SHOAL_NAMESPACE ? { namespace: env.SHOAL_NAMESPACE } : {}) },
              'SHOAL_BUS',
            ),
          busReport,
        )
      : undefined,
  ]);
  storeReport.print();
  busReport.print();

  // A Redis deployment that would not fail over as it should: a Cluster that stops serving every slot
  // while one master fails over, a Sentinel set with no replica to promote.
  for (const url of new Set([storeUrl, ...(env.SHOAL_BUS || storeKnown ? [busUrl] : [])])) {
    const warning = /^rediss?\+cluster:/i.test(url)
      ? await fullCoverageWarning(url, 3000)
      : /^rediss?\+sentinel:/i.test(url)
        ? await sentinelReplicaWarning(url, 3000)
        : undefined;
    if (warning) warn(warning);
  }

  // 4. Web nodes and gateways must meet on one bus and read one cookie.
  if (storeKnown && /^sqlite:/i.test(busUrl) && !/^sqlite:/i.test(storeUrl)) {
    warn(
      `the bus is ${redact(busUrl)}, a file only processes on this machine share, while the store is ${redact(storeUrl)}: ` +
        'set SHOAL_BUS to a shared bus (redis://, postgres://, nats://, amqp://) if web nodes or gateways run elsewhere',
    );
  }
  print(
    problems
      ? `${problems} problem${problems === 1 ? '' : 's'} found`
      : 'no problems found: web nodes and gateways would start with this',
  );
  return problems ? 1 : 0;
}

/** Session timeouts a node runs with but that end sessions before anyone could use them. */
function implausibleTimeouts(idleMs: number, absoluteMs: number): { what: string; fix: string } | undefined {
  const where = (name: string, option: string) =>
    `set ${name} (or session.${option} in the app module) with its unit, e.g. ${name}=${name.includes('IDLE') ? '30m' : '12h'}`;
  if (idleMs < 1000) {
    return {
      what: `the idle timeout is ${idleMs / 1000} s, so every session ends ${idleMs / 1000} s after its last request`,
      fix: where('SHOAL_IDLE_TIMEOUT', 'idleTimeout'),
    };
  }
  if (absoluteMs < 1000) {
    return {
      what: `the absolute timeout is ${absoluteMs / 1000} s, so every session ends ${absoluteMs / 1000} s after it starts`,
      fix: where('SHOAL_ABSOLUTE_TIMEOUT', 'absoluteTimeout'),
    };
  }
  if (absoluteMs < idleMs) {
    return {
      what: `the absolute timeout (${absoluteMs / 1000} s) is shorter than the idle timeout (${idleMs / 1000} s), which then never applies`,
      fix: 'make SHOAL_ABSOLUTE_TIMEOUT longer than SHOAL_IDLE_TIMEOUT (defaults 12h and 30m)',
    };
  }
  return undefined;
}

/** The secrets the app module's own session settings give (both tiers use them instead of SHOAL_SECRETS). */
function appSessionSecrets(app: AppDefinition | undefined, env: NodeJS.ProcessEnv): readonly string[] | undefined {
  const session = app?.session;
  if (!session) return undefined;
  try {
    const secrets = (typeof session === 'function' ? session({ nodeId: 'doctor', env }) : session).secrets;
    // As given, not copied: a single string (not an array) is for KeyRing to refuse, as the nodes do.
    return secrets?.length ? secrets : undefined;
  } catch {
    return undefined;
  }
}

function checkOrigins(
  fromEnv: readonly string[],
  fromApp: readonly string[],
  hasRealtime: boolean,
  r: { ok(s: string): void; warn(s: string): void; fail(s: string, fix?: string): void },
): void {
  const origins = [...fromEnv, ...fromApp];
  if (origins.length === 0) {
    const what =
      'SHOAL_ORIGINS is not set (nor realtime.origins in the app module): gateways refuse to start without the origins pages are served from';
    const fix = 'SHOAL_ORIGINS=https://app.example.com (comma-separated)';
    if (hasRealtime) r.fail(what, fix);
    else r.warn(`${what} (${fix}); web nodes do not need it`);
    return;
  }
  // The rule gateways refuse to start by, each source named as they name it.
  const problems = [originsProblem(fromEnv, 'SHOAL_ORIGINS'), originsProblem(fromApp, 'realtime.origins')];
  for (const problem of problems) if (problem) r.fail(problem.what, problem.fix);
  if (problems.some(Boolean)) return;
  if (origins.includes('*')) {
    r.warn('SHOAL_ORIGINS is "*": any site may open connections carrying your users\' cookies; list your origins');
    return;
  }
  r.ok(`SHOAL_ORIGINS: ${origins.join(', ')}`);
}

type Report = { ok(s: string): void; fail(s: string, fix?: string): void };

/** A report whose lines wait until print(), so checks run at once still print in a fixed order. */
function reported(to: Report): Report & { print(): void } {
  const lines: Array<() => void> = [];
  return {
    ok: (s) => lines.push(() => to.ok(s)),
    fail: (s, fix) => lines.push(() => to.fail(s, fix)),
    print: () => {
      for (const line of lines.splice(0)) line();
    },
  };
}

async function reach<B extends Backend>(
  what: string,
  url: string,
  open: () => Promise<B>,
  r: Report,
  /** What a node would refuse about this backend once it answers (a capability the app needs). */
  refusal?: (backend: B) => { what: string; fix: string } | undefined,
): Promise<void> {
  const started = Date.now();
  try {
    const backend = await open();
    let refused: { what: string; fix: string } | undefined;
    try {
      await backend.ping();
      refused = refusal?.(backend);
    } finally {
      await backend.close();
    }
    if (refused) r.fail(refused.what, refused.fix);
    else r.ok(`${what} ${redact(url)} answered in ${Date.now() - started} ms`);
  } catch (err) {
    const cause = (err as { cause?: unknown }).cause;
    const message = (err as Error).message;
    const variable = what.startsWith('session') ? 'SHOAL_STORE' : 'SHOAL_BUS';
    // A malformed URL or a missing client library: the message says what to do. Otherwise it is down.
    const unavailable = err instanceof ShoalError && /UNAVAILABLE$/.test(err.code);
    const down = !(err instanceof ShoalError) || unavailable;
    // A server that answers while what it holds does not (NATS: JetStream without a meta leader, a stream
    // without a leader): the message says what to start, and starting "it" would mislead. So would it for
    // a server that refused the user, password, database or virtual host the URL names.
    const serverAnswers = /answers, but/.test(message);
    const fix = refusedByServer(err)
      ? `the server answered and refused the user, password, database or virtual host in ${variable}: correct them (or create them on the server)`
      : message.includes('know no master named')
        ? `write the master name the sentinels monitor after the hosts in ${variable} (redis+sentinel://host:26379,…/<master name>)`
        : down && !serverAnswers
          ? `start it, or point ${variable} at one that runs`
          : undefined;
    // A message that starts with the URL itself (a database Redis refused) need not repeat it.
    const said = message.startsWith(`${redact(url)}: `) ? message.slice(redact(url).length + 2) : message;
    // The cause, unless the message already tells it in shoal's words (a store's or bus's unavailable
    // error does: the client library's own text, e.g. ioredis's maxRetriesPerRequest, only misleads).
    const more =
      cause instanceof Error && !unavailable && !message.includes(cause.message) ? ` (${cause.message})` : '';
    r.fail(`${what} ${redact(url)}: ${said}${more}`, fix);
  }
}
