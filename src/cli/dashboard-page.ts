import type { PageConfig } from './dashboard-ui/state.js';

/**
 * The page's icon, inline: without one a browser asks the origin for /favicon.ico, which the balancer
 * hands to a web node and the app answers 404, an error in the console of every dashboard visit.
 * A data: URL is what the page's Content-Security-Policy (img-src data:) already allows.
 */
const ICON = `data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><circle cx='8' cy='8' r='7' fill='%23207a8c'/></svg>`;

/** The dashboard's HTML; its script and styles are assets (dashboard-assets.ts) the page loads. */
export function dashboardPage(o: { base: string; tokenRequired: boolean }): string {
  const config: PageConfig = { base: o.base, tokenRequired: o.tokenRequired, pollMs: 1000, points: 120 };
  const json = JSON.stringify(config).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shoal · ops dashboard</title>
<link rel="icon" href="${ICON}">
<link rel="stylesheet" href="${o.base}/assets/style.css">
<script type="module" src="${o.base}/assets/main.js"></script>
</head>
<body>
<header><h1>shoal <span>ops dashboard</span></h1><p id="summary" aria-live="polite">connecting…</p></header>
<main>
<form id="token-form" hidden>
  <label for="token">Dashboard token (SHOAL_DASHBOARD_TOKEN)</label>
  <input id="token" type="password" autocomplete="off" required>
  <button type="submit">Open</button>
</form>
<p id="status" role="status"></p>
<section aria-labelledby="nodes-h">
<h2 id="nodes-h">Nodes</h2>
<table id="nodes">
<caption>Every node of the cluster, scraped once a second. Requests include health probes.</caption>
<thead><tr><th scope="col">Node</th><th scope="col">Role</th><th scope="col">State</th><th scope="col">PID</th>
<th scope="col">Restarts</th><th scope="col">Req/s</th><th scope="col">Sockets</th><th scope="col">Sessions created</th>
<th scope="col" class="actions-h">Actions</th></tr></thead>
<tbody></tbody>
</table>
</section>
<section aria-labelledby="charts-h">
<h2 id="charts-h">Last two minutes</h2>
<div class="charts">
<figure id="chart-requests"><figcaption>Requests / s (web nodes)</figcaption></figure>
<figure id="chart-conflicts"><figcaption>Commit conflicts / s</figcaption></figure>
<figure id="chart-latency"><figcaption>Store latency p99 (ms, 5 s window)</figcaption></figure>
<figure id="chart-messages"><figcaption>Messages / s to clients (gateways)</figcaption></figure>
</div>
</section>
</main>
<script type="application/json" id="dashboard-config">${json}</script>
</body>
</html>`;
}
