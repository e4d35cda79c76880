import { ServerResponse } from 'node:http';
import { sessionFailure, writeFailure } from './failure.js';
import { FrameworkPrototype } from './framework-prototype.js';

type Cookies = string | string[] | undefined;
type Method = (this: ServerResponse, ...args: unknown[]) => unknown;
const WRITE_HEAD = 0;
const WRITE = 1;
const END = 2;
type Op = typeof WRITE_HEAD | typeof WRITE | typeof END;

/** The three methods a response is held by, as they were before. */
interface Methods {
  writeHead: Method;
  write: Method;
  end: Method;
}

/**
 * What a response is held for, given by each adapter once (a module-level object or one per
 * middleware), so a request's hold costs no closures: `arg` is the request's own state.
 */
export interface HeldCommit<A> {
  /**
   * Starts the commit as the handler begins its response, given the status it left. Undefined when
   * there is nothing to wait for (most reads): the response then goes straight through, with no
   * queue and no extra turn.
   */
  start(arg: A, status: number): Promise<unknown> | undefined;
  /** The Set-Cookie values the response needs once the commit is over, given what start's promise gave. */
  cookies(arg: A, committed: unknown): Cookies;
  /** Told when the commit failed and the response became an error. */
  failed?(err: unknown): void;
  /** Called once the hold is over (the commit done or failed), before the response goes on. */
  released?(arg: A): void;
}

/** What an adapter may ask of a response's hold. */
export interface ResponseHold {
  /** The handler began its response (wrote the head, a chunk, or ended it); it may still be held. */
  readonly started: boolean;
}

/**
 * One response's hold: the methods to pass calls on to once released, and what the handler did
 * while the commit ran. A class, so every request's hold has the same shape.
 */
class Hold implements ResponseHold {
  started = false;
  /** The commit is over: the held methods pass calls straight on (a reference kept to one of them included). */
  released = false;
  /** Method, arguments, method, arguments, …: made only when the commit is asynchronous. */
  queue: unknown[] | null = null;
  constructor(
    readonly commit: HeldCommit<unknown>,
    /** What the commit's functions are called with. */
    readonly arg: unknown,
    readonly originals: Methods,
    /** The methods set on the response itself to hold it, taken off again on release; null when held by its prototype. */
    readonly own: Methods | null,
  ) {}

  original(op: Op): Method {
    return op === WRITE_HEAD ? this.originals.writeHead : op === WRITE ? this.originals.write : this.originals.end;
  }
}

/**
 * Holds a node:http response's headers until the commit (`commit.start`, the session's) has
 * completed, then replays what the handler did. This is what makes a write visible to the next
 * request on any node: the client cannot have the response before the store has the data.
 *
 * If the commit fails and nothing was sent yet, the handler's response is
 * replaced by a 503 (store unavailable) or 500 with a JSON body saying why.
 *
 * The commit's own promise is what the hold waits on: the cookies are asked for once it settled,
 * rather than carried by a further promise, which would cost every write another turn and the
 * objects that live through its round trip.
 *
 * Two ways to hold, the same behaviour:
 * - A response built on a prototype of a framework's own (Express's response, shared by all its
 *   apps and sub-apps) is held by methods put on that prototype once; a request only records its
 *   hold, kept off the response: setting methods on every response cost kilobytes of allocation
 *   per request, a large share of a session read.
 * - Otherwise (a plain node:http response, whose prototype is every server's; or one whose methods
 *   something mounted earlier already wrapped, a compressor say) it is held by methods set on the
 *   response itself, around whatever is there.
 */
export function commitBeforeHeaders<A>(res: ServerResponse, commit: HeldCommit<A>, arg: A): ResponseHold {
  const spec = commit as HeldCommit<unknown>;
  const shared = responses.of(res);
  if (shared) {
    if (!sharedOriginals.has(shared)) holdPrototype(shared);
    // A second hold on one response (two session middlewares) wraps the first, as below.
    if (reachesShared(res) && !sharedHolds.has(res)) {
      const hold = new Hold(spec, arg, sharedOriginals.get(shared) as Methods, null);
      sharedHolds.set(res, hold);
      return hold;
    }
  }
  const hold: Hold = new Hold(spec, arg, methodsOf(res), {
    writeHead: (...args): unknown => intercept(res, hold, WRITE_HEAD, args),
    write: (...args): unknown => intercept(res, hold, WRITE, args),
    end: (...args): unknown => intercept(res, hold, END, args),
  });
  Object.assign(res, hold.own);
  return hold;
}

function methodsOf(o: object): Methods {
  const m = o as Methods;
  return { writeHead: m.writeHead, write: m.write, end: m.end };
}

// ---- held by a shared prototype

/**
 * Kept off the response: a property added to Express's responses (a symbol) made each request
 * allocate ~1.8 KB more (bench/session-alloc.ts), more than the WeakMap entry costs the collector.
 * An entry is deleted as its hold is released (see release()).
 */
const sharedHolds = new WeakMap<ServerResponse, Hold>();
/** Prototypes whose methods hold, with the methods they had before. */
const sharedOriginals = new WeakMap<object, Methods>();

/** Responses' framework prototype: the one their methods are held by. */
const responses = new FrameworkPrototype(ServerResponse.prototype);
/** The last response prototype reachesShared() looked at, and whether its chain answers the held methods. */
let lastReachesFor: object | null = null;
let lastReaches = false;

/**
 * Whether the response's methods are the shared held ones (nothing in front of them): none of its
 * own, and its prototype's are ours. Asked of the response with hasOwn, not by reading the methods:
 * Express gives every response a map of its own, so each read of a method off one misses V8's caches
 * and walks the prototype chain in the runtime, ~2,500 instructions apiece; an own-property check is
 * answered from the response's descriptors without leaving the builtin.
 */
function reachesShared(res: ServerResponse): boolean {
  if (Object.hasOwn(res, 'end') || Object.hasOwn(res, 'write') || Object.hasOwn(res, 'writeHead')) return false;
  const own = Object.getPrototypeOf(res) as Methods;
  if (own !== lastReachesFor) {
    // Between the response and the held prototype (an app's own), nothing may override them either.
    lastReaches = own.end === sharedEnd && own.write === sharedWrite && own.writeHead === sharedWriteHead;
    lastReachesFor = own;
  }
  return lastReaches;
}

function holdPrototype(proto: object): void {
  sharedOriginals.set(proto, methodsOf(proto));
  Object.assign(proto, { writeHead: sharedWriteHead, write: sharedWrite, end: sharedEnd });
}

/** The methods a response of a held prototype reaches once its hold is over, or when it has none. */
function passedOn(res: ServerResponse, hold: Hold | undefined): Methods {
  // A response of a held prototype that went by no session (a route mounted before it) passes straight on.
  return hold ? hold.originals : (sharedOriginals.get(responses.of(res) as object) as Methods);
}

// The held methods pass `arguments` straight on when nothing is held (the optimising compiler
// forwards it without making an array); only a call that is held copies its arguments, to replay them.
function sharedWriteHead(this: ServerResponse): unknown {
  const hold = sharedHolds.get(this);
  // biome-ignore lint/complexity/noArguments: see above
  if (!hold || hold.released) return passedOn(this, hold).writeHead.apply(this, arguments as unknown as unknown[]);
  // biome-ignore lint/complexity/noArguments: see above
  return intercept(this, hold, WRITE_HEAD, Array.prototype.slice.call(arguments));
}

function sharedWrite(this: ServerResponse): unknown {
  const hold = sharedHolds.get(this);
  // biome-ignore lint/complexity/noArguments: see above
  if (!hold || hold.released) return passedOn(this, hold).write.apply(this, arguments as unknown as unknown[]);
  // biome-ignore lint/complexity/noArguments: see above
  return intercept(this, hold, WRITE, Array.prototype.slice.call(arguments));
}

function sharedEnd(this: ServerResponse): unknown {
  const hold = sharedHolds.get(this);
  // biome-ignore lint/complexity/noArguments: see above
  if (!hold || hold.released) return passedOn(this, hold).end.apply(this, arguments as unknown as unknown[]);
  // biome-ignore lint/complexity/noArguments: see above
  return intercept(this, hold, END, Array.prototype.slice.call(arguments));
}

// ---- the hold itself

function intercept(res: ServerResponse, hold: Hold, op: Op, args: unknown[]): unknown {
  if (hold.released) return hold.original(op).apply(res, args);
  if (!hold.started) {
    hold.started = true;
    let done: Promise<unknown> | undefined;
    try {
      done = hold.commit.start(hold.arg, op === WRITE_HEAD && typeof args[0] === 'number' ? args[0] : res.statusCode);
    } catch (err) {
      fail(res, hold, err);
      return op === WRITE ? true : res;
    }
    if (done === undefined) {
      let cookies: Cookies;
      try {
        cookies = committed(res, hold, undefined);
      } catch (err) {
        failed(res, hold, err);
        return op === WRITE ? true : res;
      }
      return hold.original(op).apply(res, op === WRITE_HEAD && cookies?.length ? keepSessionHeaders(res, args) : args);
    }
    hold.queue = [];
    done.then(
      (value) => replay(res, hold, value),
      (err: unknown) => fail(res, hold, err),
    );
  }
  (hold.queue as unknown[]).push(op, args);
  return op === WRITE ? true : res;
}

/**
 * Ends the hold. Methods set on the response are put back where they are still ours: one another
 * middleware installed over them afterwards (a compressor, say) stays, and reaches the originals
 * through the held method, which passes everything on once released.
 */
function release(res: ServerResponse, hold: Hold): void {
  hold.released = true;
  hold.commit.released?.(hold.arg);
  if (!hold.own) {
    // A released hold passes everything on, as no hold does. Deleted rather than left to the
    // response's death: the hold reaches the response back (its scopes' start context holds the
    // request), and an entry whose value reaches its key outlives the young-generation collections,
    // with the whole request, until the next full one (~4 KB a request copied and promoted on
    // Express, by --trace-gc-nvp).
    sharedHolds.delete(res);
    return;
  }
  const r = res as unknown as Methods;
  if (r.writeHead === hold.own.writeHead) r.writeHead = hold.originals.writeHead;
  if (r.write === hold.own.write) r.write = hold.originals.write;
  if (r.end === hold.own.end) r.end = hold.originals.end;
}

function setCookies(res: ServerResponse, cookies: Cookies): void {
  if (cookies?.length && !res.headersSent) {
    res.appendHeader('Set-Cookie', cookies);
    // A response that sets or clears the session cookie must never be cached by a proxy.
    res.setHeader('Cache-Control', 'no-store');
  }
}

/**
 * The commit is over: the hold ends and the response gets the session's cookies, asked for now
 * (what the commit did decides them). Returns them, for a caller about to pass a writeHead on.
 */
function committed(res: ServerResponse, hold: Hold, value: unknown): Cookies {
  let cookies: Cookies;
  try {
    cookies = hold.commit.cookies(hold.arg, value);
  } finally {
    release(res, hold);
  }
  setCookies(res, cookies);
  return cookies;
}

function replay(res: ServerResponse, hold: Hold, value: unknown): void {
  let cookies: Cookies;
  try {
    cookies = committed(res, hold, value);
  } catch (err) {
    hold.queue = null;
    failed(res, hold, err);
    return;
  }
  const queue = hold.queue as unknown[];
  hold.queue = null;
  // A replayed call that calls another held method (end writing the head) goes straight through, in order.
  for (let i = 0; i < queue.length; i += 2) {
    const op = queue[i] as Op;
    const args = queue[i + 1] as unknown[];
    hold.original(op).apply(res, op === WRITE_HEAD && cookies?.length ? keepSessionHeaders(res, args) : args);
  }
}

/**
 * writeHead(status, [message], headers) gives its own headers precedence over those set before, so a
 * handler's Set-Cookie there would replace the session's cookie (the client loses its session) and
 * its Cache-Control the session's `no-store` (a shared cache may keep the cookie). When the session
 * sets or clears its cookie, the handler's cookies are added to it instead and its Cache-Control is
 * dropped; everything else is passed on as given.
 */
function keepSessionHeaders(res: ServerResponse, args: unknown[]): unknown[] {
  const at = typeof args[1] === 'string' ? 2 : 1;
  const given = args[at];
  if (!given || typeof given !== 'object') return args;
  let kept: unknown;
  if (Array.isArray(given)) {
    if (given.length % 2 !== 0) return args; // node refuses it, as it would without the session
    const pairs: unknown[] = [];
    for (let i = 0; i < given.length; i += 2) {
      const name = String(given[i]).toLowerCase();
      if (name === 'set-cookie') res.appendHeader('Set-Cookie', given[i + 1] as string | string[]);
      else if (name !== 'cache-control') pairs.push(given[i], given[i + 1]);
    }
    if (pairs.length === given.length) return args;
    kept = pairs;
  } else {
    const headers = given as Record<string, unknown>;
    const rest: Record<string, unknown> = {};
    let changed = false;
    for (const name of Object.keys(headers)) {
      const lower = name.toLowerCase();
      if (lower === 'set-cookie') res.appendHeader('Set-Cookie', headers[name] as string | string[]);
      else if (lower !== 'cache-control') {
        rest[name] = headers[name];
        continue;
      }
      changed = true;
    }
    if (!changed) return args;
    kept = rest;
  }
  const copy = args.slice();
  copy[at] = kept;
  return copy;
}

function fail(res: ServerResponse, hold: Hold, err: unknown): void {
  release(res, hold);
  hold.queue = null;
  failed(res, hold, err);
}

/** The commit failed (its hold already released): the response becomes the error, or is cut if it began. */
function failed(res: ServerResponse, hold: Hold, err: unknown): void {
  hold.commit.failed?.(err);
  if (res.headersSent) {
    res.destroy(err as Error);
    return;
  }
  writeFailure(res, sessionFailure(err), hold.originals.end);
}
