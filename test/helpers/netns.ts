import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { skipBecause } from './engines.js';
import { captureOutput, ROOT } from './processes.js';

/**
 * Hosts for multi-host tests: Linux network namespaces on one bridge in the root namespace (which
 * plays the client host). Every name carries the creating process id — namespaces
 * `shoal-mh-<pid>-<host>`, links `shoal<pid>br` / `shoal<pid>h<i>` (15-byte limit) — so parallel
 * runs never collide and leftovers of crashed runs (owner pid gone) can be removed safely.
 */
const NS_PREFIX = 'shoal-mh-';
const NS_NAME = /^shoal-mh-(\d+)-[a-z0-9-]+$/;
const LINK_NAME = /^shoal(\d+)(?:br|h\d+)$/;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] });
}

function tryIp(...args: string[]): boolean {
  try {
    ip(...args);
    return true;
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Resolves to undefined when this process may create namespaces, otherwise to the reason to skip
 * (printed). Throws instead under SHOAL_REQUIRE_ENGINES=1, like the engine checks.
 */
export async function netnsSkipReason(): Promise<string | undefined> {
  let reason: string | undefined;
  if (process.platform !== 'linux') reason = 'network namespaces need Linux';
  else if (process.getuid?.() !== 0) reason = 'creating network namespaces needs root (run the test as root)';
  else {
    const probe = `${NS_PREFIX}${process.pid}-probe`;
    try {
      ip('netns', 'add', probe);
      ip('netns', 'del', probe);
    } catch (err) {
      const stderr = String((err as { stderr?: unknown }).stderr ?? (err as Error).message).trim();
      reason = `"ip netns add" failed (${stderr || 'no output'}); the multi-host test needs iproute2 and CAP_SYS_ADMIN`;
    }
  }
  return reason === undefined ? undefined : skipBecause(reason);
}

/** Removes namespaces (and the processes left in them) and links of earlier runs whose process is gone. */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = NS_NAME.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    // Processes a crashed run started inside its own namespace keep the namespace alive.
    for (const pid of ip('netns', 'pids', name).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {}
    }
    if (tryIp('netns', 'del', name)) removed.push(name);
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const name = (line.split(': ')[1] ?? '').split('@')[0] ?? '';
    const m = LINK_NAME.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    if (tryIp('link', 'del', name)) removed.push(name);
  }
  return removed;
}

export interface Host {
  name: string;
  ns: string;
  addr: string;
  /** The host's cable: its veth end on the bridge, in the root namespace. */
  link: string;
}

export interface TestNet {
  subnet: string;
  bridge: string;
  hosts: Map<string, Host>;
  host(name: string): Host;
  /** Cuts a host off the network (its cable unplugged: packets to and from it are dropped). */
  cut(name: string): void;
  restore(name: string): void;
  /** Starts a process inside a host's namespace, in its own process group. */
  spawn(name: string, command: string, args: string[], env?: NodeJS.ProcessEnv): NsProcess;
  /** Kills every process started here and deletes the namespaces and the bridge. */
  destroy(): Promise<void>;
}

export interface NsProcess {
  name: string;
  child: ChildProcess;
  output(): string;
  exited(): boolean;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** A /24 in 10.213.0.0/16 that no interface or route on this machine uses yet, derived from the pid. */
function freeSubnet(): string {
  const used = ip('-4', '-o', 'addr', 'show') + ip('-4', 'route', 'show', 'table', 'all');
  for (let i = 0; i < 200; i++) {
    const octet = 20 + ((process.pid + i * 7) % 220);
    const subnet = `10.213.${octet}`;
    if (!used.includes(`${subnet}.`)) return subnet;
  }
  throw new Error('no free 10.213.x.0/24 subnet for the test network');
}

export function createTestNet(hostNames: string[]): TestNet {
  const pid = process.pid;
  const subnet = freeSubnet();
  const bridge = `shoal${pid}br`;
  const hosts = new Map<string, Host>();
  const procs = new Set<NsProcess>();
  const cleanup: Array<() => void> = [];

  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    cleanup.push(() => tryIp('link', 'del', bridge));
    ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    hostNames.forEach((name, i) => {
      const host: Host = {
        name,
        ns: `${NS_PREFIX}${pid}-${name}`,
        addr: `${subnet}.${i + 2}`,
        link: `shoal${pid}h${i}`,
      };
      ip('netns', 'add', host.ns);
      cleanup.push(() => tryIp('netns', 'del', host.ns));
      // The peer is created directly inside the namespace, so "eth0" never exists in the root one.
      ip('link', 'add', host.link, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.ns);
      cleanup.push(() => tryIp('link', 'del', host.link));
      ip('link', 'set', host.link, 'master', bridge, 'up');
      ip('-n', host.ns, 'addr', 'add', `${host.addr}/24`, 'dev', 'eth0');
      ip('-n', host.ns, 'link', 'set', 'eth0', 'up');
      ip('-n', host.ns, 'link', 'set', 'lo', 'up');
      hosts.set(name, host);
    });
  } catch (err) {
    for (const c of cleanup.reverse()) c();
    throw err;
  }

  // A worker that exits without afterAll (crash, timeout) still takes its processes and links along.
  const onExit = () => {
    for (const p of procs) {
      try {
        if (p.child.pid) process.kill(-p.child.pid, 'SIGKILL');
      } catch {}
    }
    for (const c of [...cleanup].reverse()) c();
  };
  process.once('exit', onExit);

  const host = (name: string) => {
    const h = hosts.get(name);
    if (!h) throw new Error(`no test host named ${name}`);
    return h;
  };

  return {
    subnet,
    bridge,
    hosts,
    host,
    cut: (name) => void ip('link', 'set', host(name).link, 'down'),
    restore: (name) => void ip('link', 'set', host(name).link, 'up'),
    spawn(name, command, args, env = process.env) {
      const h = host(name);
      // `ip netns exec` execs the command in place; detached gives it a process group to kill as one.
      const child = spawn('ip', ['netns', 'exec', h.ns, command, ...args], {
        cwd: ROOT,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const output = captureOutput(child, 20_000);
      const exited = () => child.exitCode !== null || child.signalCode !== null;
      const p: NsProcess = {
        name: `${name}:${command}`,
        child,
        output,
        exited,
        stop: (signal = 'SIGKILL') =>
          new Promise<void>((resolve) => {
            if (exited() || child.pid === undefined) return resolve();
            const force = setTimeout(() => {
              try {
                process.kill(-(child.pid as number), 'SIGKILL');
              } catch {}
            }, 5000);
            child.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            try {
              process.kill(-child.pid, signal);
            } catch {
              clearTimeout(force);
              resolve();
            }
          }),
      };
      procs.add(p);
      child.once('exit', () => procs.delete(p));
      return p;
    },
    async destroy() {
      process.off('exit', onExit);
      await Promise.all([...procs].map((p) => p.stop('SIGKILL')));
      for (const c of cleanup.reverse()) c();
      cleanup.length = 0;
    },
  };
}

/** Polls `url` until it answers 200 or the deadline passes (then throws with the process output). */
export async function waitHttpOk(url: string, proc: NsProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exited()) throw new Error(`${proc.name} exited (${proc.child.exitCode}):\n${proc.output()}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
