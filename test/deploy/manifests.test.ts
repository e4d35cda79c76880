import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { dashboardNodesFromEnv } from '../../src/cli/dashboard.js';
import { ROOT } from '../helpers/processes.js';

/**
 * The Docker and Kubernetes files, checked statically: no Docker engine or cluster runs
 * here. Each check is an invariant that, broken, loses requests or sessions in
 * production: probes on the wrong path, a grace period shorter than the drain, a PDB
 * that selects nothing, an env name the code never reads.
 */
type Doc = Record<string, unknown>;

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const yamlFiles = walk(join(ROOT, 'deploy')).filter((f) => /\.ya?ml$/.test(f));
const k8s = yamlFiles.filter((f) => f.includes('/k8s/')).flatMap((f) => parse(f).map((doc) => ({ file: f, doc })));
const compose = parse(join(ROOT, 'deploy/compose.yaml'))[0] as Doc;
const ofKind = (kind: string) => k8s.filter((x) => x.doc.kind === kind).map((x) => x.doc);
const deployments = ofKind('Deployment');
const config = (ofKind('ConfigMap')[0]?.data ?? {}) as Record<string, string>;

/** Every SHOAL_* environment name the code (library, CLI, the probe app the image runs) reads. */
const envNamesRead = new Set(
  [...walk(join(ROOT, 'src')), ...walk(join(ROOT, 'examples'))]
    .filter((f) => f.endsWith('.ts'))
    .flatMap((f) => readFileSync(f, 'utf8').match(/(?<![A-Z0-9_])SHOAL_[A-Z0-9_]+/g) ?? []),
);

describe('deploy/ YAML', () => {
  it('parses every YAML file without errors or warnings', () => {
    expect(yamlFiles.length).toBeGreaterThanOrEqual(6);
    for (const file of yamlFiles) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'), { merge: true })) {
        expect(doc.errors.map(String), relative(ROOT, file)).toEqual([]);
        expect(doc.warnings.map(String), relative(ROOT, file)).toEqual([]);
      }
    }
  });

  it('names only images with a pinned tag (or a note saying why not)', () => {
    for (const file of yamlFiles) {
      const lines = readFileSync(file, 'utf8').split('\n');
      lines.forEach((line, i) => {
        const m = /^\s*image:\s*["']?([^"'\s#]+)/.exec(line);
        if (!m?.[1]) return;
        const tag = /:([^/:@]+)$/.exec(m[1])?.[1];
        const floating = !tag || tag === 'latest';
        const noted = /#/.test(line) || /^\s*#/.test(lines[i - 1] ?? '');
        if (floating) expect(noted, `${relative(ROOT, file)}:${i + 1} ${m[1]} floats without a note`).toBe(true);
      });
    }
  });
});

describe('deploy/k8s', () => {
  it('has a web and a gateway Deployment', () => {
    expect(deployments.map((d) => name(d)).sort()).toEqual(['shoal-gateway', 'shoal-web']);
  });

  for (const role of ['web', 'gateway'] as const) {
    describe(role, () => {
      const deployment = () => must(deployments.find((d) => name(d) === `shoal-${role}`));
      const pod = () => get(deployment(), 'spec.template.spec') as Doc;
      const container = () => must((pod().containers as Doc[])[0]);
      const podLabels = () => get(deployment(), 'spec.template.metadata.labels') as Record<string, string>;

      it('selects its own pods', () => {
        expect(matches(get(deployment(), 'spec.selector.matchLabels'), podLabels())).toBe(true);
      });

      it('probes /readyz for readiness and /healthz for liveness, on the port the process listens on', () => {
        const c = container();
        const port = ((c.env as Doc[]).find((e) => e.name === 'PORT')?.value ?? '') as string;
        const ports = c.ports as Array<{ name: string; containerPort: number }>;
        const resolve = (p: unknown) => (typeof p === 'number' ? p : ports.find((x) => x.name === p)?.containerPort);
        expect(get(c, 'readinessProbe.httpGet.path')).toBe('/readyz');
        expect(get(c, 'livenessProbe.httpGet.path')).toBe('/healthz');
        for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
          const p = get(c, `${probe}.httpGet.port`);
          if (p === undefined) continue;
          expect(resolve(p), `${probe} port`).toBe(Number(port));
        }
        expect((c.args as string[]).slice(0, 3)).toEqual(['node', 'bin/shoal.js', role]);
      });

      it('gives the drain more time than it can take: grace period > preStop sleep + drain limit', () => {
        const sleep = get(container(), 'lifecycle.preStop.exec.command') as string[];
        expect(sleep[0]).toBe('sleep');
        const preStop = Number(sleep[1]);
        expect(preStop).toBeGreaterThan(0);
        const drain = seconds(role === 'web' ? config.SHOAL_DRAIN_TIMEOUT : config.SHOAL_DRAIN_WINDOW);
        expect(pod().terminationGracePeriodSeconds as number).toBeGreaterThan(preStop + drain);
      });

      it('spreads over zones, with a selector that matches its pods', () => {
        const spread = pod().topologySpreadConstraints as Doc[];
        const zone = spread.find((s) => s.topologyKey === 'topology.kubernetes.io/zone');
        expect(zone).toBeDefined();
        expect(matches(get(must(zone), 'labelSelector.matchLabels'), podLabels())).toBe(true);
      });

      it('has a PodDisruptionBudget, a Service and an HPA that select or target exactly this Deployment', () => {
        const pdbs = ofKind('PodDisruptionBudget').filter((p) =>
          matches(get(p, 'spec.selector.matchLabels'), podLabels()),
        );
        expect(pdbs).toHaveLength(1);
        for (const p of ofKind('PodDisruptionBudget')) {
          // A PDB must select pods of one Deployment only, or it counts the wrong ones.
          const selected = deployments.filter((d) =>
            matches(get(p, 'spec.selector.matchLabels'), get(d, 'spec.template.metadata.labels')),
          );
          expect(selected, name(p)).toHaveLength(1);
        }
        const services = ofKind('Service').filter((s) => matches(get(s, 'spec.selector'), podLabels()));
        expect(services).toHaveLength(1);
        const targetPort = get(must(services[0]), 'spec.ports.0.targetPort');
        expect((container().ports as Doc[]).some((p) => p.name === targetPort || p.containerPort === targetPort)).toBe(
          true,
        );
        const hpa = must(
          ofKind('HorizontalPodAutoscaler').find((h) => get(h, 'spec.scaleTargetRef.name') === name(deployment())),
        );
        // The PDB must leave evictions possible at the smallest size the HPA allows.
        const pdb = must(pdbs[0]);
        const minReplicas = get(hpa, 'spec.minReplicas') as number;
        if (get(pdb, 'spec.minAvailable') !== undefined)
          expect(get(pdb, 'spec.minAvailable') as number).toBeLessThan(minReplicas);
        else expect(get(pdb, 'spec.maxUnavailable') as number).toBeGreaterThanOrEqual(1);
      });

      it('reads its configuration from the ConfigMap and Secret that exist', () => {
        const refs = (container().envFrom as Doc[]).map((e) => (e.configMapRef ?? e.secretRef) as Doc);
        const known = [...ofKind('ConfigMap'), ...ofKind('Secret')].map((d) => name(d));
        for (const ref of refs) expect(known).toContain(ref.name);
      });
    });
  }

  it('sets only SHOAL_* names the code reads', () => {
    const secret = (ofKind('Secret')[0]?.stringData ?? {}) as Record<string, string>;
    const names = [...Object.keys(config), ...Object.keys(secret)].filter((k) => k.startsWith('SHOAL_'));
    expect(names.length).toBeGreaterThan(5);
    for (const n of names) expect(envNamesRead, n).toContain(n);
  });

  it('routes /ws and /sse to the gateways and everything else to the web nodes', () => {
    const paths = ofKind('Ingress').flatMap((i) =>
      (get(i, 'spec.rules.0.http.paths') as Doc[]).map((p) => [p.path, get(p, 'backend.service.name')]),
    );
    expect(Object.fromEntries(paths)).toEqual({ '/': 'shoal-web', '/ws': 'shoal-gateway', '/sse': 'shoal-gateway' });
  });

  it('lists every manifest in kustomization.yaml', () => {
    const kustomization = must(k8s.find((x) => x.doc.kind === 'Kustomization')).doc;
    const listed = (kustomization.resources as string[]).sort();
    const files = yamlFiles
      .filter((f) => f.includes('/k8s/') && !f.endsWith('kustomization.yaml'))
      .map((f) => f.split('/').at(-1));
    expect(listed).toEqual(files.sort());
  });
});

describe('deploy/compose.yaml', () => {
  const services = compose.services as Record<string, Doc>;
  const env = (s: string) => (services[s]?.environment ?? {}) as Record<string, string>;
  const nodes = Object.keys(services).filter((s) => /^(web|gateway)-\d$/.test(s));

  it('runs nginx, 3 web nodes, 2 gateways and redis', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['gateway-1', 'gateway-2', 'nginx', 'redis', 'web-1', 'web-2', 'web-3'].sort(),
    );
  });

  it('health-checks every service, nodes on /readyz at their own PORT', () => {
    for (const [s, def] of Object.entries(services)) {
      const test = (get(def, 'healthcheck.test') as string[] | undefined)?.join(' ');
      expect(test, s).toBeDefined();
      if (nodes.includes(s)) expect(test).toContain(`127.0.0.1:${env(s).PORT}/readyz`);
    }
  });

  it('starts nodes after a healthy redis and nginx after healthy nodes', () => {
    for (const s of nodes) expect(get(services[s], 'depends_on.redis.condition'), s).toBe('service_healthy');
    const nginx = get(services.nginx, 'depends_on') as Record<string, { condition: string }>;
    expect(Object.keys(nginx).sort()).toEqual([...nodes].sort());
    for (const dep of Object.values(nginx)) expect(dep.condition).toBe('service_healthy');
  });

  it('lets a node finish its drain before Docker kills it', () => {
    for (const s of nodes) {
      const limit = seconds(env(s).SHOAL_DRAIN_TIMEOUT ?? env(s).SHOAL_DRAIN_WINDOW);
      expect(seconds(services[s]?.stop_grace_period as string), s).toBeGreaterThan(limit);
    }
  });

  it('keeps a web node serving longer than nginx keeps idle upstream connections', () => {
    const keepalive = /upstream shoal_web \{[^}]*keepalive_timeout (\d+)s;/.exec(read('deploy/nginx/shoal.conf'))?.[1];
    expect(keepalive).toBeDefined();
    for (const s of nodes.filter((n) => n.startsWith('web'))) {
      expect(seconds(env(s).SHOAL_DRAIN_DELAY), s).toBeGreaterThan(Number(keepalive));
    }
  });

  it('mounts nginx files that exist, with server lists naming the compose services', () => {
    const volumes = get(services.nginx, 'volumes') as string[];
    for (const v of volumes) statSync(join(ROOT, 'deploy', must(v.split(':')[0])));
    const listed = ['web', 'gateway'].flatMap((w) =>
      [...read(`deploy/nginx/upstreams.${w}.conf.example`).matchAll(/^server ([\w-]+):(\d+)/gm)].map((m) => [
        m[1],
        m[2],
      ]),
    );
    expect(listed.map(([host]) => host).sort()).toEqual([...nodes].sort());
    for (const [host, port] of listed) expect(env(must(host)).PORT, host).toBe(port);
  });

  it('shows every node on the ops dashboard, at the port it listens on', () => {
    for (const s of nodes.filter((n) => n.startsWith('web'))) {
      const listed = dashboardNodesFromEnv(env(s).SHOAL_DASHBOARD_NODES);
      expect(listed.map((n) => `${n.role}/${n.name}=${n.host}:${n.port}`).sort(), s).toEqual(
        nodes.map((n) => `${n.replace(/-\d$/, '')}/${n}=${n}:${env(n).PORT}`).sort(),
      );
    }
  });

  it('sets only SHOAL_* names the code reads', () => {
    const names = nodes.flatMap((s) => Object.keys(env(s))).filter((k) => k.startsWith('SHOAL_'));
    for (const n of new Set(names)) expect(envNamesRead, n).toContain(n);
  });
});

describe('deploy/nginx/shoal.conf (statically; test/deploy/nginx.test.ts runs it)', () => {
  const conf = read('deploy/nginx/shoal.conf').replace(/#[^\n]*/g, '');
  const block = (head: string) => must(new RegExp(`${head} \\{([^}]*)\\}`).exec(conf)?.[1]);

  it('balances web nodes round-robin, with no stickiness', () => {
    expect(block('upstream shoal_web')).not.toMatch(/\b(ip_hash|hash|sticky|least_conn|random)\b/);
    expect(block('upstream shoal_web')).toMatch(/keepalive \d+;/);
  });

  it('never replays non-idempotent requests', () => {
    expect(conf).toMatch(/proxy_next_upstream error timeout;/);
    expect(conf).not.toMatch(/non_idempotent/);
  });

  it('streams /sse unbuffered and keeps WebSockets open past the gateway heartbeat', () => {
    expect(block('location = /sse')).toMatch(/proxy_buffering off;/);
    for (const loc of ['location = /sse', 'location = /ws']) {
      const timeout = Number(/proxy_read_timeout (\d+)s;/.exec(block(loc))?.[1]);
      expect(timeout, loc).toBeGreaterThan(20); // the gateway's default heartbeat
    }
    expect(conf).toMatch(/proxy_set_header Connection \$connection_upgrade;/);
  });
});

describe('Dockerfile', () => {
  const text = read('Dockerfile').replace(/^\s*#.*\n/gm, '');
  const stages = text.split(/^FROM /m).slice(1);
  const runtime = must(stages.at(-1));

  it('builds in one stage (npm ci, npm run build) and runs on node:20-slim in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(must(stages[0])).toMatch(/npm ci/);
    expect(must(stages[0])).toMatch(/npm run build/);
    expect(runtime).toMatch(/^node:20-slim\b/);
    expect(runtime).not.toMatch(/npm (ci|install)/);
  });

  it('installs dependencies before it copies the sources, and copies everything the build reads before it builds', () => {
    const build = must(stages[0]);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    // No install-time build: npm asks dependents installing from a tarball or git to approve a `prepare`.
    expect(pkg.scripts.prepare).toBeUndefined();
    const beforeCi = build.slice(0, build.search(/^RUN npm ci/m));
    const copiedBeforeCi = [...beforeCi.matchAll(/^COPY (.+)$/gm)].flatMap((m) => must(m[1]).split(/\s+/).slice(0, -1));
    expect(copiedBeforeCi.sort()).toEqual(['package-lock.json', 'package.json']);
    const beforeBuild = build.slice(0, build.search(/^RUN npm run build/m));
    const copied = [...beforeBuild.matchAll(/^COPY (.+)$/gm)].flatMap((m) => must(m[1]).split(/\s+/).slice(0, -1));
    const script = must(/^node (\S+)/.exec(must(pkg.scripts.build))?.[1]);
    const covers = (file: string) => copied.some((c) => c === file || file.startsWith(`${c.replace(/\/$/, '')}/`));
    for (const file of ['src/index.ts', 'tsconfig.json', 'tsconfig.build.json', script]) {
      expect(covers(file), `${file} is copied before npm run build`).toBe(true);
    }
    for (const file of [...read(script).matchAll(/'((?:docs|src|tsconfig)[^']*\.(?:json|css))'/g)].map((m) =>
      must(m[1]),
    )) {
      expect(covers(file), `${file} (read by ${script}) is copied before npm run build`).toBe(true);
    }
  });

  it('runs as a non-root user, health-checks /healthz and starts bin/shoal.js', () => {
    const user = /^USER (\S+)/m.exec(runtime)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(runtime).toMatch(/^HEALTHCHECK [^\n]*(\\\n[^\n]*)*\/healthz/m);
    const cmd = JSON.parse(must(/^CMD (\[.*\])$/m.exec(runtime)?.[1])) as string[];
    expect(cmd.slice(0, 3)).toEqual(['node', 'bin/shoal.js', 'web']);
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(pkg.bin.shoal).toBe('./bin/shoal.js');
    statSync(join(ROOT, 'bin/shoal.js'));
  });

  it('keeps local node_modules and dist out of the build context', () => {
    const ignored = read('.dockerignore').split('\n');
    expect(ignored).toContain('node_modules');
    expect(ignored).toContain('dist');
  });
});

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

function parse(file: string): Doc[] {
  return parseAllDocuments(readFileSync(file, 'utf8'), { merge: true }).map((d) => d.toJS() as Doc);
}

function get(obj: unknown, path: string): unknown {
  let at: unknown = obj;
  for (const key of path.split('.')) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

function name(doc: Doc): string {
  return get(doc, 'metadata.name') as string;
}

function matches(selector: unknown, labels: unknown): boolean {
  const want = Object.entries((selector ?? {}) as Record<string, string>);
  const have = (labels ?? {}) as Record<string, string>;
  return want.length > 0 && want.every(([k, v]) => have[k] === v);
}

function seconds(value: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(value ?? '');
  if (!m) throw new Error(`not a duration: ${value}`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n / 1000 : m[2] === 'm' ? n * 60 : n;
}

function must<T>(value: T | undefined | null): T {
  if (value === undefined || value === null) throw new Error('missing');
  return value;
}
