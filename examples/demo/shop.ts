/** The demo's tiny catalogue and the shapes kept in a visitor's session. */

export interface Product {
  sku: string;
  name: string;
  priceCents: number;
}

export const PRODUCTS: readonly Product[] = [
  { sku: 'beans', name: 'Coffee beans, 1 kg', priceCents: 2400 },
  { sku: 'mug', name: 'Enamel mug', priceCents: 1200 },
  { sku: 'filters', name: 'Paper filters ×100', priceCents: 450 },
  { sku: 'grinder', name: 'Hand grinder', priceCents: 6900 },
];

export const ROOMS = ['lobby', 'support', 'random'] as const;

/**
 * sku → quantity, and a version every change bumps: tabs receive carts both in
 * responses and pushed by other tabs' edits, in any order, and keep the newest.
 */
export interface Cart {
  items: Record<string, number>;
  version: number;
}

export const EMPTY_CART: Cart = { items: {}, version: 0 };

export interface Order {
  id: string;
  items: Record<string, number>;
  totalCents: number;
  placedAt: number;
}

/** Everything the demo keeps in a session. */
export type DemoSchema = {
  name: string;
  cart: Cart;
  orders: Order[];
};

/** What a chat message carries over the bus. */
export interface ChatMessage {
  from: string;
  text: string;
  at: number;
  /** The web node that published it. */
  node: string;
}

/** The events the demo publishes (the page's `connect<DemoEvents>()` uses the same map). */
export type DemoEvents = {
  'chat.message': ChatMessage;
  'cart.changed': { cart: Cart; node: string };
  'order.placed': { order: Order; node: string };
  'order.shipped': { orderId: string; node: string };
};

export function findProduct(sku: string): Product | undefined {
  return PRODUCTS.find((p) => p.sku === sku);
}

export function cartCount(items: Cart['items']): number {
  return Object.values(items).reduce((n, q) => n + q, 0);
}

export function cartTotal(items: Cart['items']): number {
  return Object.entries(items).reduce((sum, [sku, q]) => sum + (findProduct(sku)?.priceCents ?? 0) * q, 0);
}

export function formatPrice(cents: number): string {
  return `€${(cents / 100).toFixed(2)}`;
}

/** User names become channel names (`user:<name>`), so they use the channel alphabet. */
export const NAME_PATTERN = /^[A-Za-z0-9_.@-]{1,32}$/;
export const ROOM_CHANNEL = /^room:(lobby|support|random)$/;
