/**
 * The ops dashboard's page script, run by the browser as an ES module (served under /_shoal/assets/).
 * It reads its settings from the page, polls /_shoal/api/state, keeps the history and draws the
 * table and the charts. Compiled with its own tsconfig: the DOM library is on here, not in the server.
 */
import { bucketIncrease, counterIncrease, histogramQuantile, mergeBuckets } from './math.js';
import type { DashboardState, PageConfig } from './state.js';

type Report = DashboardState['nodes'][number];
type Point = Record<string, number | null>;

/** Polls the state, keeps the history, draws the table and the charts. */
function dashboardClient(config: PageConfig): void {
  const PALETTE = ['#0b5cad', '#c2410c', '#15803d', '#7c3aed', '#b91c1c', '#0e7490', '#a16207', '#be185d'];
  const SVG = 'http://www.w3.org/2000/svg';
  const $ = (id: string) => document.getElementById(id) as HTMLElement;
  const charts: Record<string, Point[]> = { requests: [], conflicts: [], latency: [], messages: [] };
  /** Per node: the last few scrapes (time + raw metrics), for rates (1 s) and the latency window (5 s). */
  const past = new Map<string, Array<{ at: number; m: NonNullable<Report['metrics']> }>>();
  const colors = new Map<string, string>();
  let token = config.tokenRequired ? (sessionStorage.getItem('shoal-dashboard-token') ?? '') : '';

  const colorOf = (name: string) => {
    let c = colors.get(name);
    if (!c) {
      c = PALETTE[colors.size % PALETTE.length] ?? '#333';
      colors.set(name, c);
    }
    return c;
  };
  const headers = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
  const fmt = (n: number | null | undefined, digits = 1) =>
    n === null || n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits);

  function el(tag: string, attrs: Record<string, string> = {}, text = ''): HTMLElement {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text) e.textContent = text;
    return e;
  }

  function askToken(): void {
    const form = $('token-form') as HTMLFormElement;
    form.hidden = false;
    form.onsubmit = (ev) => {
      ev.preventDefault();
      token = ($('token') as HTMLInputElement).value.trim();
      sessionStorage.setItem('shoal-dashboard-token', token);
      form.hidden = true;
    };
  }

  async function signal(name: string, sig: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const status = $('status');
    try {
      const res = await fetch(`${config.base}/api/nodes/${encodeURIComponent(name)}/signal`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers() },
        body: JSON.stringify({ signal: sig }),
      });
      const body = (await res.json()) as { error?: string };
      status.textContent = res.ok ? `${sig} sent to ${name}.` : `${name}: ${body.error ?? res.status}`;
    } catch (err) {
      status.textContent = `Could not send ${sig} to ${name}: ${(err as Error).message}`;
    }
  }

  /** Rate of a counter over the newest interval; null when there is no earlier scrape yet. */
  function rate(name: string, pick: (m: NonNullable<Report['metrics']>) => number): number | null {
    const h = past.get(name);
    const cur = h?.[h.length - 1];
    const prev = h?.[h.length - 2];
    if (!cur || !prev || cur.at <= prev.at) return null;
    return counterIncrease(pick(prev.m), pick(cur.m)) / ((cur.at - prev.at) / 1000);
  }

  function record(state: DashboardState): void {
    const live = new Set<string>();
    for (const n of state.nodes) {
      if (!n.metrics) {
        past.delete(n.name); // a restarted process counts from zero again
        continue;
      }
      live.add(n.name);
      const h = past.get(n.name) ?? [];
      h.push({ at: state.at, m: n.metrics });
      while (h.length > 6) h.shift();
      past.set(n.name, h);
    }
    const requests: Point = {};
    const messages: Point = {};
    let conflicts: number | null = null;
    const windows: Array<Array<[string, number]>> = [];
    for (const n of state.nodes) {
      const alive = live.has(n.name);
      if (n.role === 'web') {
        requests[n.name] = alive ? rate(n.name, (m) => m.requests) : null;
        const c = alive ? rate(n.name, (m) => m.conflicts) : null;
        if (c !== null) conflicts = (conflicts ?? 0) + c;
        const h = past.get(n.name);
        const first = h?.[0];
        const last = h?.[h.length - 1];
        if (alive && first && last && first !== last) {
          windows.push(bucketIncrease(first.m.storeLatency, last.m.storeLatency));
        }
      } else {
        messages[n.name] = alive ? rate(n.name, (m) => m.messagesOut) : null;
      }
    }
    const p99 = windows.length ? histogramQuantile(0.99, mergeBuckets(windows)) : null;
    const push = (key: string, point: Point) => {
      const series = charts[key] as Point[];
      series.push(point);
      while (series.length > config.points) series.shift();
    };
    push('requests', requests);
    push('messages', messages);
    push('conflicts', { conflicts });
    push('latency', { p99: p99 === null ? null : p99 * 1000 });
  }

  function renderTable(state: DashboardState): void {
    const body = document.querySelector('#nodes tbody') as HTMLElement;
    const rows = state.nodes.map((n) => {
      const tr = el('tr', { 'data-node': n.name, 'data-state': n.state });
      const th = el('th', { scope: 'row' });
      const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      swatch.style.background = colorOf(n.name);
      th.append(swatch, n.name);
      tr.append(th, el('td', {}, n.role));
      const stateCell = el('td');
      stateCell.append(el('span', { class: `state state-${n.state}`, 'data-testid': `state-${n.name}` }, n.state));
      if (n.error && n.state !== 'dead') stateCell.append(el('small', {}, ` ${n.error}`));
      tr.append(
        stateCell,
        el('td', { class: 'num' }, n.pid ? String(n.pid) : '–'),
        el('td', { class: 'num' }, n.restarts === undefined ? '–' : String(n.restarts)),
        el('td', { class: 'num' }, n.metrics ? fmt(rate(n.name, (m) => m.requests)) : '–'),
        el('td', { class: 'num' }, n.metrics && n.role === 'gateway' ? String(n.metrics.sockets) : '–'),
        el('td', { class: 'num' }, n.metrics && n.role === 'web' ? String(n.metrics.sessionsCreated) : '–'),
      );
      const actions = el('td', { class: 'actions' });
      if (state.canSignal) {
        for (const sig of ['SIGTERM', 'SIGKILL'] as const) {
          const b = el('button', { type: 'button', class: sig === 'SIGKILL' ? 'kill' : 'term' }, sig);
          b.setAttribute('aria-label', `Send ${sig} to ${n.name}`);
          b.dataset.testid = `${sig.toLowerCase()}-${n.name}`;
          if (n.state === 'dead') (b as HTMLButtonElement).disabled = true;
          b.addEventListener('click', () => void signal(n.name, sig));
          actions.append(b);
        }
      } else {
        actions.textContent = 'local cluster only';
      }
      tr.append(actions);
      return tr;
    });
    // Keep the focused button focused across redraws (keyboard users would lose their place).
    const focused = document.activeElement as HTMLElement | null;
    const focusId = focused?.dataset.testid;
    body.replaceChildren(...rows);
    if (focusId) (body.querySelector(`[data-testid="${focusId}"]`) as HTMLElement | null)?.focus();
    const ready = state.nodes.filter((n) => n.state === 'ready').length;
    const sockets = state.nodes.reduce((s, n) => s + (n.metrics?.sockets ?? 0), 0);
    $('summary').textContent =
      `${ready} of ${state.nodes.length} nodes ready · ${sockets} sockets · updated ${new Date(state.at).toLocaleTimeString()}`;
  }

  function renderChart(key: string, unit: string): void {
    const fig = $(`chart-${key}`);
    const data = charts[key] as Point[];
    const names = [...new Set(data.flatMap((p) => Object.keys(p)))].sort();
    const W = 600;
    const H = 150;
    let max = 0;
    for (const p of data) for (const v of Object.values(p)) if (v !== null && v > max) max = v;
    // A rounded scale (1, 2, 5 × 10^n) so the axis label is readable.
    const mag = 10 ** Math.floor(Math.log10(Math.max(max, 1e-9)));
    const top = max <= 0 ? 1 : ([1, 2, 5, 10].map((f) => f * mag).find((v) => v >= max) ?? max);
    const x = (i: number) => (W * (i + config.points - data.length)) / (config.points - 1);
    const y = (v: number) => H - 4 - ((H - 8) * v) / top;
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    const latest = names.map((n) => `${n} ${fmt(data[data.length - 1]?.[n])}`).join(', ');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `${fig.querySelector('figcaption')?.textContent}: ${latest || 'no data yet'}`);
    for (const f of [0.5, 1]) {
      const g = document.createElementNS(SVG, 'line');
      g.setAttribute('x1', '0');
      g.setAttribute('x2', String(W));
      g.setAttribute('y1', String(y(top * f)));
      g.setAttribute('y2', String(y(top * f)));
      g.setAttribute('class', 'grid');
      svg.append(g);
    }
    for (const name of names) {
      // A gap (node down, no data) breaks the line instead of drawing it to zero.
      let d = '';
      let pen = false;
      data.forEach((p, i) => {
        const v = p[name];
        if (v === null || v === undefined) {
          pen = false;
          return;
        }
        d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)} `;
        pen = true;
      });
      const path = document.createElementNS(SVG, 'path');
      path.setAttribute('d', d.trim() || 'M0 0');
      path.setAttribute('stroke', key === 'requests' || key === 'messages' ? colorOf(name) : '#0b5cad');
      path.setAttribute('class', 'series');
      svg.append(path);
    }
    const axis = el('div', { class: 'axis' }, `max ${fmt(top, top < 10 ? 1 : 0)} ${unit}`);
    const legend = el('ul', { class: 'legend' });
    for (const name of names) {
      const li = el('li');
      const sw = el('span', { class: 'swatch', 'aria-hidden': 'true' });
      sw.style.background = key === 'requests' || key === 'messages' ? colorOf(name) : '#0b5cad';
      li.append(sw, `${name} ${fmt(data[data.length - 1]?.[name])}`);
      legend.append(li);
    }
    const caption = fig.querySelector('figcaption') as HTMLElement;
    fig.replaceChildren(caption, svg, axis, legend);
  }

  async function tick(): Promise<void> {
    // Without the token every poll would be a 401, each one an error in the browser's console: the page
    // waits for the form instead.
    if (config.tokenRequired && !token) return;
    try {
      const res = await fetch(`${config.base}/api/state`, { headers: headers(), signal: AbortSignal.timeout(5000) });
      if (res.status === 401) {
        // Refused once; asking again with the same token would only be refused again.
        const refused = token !== '';
        token = '';
        sessionStorage.removeItem('shoal-dashboard-token');
        $('summary').textContent = refused
          ? 'That token was refused: enter the dashboard token (SHOAL_DASHBOARD_TOKEN).'
          : 'This dashboard needs its token.';
        askToken();
        return;
      }
      const state = (await res.json()) as DashboardState;
      record(state);
      renderTable(state);
      renderChart('requests', 'req/s');
      renderChart('conflicts', '/s');
      renderChart('latency', 'ms');
      renderChart('messages', 'msg/s');
    } catch (err) {
      $('summary').textContent = `The dashboard does not answer (${(err as Error).message}); retrying…`;
    }
  }

  const loop = () => {
    void tick().finally(() => setTimeout(loop, config.pollMs));
  };
  if (config.tokenRequired && !token) {
    $('summary').textContent = 'This dashboard needs its token.';
    askToken();
  }
  loop();
}

const settings = document.getElementById('dashboard-config')?.textContent;
if (settings) dashboardClient(JSON.parse(settings) as PageConfig);
