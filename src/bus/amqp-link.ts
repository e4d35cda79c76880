import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import { fullJitter, sleep } from '../core/timing.js';

export type Amqplib = typeof import('amqplib');

// AMQP 0-9-1 tx class method ids; amqplib speaks them but has no wrapper (see rpc() below).
const TX_SELECT = 5898250;
const TX_SELECT_OK = 5898251;
const TX_COMMIT = 5898260;
const TX_COMMIT_OK = 5898261;

interface RpcChannel {
  rpc(method: number, fields: object, expect: number): Promise<unknown>;
}

const MAX_IDLE_TX = 16;
const RESOURCE_LOCKED = 405;

/**
 * One RabbitMQ connection that comes back by itself: after a loss it reconnects with
 * backoff and calls `onUp` again (re-declare, re-bind, catch up). Channels are cached
 * per connection; an operation that may fail at channel level (passive declare, exclusive
 * lock) runs on a throwaway channel so a 404/405 never takes a shared one down.
 */
export class AmqpLink {
  lastError: unknown;
  private conn: ChannelModel | undefined;
  private connecting: Promise<ChannelModel> | undefined;
  private closed = false;
  private cached = new Map<string, Promise<Channel>>();
  private idleTx: Channel[] = [];
  private retry: NodeJS.Timeout | undefined;
  /** Per lock queue, the turn of the newest caller on this connection (withLock). */
  private held = new Map<string, Promise<void>>();

  constructor(
    private readonly lib: Amqplib,
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly onUp: (conn: ChannelModel) => Promise<void>,
  ) {}

  /** The live connection; connects first when there is none. */
  ready(): Promise<ChannelModel> {
    if (this.closed) return Promise.reject(new Error('closed'));
    if (this.conn) return Promise.resolve(this.conn);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<ChannelModel> {
    let conn: ChannelModel;
    try {
      // noDelay: without it every tx.commit waits out a 40 ms delayed-ACK round.
      conn = await this.lib.connect(this.url, { noDelay: true, timeout: this.timeoutMs });
    } catch (err) {
      this.lastError = explainRefusal(err, this.url);
      throw this.lastError;
    }
    conn.on('error', (err: unknown) => {
      this.lastError = err;
    });
    let dead = false;
    conn.on('close', () => {
      dead = true;
      if (this.conn !== conn) return; // never came up, or already replaced
      this.conn = undefined;
      this.cached.clear();
      this.idleTx = [];
      if (!this.closed) this.reconnect(100);
    });
    try {
      // Callers keep waiting on `connecting` until the exchange exists again.
      await this.onUp(conn);
      if (dead) throw new Error('the connection closed while it was being set up');
    } catch (err) {
      await conn.close().catch(() => undefined);
      throw err;
    }
    if (this.closed) await conn.close().catch(() => undefined);
    else this.conn = conn;
    return conn;
  }

  /** Subscribers must not wait for the next operation to notice a loss: reconnect in the background. */
  private reconnect(delayMs: number): void {
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      if (this.closed || this.conn) return;
      this.ready().catch(() => this.reconnect(Math.min(delayMs * 2, 5000)));
    }, delayMs);
  }

  /** A channel kept for the life of the connection, made again if the broker closes it. */
  async channel(name: string, setup: (ch: Channel) => Promise<void> = async () => {}): Promise<Channel> {
    const conn = await this.ready();
    let pending = this.cached.get(name);
    if (!pending) {
      pending = conn.createChannel().then(async (ch) => {
        ch.on('error', (err: unknown) => {
          this.lastError = err;
        });
        ch.on('close', () => {
          if (this.cached.get(name) === pending) this.cached.delete(name);
        });
        await setup(ch);
        return ch;
      });
      this.cached.set(name, pending);
      pending.catch(() => this.cached.delete(name));
    }
    return pending;
  }

  /** Runs `fn` on its own channel, closed afterwards whatever happens. */
  async temp<T>(fn: (ch: Channel) => Promise<T>): Promise<T> {
    const ch = await (await this.ready()).createChannel();
    return this.using(ch, fn);
  }

  /** temp() with publisher confirms. */
  async tempConfirm<T>(fn: (ch: ConfirmChannel) => Promise<T>): Promise<T> {
    const ch = await (await this.ready()).createConfirmChannel();
    return this.using(ch, fn);
  }

  private async using<C extends Channel, T>(ch: C, fn: (ch: C) => Promise<T>): Promise<T> {
    ch.on('error', () => undefined); // expected (404 on a passive check, 405 on a held lock): the caller sees the rejection
    try {
      return await fn(ch);
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** A transactional channel of its own for one publish batch; give() it back, or drop it on any doubt. */
  async takeTx(): Promise<Channel> {
    const idle = this.idleTx.pop();
    if (idle) return idle;
    const ch = await (await this.ready()).createChannel();
    ch.on('error', (err: unknown) => {
      this.lastError = err;
    });
    await (ch as unknown as RpcChannel).rpc(TX_SELECT, {}, TX_SELECT_OK);
    return ch;
  }

  giveTx(ch: Channel): void {
    if (this.conn && this.idleTx.length < MAX_IDLE_TX) this.idleTx.push(ch);
    else void ch.close().catch(() => undefined);
  }

  /** Closing a tx channel rolls back what it did not commit and hands back what it holds unacked. */
  dropTx(ch: Channel): void {
    void ch.close().catch(() => undefined);
  }

  async commit(ch: Channel): Promise<void> {
    await (ch as unknown as RpcChannel).rpc(TX_COMMIT, {}, TX_COMMIT_OK);
  }

  /**
   * Runs `fn` while holding a cluster-wide lock: an exclusive queue, which the broker lets
   * one connection declare at a time and deletes when that connection dies. The broker does not
   * keep apart two callers on this one connection, so they also wait their turn here.
   */
  async withLock<T>(queue: string, deadline: number, fn: () => Promise<T>): Promise<T> {
    const before = this.held.get(queue) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const turn = before.then(() => mine);
    this.held.set(queue, turn);
    try {
      await before;
      return await this.withBrokerLock(queue, deadline, fn);
    } finally {
      release();
      if (this.held.get(queue) === turn) this.held.delete(queue);
    }
  }

  private async withBrokerLock<T>(queue: string, deadline: number, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const ch = await (await this.ready()).createChannel();
      ch.on('error', () => undefined);
      try {
        await ch.assertQueue(queue, { exclusive: true, autoDelete: true, durable: false });
      } catch (err) {
        await ch.close().catch(() => undefined);
        if ((err as { code?: number }).code !== RESOURCE_LOCKED || Date.now() > deadline) throw err;
        await sleep(fullJitter(100, attempt, 5));
        continue;
      }
      try {
        return await fn();
      } finally {
        await ch.deleteQueue(queue).catch(() => undefined);
        await ch.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retry);
    const conn = this.conn ?? (await this.connecting?.catch(() => undefined));
    this.conn = undefined;
    if (conn) await conn.close().catch(() => undefined);
  }
}

/**
 * RabbitMQ ends the handshake with a connection.close when the URL's virtual host does not exist or
 * the user may not use it, which amqplib reports as "Expected ConnectionOpenOk; got <ConnectionClose…>".
 * That says which virtual host, and that the broker answered: it is running, the URL needs correcting.
 */
export function explainRefusal(err: unknown, url: string): unknown {
  if (!(err instanceof Error) || !/Expected ConnectionOpenOk; got <ConnectionClose/.test(err.message)) return err;
  const vhost = decodeURIComponent(new URL(url).pathname.slice(1)) || '/';
  return new Error(
    `RabbitMQ refused the virtual host "${vhost}" (the URL's path): it does not exist, or the user has no permissions on it`,
    { cause: err },
  );
}

/** What to do about a bus call that failed, given the connection's last error. */
export function amqpAdvice(lastError: unknown): string {
  const text = lastError instanceof Error ? lastError.message : '';
  if (/refused the virtual host/.test(text))
    return 'Correct the virtual host in the URL, or create it and give the user permissions on it (rabbitmqctl add_vhost, set_permissions)';
  if (/ACCESS[_-]REFUSED/.test(text))
    return 'RabbitMQ answered and refused the user or password in the URL: correct them, or create the user (rabbitmqctl add_user, set_permissions)';
  return 'Check that RabbitMQ is running and reachable';
}
