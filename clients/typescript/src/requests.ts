/**
 * Requests over the socket: one promise per request id, settled by the `ok`/`error` reply with
 * that id, by a timeout, or by the link going away. Requests made while offline wait for the
 * next connection (inside the same timeout), in order.
 */

import type { Connection } from './connection.js';
import { SwitchyardError } from './errors.js';
import { encodeChecked } from './frame-check.js';
import type { JsonObject, ServerFrame } from './protocol.js';

export interface RequestOptions {
  /** Milliseconds until the promise rejects with `timeout` (waiting offline included). Default 15000. */
  timeoutMs?: number;
  /**
   * A request that was sent when the link broke cannot know whether the server acted on it, so
   * it rejects with `disconnected`. Set this for requests that are safe to repeat.
   */
  retryOnReconnect?: boolean;
}

interface Pending {
  id: string;
  frame: JsonObject;
  text: string | null;
  resolve: (v: JsonObject) => void;
  reject: (e: SwitchyardError) => void;
  timer: ReturnType<typeof setTimeout> | null;
  retry: boolean;
  sent: boolean;
}

export class Requests {
  private seq = 0;
  private readonly pending = new Map<string, Pending>();
  /** Ids waiting for a connection, in order. */
  private waiting: string[] = [];
  private readonly byText = new Map<string, string>();
  defaultTimeoutMs = 15_000;

  constructor(private readonly conn: Connection) {
    conn.on('frame', (f) => this.onFrame(f));
    conn.on('welcome', () => this.flush());
    conn.on('unsent', (texts) => this.onUnsent(texts));
    conn.on('state', ({ state }) => {
      if (state === 'disconnected' || state === 'closed') this.onLinkDown(state === 'closed');
    });
  }

  /** Requests not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Sends `{type, id, ...fields}` and resolves with the reply's `result` (`{}` when it has none).
   * Rejects with a {@link SwitchyardError}: the server's code, or `timeout`, `disconnected`,
   * `closed`, `frame_too_large`, `too_deep`.
   */
  request<T extends object = JsonObject>(type: string, fields: object = {}, opts: RequestOptions = {}): Promise<T> {
    if (this.conn.state === 'closed') return Promise.reject(new SwitchyardError('closed', 'the client is closed'));
    const id = `r${++this.seq}`;
    const frame = { ...(fields as JsonObject), type, id } as JsonObject;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = {
        id,
        frame,
        text: null,
        resolve: resolve as (v: JsonObject) => void,
        reject,
        timer: null,
        retry: opts.retryOnReconnect === true,
        sent: false,
      };
      const timeoutMs = opts.timeoutMs ?? this.defaultTimeoutMs;
      p.timer = setTimeout(() => this.settle(id, new SwitchyardError('timeout', `${type} got no reply within ${timeoutMs} ms`)), timeoutMs);
      this.pending.set(id, p);
      if (this.conn.state === 'connected') this.transmit(p);
      else this.waiting.push(id);
    });
  }

  private transmit(p: Pending): void {
    try {
      p.text ??= encodeChecked(p.frame, this.conn.frameLimits());
    } catch (e) {
      this.settle(p.id, e as SwitchyardError);
      return;
    }
    p.sent = true;
    this.byText.set(p.text, p.id);
    this.conn.send(p.text);
  }

  private flush(): void {
    const ids = this.waiting;
    this.waiting = [];
    for (const id of ids) {
      const p = this.pending.get(id);
      if (p) this.transmit(p);
    }
  }

  /** Frames the throttle never wrote: the server never saw them, so they wait again. */
  private onUnsent(texts: string[]): void {
    const back: string[] = [];
    for (const t of texts) {
      const id = this.byText.get(t);
      const p = id === undefined ? undefined : this.pending.get(id);
      if (!p) continue;
      p.sent = false;
      back.push(p.id);
    }
    this.waiting = [...back, ...this.waiting];
  }

  private onLinkDown(closed: boolean): void {
    this.byText.clear();
    for (const p of [...this.pending.values()]) {
      if (closed) this.settle(p.id, new SwitchyardError('closed', 'the client is closed'));
      else if (p.sent && !p.retry) this.settle(p.id, new SwitchyardError('disconnected', `the connection dropped before ${String(p.frame.type)} was answered`));
      else if (p.sent) {
        p.sent = false;
        this.waiting.push(p.id);
      }
    }
  }

  private onFrame(f: ServerFrame): void {
    if (f.type !== 'ok' && f.type !== 'error') return;
    if (typeof f.id !== 'string') return;
    const p = this.pending.get(f.id);
    if (!p) return;
    if (f.type === 'ok') {
      const result = f.result && typeof f.result === 'object' && !Array.isArray(f.result) ? f.result : {};
      this.settle(f.id, null, result);
    } else {
      const code = typeof f.code === 'string' ? f.code : 'bad_reply';
      const message = typeof f.message === 'string' ? f.message : code;
      this.settle(f.id, new SwitchyardError(code, message));
    }
  }

  private settle(id: string, err: SwitchyardError | null, result?: JsonObject): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (p.timer !== null) clearTimeout(p.timer);
    if (p.text !== null) this.byText.delete(p.text);
    this.waiting = this.waiting.filter((w) => w !== id);
    if (err) p.reject(err);
    else p.resolve(result ?? {});
  }
}
