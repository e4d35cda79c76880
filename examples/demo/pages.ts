/**
 * Server-rendered HTML for the demo. Pages work without JavaScript (forms post
 * and redirect); the page script then takes over for live updates.
 */
import { type Cart, cartCount, cartTotal, findProduct, formatPrice, type Order, type PRODUCTS, ROOMS } from './shop.js';

export interface PageAssets {
  pageScript: string;
  stylesheet: string;
}

/** Data the page script starts from (also the shape the JSON endpoints answer with). */
export interface Boot {
  user: string;
  node: string;
  cart: Cart;
  orders: Order[];
  rooms: readonly string[];
  products: typeof PRODUCTS;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function layout(title: string, assets: PageAssets, body: string, script = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${assets.stylesheet}">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
${body}
${script}
</body>
</html>`;
}

function nodeStrip(node: string): string {
  return `<dl class="nodes" aria-label="Which nodes served you">
  <div><dt>Page served by</dt><dd id="page-node" data-testid="page-node">${escapeHtml(node)}</dd></div>
  <div><dt>Last request</dt><dd id="last-node" data-testid="last-node">${escapeHtml(node)}</dd></div>
  <div><dt>Realtime</dt><dd id="gateway" data-testid="gateway">not connected</dd></div>
</dl>`;
}

export function loginPage(o: { node: string; error?: string; name?: string; assets: PageAssets }): string {
  const error = o.error
    ? `<p class="error" role="alert" id="login-error">${escapeHtml(o.error)}</p>`
    : '<p class="hint" id="login-hint">Letters, digits and <code>_ . @ -</code>, up to 32 characters. No password: this is a demo.</p>';
  return layout(
    'Sign in · shoal demo',
    o.assets,
    `<header class="top"><h1>shoal demo <span>coffee shop on a cluster</span></h1></header>
${nodeStrip(o.node)}
<main id="main" class="narrow">
  <section aria-labelledby="login-h" class="card">
    <h2 id="login-h">Sign in</h2>
    <form method="post" action="/login" class="login">
      <label for="name">Your name</label>
      <input id="name" name="name" autocomplete="username" required maxlength="32" pattern="[A-Za-z0-9_.@\\-]{1,32}"
        value="${escapeHtml(o.name ?? '')}" aria-describedby="${o.error ? 'login-error' : 'login-hint'}"${o.error ? ' aria-invalid="true" autofocus' : ''}>
      ${error}
      <button type="submit">Sign in</button>
    </form>
  </section>
  <p class="aside">Every request goes through a round-robin balancer to one of several web nodes, with no sticky
  sessions: reload and watch “Page served by” change while your session stays. Ops dashboard:
  <a href="/_shoal/">/_shoal/</a>.</p>
</main>`,
  );
}

export function cartHtml(cart: Cart): string {
  const lines = Object.entries(cart.items).filter(([, q]) => q > 0);
  if (lines.length === 0) return '<p class="empty">Your cart is empty.</p>';
  const items = lines
    .map(([sku, q]) => {
      const p = findProduct(sku);
      const name = escapeHtml(p?.name ?? sku);
      return `<li data-sku="${escapeHtml(sku)}"><span class="qty">${q}×</span> <span class="name">${name}</span>
  <form method="post" action="/cart/remove" data-action="cart"><input type="hidden" name="sku" value="${escapeHtml(sku)}">
  <button type="submit" class="small" aria-label="Remove one ${name}">−1</button></form></li>`;
    })
    .join('\n');
  return `<ul class="cart-lines">${items}</ul>
<p class="total"><span data-testid="cart-count">${cartCount(cart.items)}</span> items · ${formatPrice(cartTotal(cart.items))}</p>`;
}

export function appPage(boot: Boot, assets: PageAssets): string {
  const products = boot.products
    .map(
      (
        p,
      ) => `<li><span class="name">${escapeHtml(p.name)}</span> <span class="price">${formatPrice(p.priceCents)}</span>
  <form method="post" action="/cart/add" data-action="cart"><input type="hidden" name="sku" value="${p.sku}">
  <button type="submit" aria-label="Add ${escapeHtml(p.name)} to cart" data-testid="add-${p.sku}">Add</button></form></li>`,
    )
    .join('\n');
  const rooms = ROOMS.map(
    (r, i) =>
      `<li><button type="button" data-room="${r}" aria-pressed="${i === 0}" data-testid="room-${r}">#${r}</button></li>`,
  ).join('');
  // JSON in a script element: "<" escaped so a value can never close the element.
  const bootJson = JSON.stringify(boot).replace(/</g, '\\u003c');
  return layout(
    'shoal demo',
    assets,
    `<header class="top">
  <h1>shoal demo <span>coffee shop on a cluster</span></h1>
  <div class="who">
    <span>Signed in as <strong data-testid="user">${escapeHtml(boot.user)}</strong></span>
    <form method="post" action="/logout" data-action="logout"><button type="submit" class="secondary">Log out</button></form>
    <form method="post" action="/logout-everywhere" data-action="logout"><button type="submit" class="danger" data-testid="logout-everywhere">Log out everywhere</button></form>
  </div>
</header>
<div id="ended" class="banner" role="alert" hidden data-testid="signed-out">
  <strong>You have been signed out.</strong> This session was ended on the server (log out, or “log out everywhere” in
  another tab), so its realtime connection was closed. <a href="/">Sign in again</a>.
</div>
${nodeStrip(boot.node)}
<p id="status" class="status" role="status" aria-live="polite"></p>
<main id="main" class="grid">
  <section aria-labelledby="shop-h" class="card">
    <h2 id="shop-h">Shop</h2>
    <ul class="products">${products}</ul>
  </section>
  <section aria-labelledby="cart-h" class="card">
    <h2 id="cart-h">Cart</h2>
    <p class="hint">Kept in your session. Edit it from several tabs at once: every change is kept.</p>
    <div id="cart" aria-live="polite">${cartHtml(boot.cart)}</div>
    <form method="post" action="/checkout" data-action="checkout"><button type="submit" data-testid="checkout">Check out</button></form>
  </section>
  <section aria-labelledby="chat-h" class="card chat">
    <h2 id="chat-h">Chat</h2>
    <noscript><p>Chat needs JavaScript.</p></noscript>
    <nav aria-label="Rooms"><ul class="rooms">${rooms}</ul></nav>
    <p class="presence">Here now: <span id="presence" data-testid="presence">…</span></p>
    <ol id="messages" class="messages" role="log" aria-live="polite" aria-label="Messages" data-testid="messages"></ol>
    <form id="chat-form" class="send" data-action="chat">
      <label for="chat-text">Message</label>
      <input id="chat-text" name="text" autocomplete="off" maxlength="500" required>
      <button type="submit">Send</button>
    </form>
  </section>
  <section aria-labelledby="notes-h" class="card">
    <h2 id="notes-h">Notifications</h2>
    <p class="hint">Pushed by web nodes through the bus to whichever gateway holds your socket.</p>
    <ul id="notifications" class="notes" aria-live="polite" data-testid="notifications"></ul>
  </section>
</main>
<footer><a href="/_shoal/">Ops dashboard</a> · shoal</footer>`,
    `<script type="application/json" id="boot">${bootJson}</script>
<script type="module" src="${assets.pageScript}"></script>`,
  );
}
