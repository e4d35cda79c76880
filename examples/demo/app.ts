/**
 * The demo: a coffee shop whose cart lives in the session, chat rooms with
 * presence, notifications pushed from web nodes, and "log out everywhere" —
 * served by any web node behind a round-robin balancer, realtime through any gateway.
 */
import { randomUUID } from 'node:crypto';
import express, { type ErrorRequestHandler, type Request, type Response } from 'express';
import { ConflictError, parseDuration, type WebContext, type WebNode } from 'shoal';
import { session, sessionErrors, sessionOf } from 'shoal/express';
import { type Assets, buildAssets } from './assets.js';
import { appPage, type Boot, loginPage } from './pages.js';
import {
  type Cart,
  type ChatMessage,
  cartTotal,
  type DemoEvents,
  type DemoSchema,
  EMPTY_CART,
  findProduct,
  NAME_PATTERN,
  type Order,
  PRODUCTS,
  ROOMS,
} from './shop.js';

const HISTORY = 50;

/** The demo's web tier: every node builds the same Express app over the sessions and bus it is given. */
export async function createDemo(ctx: WebContext<DemoSchema, DemoEvents>): Promise<WebNode> {
  const { nodeId: node, env, sessions, bus } = ctx;
  const shipDelayMs = parseDuration(env.SHOAL_DEMO_SHIP_DELAY ?? '3s', 'SHOAL_DEMO_SHIP_DELAY');
  const assets: Assets = await buildAssets();
  const to = ctx.realtime.to.bind(ctx.realtime);
  const shipping = new Set<NodeJS.Timeout>();

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback');
  app.use((_req, res, next) => {
    res.setHeader('X-Shoal-Node', node);
    next();
  });
  app.get('/assets/:file', (req, res) => {
    const asset = assets.files.get(`/assets/${req.params.file}`);
    if (!asset) {
      res.status(404).type('text').send('not found');
      return;
    }
    res.set('cache-control', 'public, max-age=31536000, immutable').type(asset.type).send(asset.body);
  });
  app.get('/favicon.ico', (_req, res) => {
    res.status(204).set('cache-control', 'public, max-age=86400').end();
  });
  app.use(express.urlencoded({ extended: false, limit: '16kb' }), express.json({ limit: '16kb' }));
  app.use(session(sessions));

  /** fetch() from the page asks for JSON; a plain form post gets a redirect back to the page. */
  const wantsJson = (req: Request) => (req.get('accept') ?? '').includes('application/json');
  const done = (req: Request, res: Response, body: Record<string, unknown>) => {
    if (wantsJson(req)) res.json({ ...body, node });
    else res.redirect(303, '/');
  };
  const fail = (req: Request, res: Response, status: number, error: string) => {
    if (wantsJson(req)) res.status(status).json({ error, node });
    else res.status(status).type('text').send(`${error}\n`);
  };
  /** The signed-in user's name, or undefined after answering 401. */
  const signedIn = async (req: Request, res: Response): Promise<string | undefined> => {
    const user = await req.session.userId();
    if (!user) fail(req, res, 401, 'not signed in (or signed out everywhere): sign in again');
    return user ?? undefined;
  };
  const body = (req: Request, key: string): string => {
    const b = req.body as Record<string, unknown> | undefined;
    const v = b?.[key];
    return typeof v === 'string' ? v.trim() : '';
  };

  app.get('/', async (req, res) => {
    const s = sessionOf(req, sessions);
    const user = await s.userId();
    if (!user) {
      res.type('html').send(loginPage({ node, assets }));
      return;
    }
    const boot: Boot = {
      user,
      node,
      cart: (await s.get('cart')) ?? EMPTY_CART,
      orders: (await s.get('orders')) ?? [],
      rooms: ROOMS,
      products: PRODUCTS,
    };
    res.set('cache-control', 'no-store').type('html').send(appPage(boot, assets));
  });

  app.post('/login', async (req, res) => {
    const name = body(req, 'name');
    if (!NAME_PATTERN.test(name)) {
      res
        .status(400)
        .type('html')
        .send(
          loginPage({
            node,
            assets,
            name: name.slice(0, 64),
            error: 'Use 1–32 letters, digits or _ . @ - (no spaces) for your name.',
          }),
        );
      return;
    }
    const s = sessionOf(req, sessions);
    // A new id on login defeats session fixation; keepData carries over what the visitor had.
    await s.regenerate({ keepData: true });
    s.setUser(name);
    s.set('name', name);
    done(req, res, { user: name });
  });

  app.get('/me', async (req, res) => {
    const s = sessionOf(req, sessions);
    const user = await s.userId();
    res.json({ user, cart: user ? ((await s.get('cart')) ?? EMPTY_CART) : EMPTY_CART, node });
  });

  const editCart = (delta: 1 | -1) => async (req: Request, res: Response) => {
    if (!(await signedIn(req, res))) return;
    const sku = body(req, 'sku');
    if (!findProduct(sku)) return fail(req, res, 400, `unknown product "${sku}"`);
    const s = sessionOf(req, sessions);
    // Compare-and-swap on the session revision: two tabs adding at once both count.
    const cart = await s.update('cart', (current = EMPTY_CART) => {
      const items = { ...current.items };
      const qty = (items[sku] ?? 0) + delta;
      if (qty > 0) items[sku] = qty;
      else delete items[sku];
      return { items, version: current.version + 1 };
    });
    // The other tabs of this session redraw their cart.
    if (s.id) await to({ session: s.id }).send('cart.changed', { cart, node });
    done(req, res, { cart });
  };
  app.post('/cart/add', editCart(1));
  app.post('/cart/remove', editCart(-1));

  app.post('/checkout', async (req, res) => {
    const user = await signedIn(req, res);
    if (!user) return;
    const s = sessionOf(req, sessions);
    let taken: Cart = EMPTY_CART;
    // fn may run more than once; the run that commits is the last one, so `taken` is what was bought.
    const cart = await s.update('cart', (current = EMPTY_CART) => {
      taken = current;
      return { items: {}, version: current.version + 1 };
    });
    if (Object.keys(taken.items).length === 0) return fail(req, res, 409, 'your cart is empty');
    const order: Order = {
      id: randomUUID().slice(0, 8),
      items: taken.items,
      totalCents: cartTotal(taken.items),
      placedAt: Date.now(),
    };
    await s.update('orders', (orders) => [order, ...(orders ?? [])].slice(0, 20));
    if (s.id) await to({ session: s.id }).send('cart.changed', { cart, node });
    await to({ user }).send('order.placed', { order, node });
    // "Shipped" comes later, from this node, to every tab of the user wherever its socket is.
    const timer = setTimeout(() => {
      shipping.delete(timer);
      to({ user })
        .send('order.shipped', { orderId: order.id, node })
        .catch(() => {});
    }, shipDelayMs);
    shipping.add(timer);
    done(req, res, { order, cart });
  });

  app.get('/rooms/:room/history', async (req, res) => {
    if (!(await signedIn(req, res))) return;
    const room = String(req.params.room);
    if (!(ROOMS as readonly string[]).includes(room)) return fail(req, res, 404, `no room "${room}"`);
    const channel = `room:${room}`;
    const { offset } = await bus.position(channel);
    const read = await bus.read(channel, Math.max(0, offset - HISTORY), { limit: HISTORY });
    const messages = read.messages
      .filter((m) => m.event === 'chat.message')
      .map((m) => ({ offset: m.offset, epoch: m.epoch, data: JSON.parse(m.data) as ChatMessage }));
    res.json({ channel, messages, node });
  });

  app.post('/rooms/:room/messages', async (req, res) => {
    const user = await signedIn(req, res);
    if (!user) return;
    const room = String(req.params.room);
    if (!(ROOMS as readonly string[]).includes(room)) return fail(req, res, 404, `no room "${room}"`);
    const text = body(req, 'text');
    if (!text || text.length > 500) return fail(req, res, 400, 'a message is 1–500 characters');
    const m = await to(`room:${room}`).send('chat.message', { from: user, text, at: Date.now(), node });
    done(req, res, { offset: m.offset });
  });

  app.post('/logout', async (req, res) => {
    await req.session.destroy();
    done(req, res, { ok: true });
  });

  app.post('/logout-everywhere', async (req, res) => {
    const user = await signedIn(req, res);
    if (!user) return;
    // Every session of this user, this one included: each one's sockets close on every gateway (4001).
    const ended = await sessions.destroyAllForUser(user);
    await req.session.destroy();
    done(req, res, { ended });
  });

  app.use(sessionErrors()); // store down → 503 JSON
  const errors: ErrorRequestHandler = (err, req, res, next) => {
    if (res.headersSent) return next(err);
    const status = err instanceof ConflictError ? 409 : 500;
    fail(req, res, status, err instanceof Error ? err.message : String(err));
  };
  app.use(errors);

  return {
    handler: app,
    // Orders still waiting to ship are the demo's own timers; sessions, bus and store close with the node.
    close: async () => {
      for (const t of shipping) clearTimeout(t);
    },
  };
}
