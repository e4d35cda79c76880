/**
 * The demo page's script (bundled for the browser by ../assets.ts). Forms post
 * with fetch; the realtime client keeps the cart, chat and notifications live.
 */
import { connect } from 'shoal/client';
import type { Boot } from '../pages.js';
import type { Cart, ChatMessage, DemoEvents, Order } from '../shop.js';

const boot = JSON.parse(document.getElementById('boot')?.textContent ?? '{}') as Boot;
const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

const price = (cents: number) => `€${(cents / 100).toFixed(2)}`;
const productName = (sku: string) => boot.products.find((p) => p.sku === sku)?.name ?? sku;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

function status(text: string, error = false): void {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', error);
}

/** fetch as JSON; shows which node answered (the balancer picks a different one each time). */
async function call<T>(method: 'GET' | 'POST', url: string, data?: Record<string, string>): Promise<T> {
  const res = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: { accept: 'application/json', ...(data ? { 'content-type': 'application/json' } : {}) },
    ...(data ? { body: JSON.stringify(data) } : {}),
  });
  const served = res.headers.get('x-shoal-node');
  if (served) $('last-node').textContent = served;
  const json = (await res.json().catch(() => ({}))) as T & { error?: string };
  if (!res.ok) throw new Error(json.error ?? `${res.status} ${res.statusText}`);
  return json;
}

// ---- cart -------------------------------------------------------------------------------------------

let shownVersion = -1;

/** Draws a cart unless a newer one is already shown (responses and pushes arrive in any order). */
function renderCart(cart: Cart): void {
  if (cart.version < shownVersion) return;
  shownVersion = cart.version;
  const box = $('cart');
  box.dataset.version = String(cart.version);
  const lines = Object.entries(cart.items).filter(([, q]) => q > 0);
  if (lines.length === 0) {
    box.replaceChildren(el('p', { className: 'empty', textContent: 'Your cart is empty.' }));
    return;
  }
  const list = el('ul', { className: 'cart-lines' });
  let count = 0;
  let total = 0;
  for (const [sku, qty] of lines) {
    count += qty;
    total += (boot.products.find((p) => p.sku === sku)?.priceCents ?? 0) * qty;
    const form = el(
      'form',
      { method: 'post', action: '/cart/remove' },
      el('input', { type: 'hidden', name: 'sku', value: sku }),
      el('button', { type: 'submit', className: 'small', textContent: '−1' }),
    );
    form.dataset.action = 'cart';
    form.querySelector('button')?.setAttribute('aria-label', `Remove one ${productName(sku)}`);
    const li = el(
      'li',
      {},
      el('span', { className: 'qty', textContent: `${qty}×` }),
      ' ',
      el('span', { className: 'name', textContent: productName(sku) }),
      form,
    );
    li.dataset.sku = sku;
    list.append(li);
  }
  const countEl = el('span', { textContent: String(count) });
  countEl.dataset.testid = 'cart-count';
  box.replaceChildren(list, el('p', { className: 'total' }, countEl, ` items · ${price(total)}`));
}

// ---- notifications ----------------------------------------------------------------------------------

function notify(text: string): void {
  const time = new Date().toLocaleTimeString();
  $('notifications').prepend(el('li', {}, el('time', { textContent: time }), ' ', text));
}

// ---- chat -------------------------------------------------------------------------------------------

let room = boot.rooms[0] ?? 'lobby';
const seen = new Set<number>();
let stopRoom: (() => void) | undefined;
let stopPresence: (() => void) | undefined;

function showMessage(offset: number, m: ChatMessage): void {
  if (seen.has(offset)) return;
  seen.add(offset);
  const li = el(
    'li',
    {},
    el('strong', { textContent: m.from }),
    ' ',
    el('span', { className: 'text', textContent: m.text }),
    ' ',
    el('small', { textContent: `via ${m.node} · ${new Date(m.at).toLocaleTimeString()}` }),
  );
  li.dataset.offset = String(offset);
  const list = $('messages');
  // History and live messages may interleave: keep the log in offset order.
  const after = Array.from(list.children).find((c) => Number((c as HTMLElement).dataset.offset) > offset);
  list.insertBefore(li, after ?? null);
  list.scrollTop = list.scrollHeight;
}

async function loadHistory(name: string): Promise<void> {
  const h = await call<{ messages: Array<{ offset: number; data: ChatMessage }> }>('GET', `/rooms/${name}/history`);
  if (name === room) for (const m of h.messages) showMessage(m.offset, m.data);
}

function joinRoom(name: string): void {
  stopRoom?.();
  stopPresence?.();
  room = name;
  seen.clear();
  $('messages').replaceChildren();
  $('presence').textContent = '…';
  for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('[data-room]'))) {
    b.setAttribute('aria-pressed', String(b.dataset.room === name));
  }
  const channel = `room:${name}`;
  // Subscribe first, then read history: the two overlap rather than leave a gap, and offsets de-duplicate.
  stopRoom = rt.subscribe(channel, (m) => {
    if (m.event === 'chat.message') showMessage(m.offset, m.data);
  });
  stopPresence = rt.presence(channel, (users) => {
    $('presence').textContent = users.length ? [...users].sort().join(', ') : 'nobody';
  });
  loadHistory(name).catch((err: Error) => status(`Could not load the history: ${err.message}`, true));
}

// ---- realtime ---------------------------------------------------------------------------------------

const rt = connect<DemoEvents>('/ws');
const gateway = $('gateway');
let followingOwn = false;

/** Which gateway holds this tab's socket, over what, in what state. */
function showGateway(): void {
  const state = rt.state;
  gateway.dataset.state = state;
  const where = rt.hello && state === 'open' ? rt.hello.gateway : '';
  if (where) gateway.dataset.gateway = where;
  gateway.textContent = `${where ? `${where} · ` : ''}${rt.transport} · ${state}`;
}

rt.on('hello', (hello) => {
  showGateway();
  if (followingOwn) return;
  followingOwn = true;
  // The gateway joined this session's and this user's channels on its own; follow them by name.
  for (const channel of hello.channels) {
    rt.subscribe(channel, (m) => {
      switch (m.event) {
        case 'cart.changed':
          renderCart(m.data.cart);
          return;
        case 'order.placed': {
          const o: Order = m.data.order;
          notify(`Order ${o.id} placed: ${price(o.totalCents)} (web node ${m.data.node}).`);
          return;
        }
        case 'order.shipped':
          notify(`Order ${m.data.orderId} shipped! (pushed by ${m.data.node})`);
          return;
        default:
          return;
      }
    });
  }
});

rt.on('state', (state) => {
  showGateway();
  if (state === 'ended') signedOut();
});

rt.on('reset', (channel) => {
  // The gateway could not replay what this tab missed: reload that state from a web node.
  if (channel === `room:${room}`) void loadHistory(room).catch(() => {});
  else
    void call<{ cart: Cart }>('GET', '/me')
      .then((me) => renderCart(me.cart))
      .catch(() => {});
});

rt.on('error', (err) => status(`Realtime: ${err.message}`, true));

function signedOut(): void {
  $('ended').hidden = false;
  document.body.dataset.state = 'ended';
  $('presence').textContent = '—';
  for (const c of Array.from(
    document.querySelectorAll<HTMLButtonElement | HTMLInputElement>('main button, main input'),
  )) {
    c.disabled = true;
  }
}

// ---- forms ------------------------------------------------------------------------------------------

document.addEventListener('submit', (event) => {
  const form = event.target as HTMLFormElement;
  const action = form.dataset.action;
  if (!action) return;
  event.preventDefault();
  const data: Record<string, string> = {};
  new FormData(form).forEach((v, k) => {
    data[k] = typeof v === 'string' ? v : '';
  });
  const run = async () => {
    switch (action) {
      case 'cart': {
        const r = await call<{ cart: Cart }>('POST', form.action, data);
        renderCart(r.cart);
        return;
      }
      case 'checkout': {
        const r = await call<{ cart: Cart }>('POST', '/checkout');
        renderCart(r.cart);
        return;
      }
      case 'chat': {
        const input = $<HTMLInputElement>('chat-text');
        await call('POST', `/rooms/${room}/messages`, { text: input.value });
        input.value = '';
        input.focus();
        return;
      }
      case 'logout': {
        await call('POST', form.action);
        rt.close();
        location.assign('/');
        return;
      }
    }
  };
  run().then(
    () => status(''),
    (err: Error) => status(err.message, true),
  );
});

for (const b of Array.from(document.querySelectorAll<HTMLButtonElement>('[data-room]'))) {
  b.addEventListener('click', () => joinRoom(b.dataset.room ?? 'lobby'));
}

renderCart(boot.cart);
joinRoom(room);
