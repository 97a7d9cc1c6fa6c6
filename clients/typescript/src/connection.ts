/**
 * The socket: opening it, authenticating (a bearer header where the WebSocket implementation
 * can send one, else the first `auth` frame), the state machine, heartbeats, pacing under the
 * server's frame rate, and what to do when it closes (close-policy.ts decides, this executes).
 *
 * It knows nothing of requests or channels: it hands every parsed server frame to `frame`
 * listeners and tells them when the link comes and goes.
 */

import { Backoff, type BackoffOptions } from './backoff.js';
import { closeAction, upgradeRefusalAction, type CloseAction } from './close-policy.js';
import { Emitter } from './emitter.js';
import { SwitchyardError } from './errors.js';
import type { FrameLimits } from './frame-check.js';
import type { Limits, ServerFrame, WelcomeFrame } from './protocol.js';
import { ThrottledQueue, TokenBucket } from './throttle.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'closed';

/** Why `getToken` is asked: a first connect, an in-band refresh, or after the server refused. */
export type TokenReason = 'connect' | 'refresh' | 'rejected' | 'expired';

export interface TokenRequest {
  reason: TokenReason;
}

/** Returns an access token (JWT or API key). For `rejected`/`expired` it must be a new one. */
export type GetToken = (req: TokenRequest) => Promise<string> | string;

/** The part of the WHATWG WebSocket the SDK uses (browsers' global, or the `ws` package). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/**
 * A WebSocket constructor. Header auth passes `{ headers }` as the second argument, which the
 * `ws` package accepts; browsers' WebSocket cannot send headers (use `authMode: 'frame'`).
 */
export type WebSocketConstructor = new (
  url: string,
  protocolsOrOptions?: string | string[] | { headers?: Record<string, string> },
) => WebSocketLike;

export interface ConnectionOptions {
  /** `ws://host/v1/ws` or `wss://...`. */
  wsUrl: string;
  getToken: GetToken;
  WebSocket: WebSocketConstructor;
  authMode: 'header' | 'frame';
  /** Labels the connection in presence (`?device=`). */
  device?: string;
  backoff?: BackoffOptions;
  /** How long to wait for `welcome` after opening. Default 15000. */
  connectTimeoutMs?: number;
  /** After this much silence (ms) a `ping` request is sent. Default: the server's heartbeat + 5 s. */
  silenceMs?: number;
  /** How long a ping may go unanswered before the link counts as dead. Default 10000. */
  pingTimeoutMs?: number;
  /** A connection up this long resets the backoff (so a flapping server is backed off). Default 5000. */
  stableMs?: number;
  /** Consecutive authentication failures before giving up. Default 3. */
  maxAuthFailures?: number;
  /** The server's `server.max_json_depth` when it is not the default 32 (welcome does not say). */
  maxJsonDepth?: number;
}

export interface StateChange {
  state: ConnectionState;
  /** Close code of the socket that ended, when there was one. */
  code?: number;
  reason?: string;
  /** Milliseconds until the next attempt (state `disconnected`). */
  retryInMs?: number;
}

export interface ConnectionEvents {
  state: StateChange;
  welcome: WelcomeFrame;
  /** Every server frame but `welcome` and the replies to the connection's own pings. */
  frame: ServerFrame;
  /** Frames that were queued (throttled) but never written when the socket closed. */
  unsent: string[];
  /** The connection stopped for good, with why. */
  error: SwitchyardError;
}

const DEFAULT_LIMITS: Limits = { max_frame_bytes: 65536, frames_per_sec: 50, max_subscriptions: 100, heartbeat_secs: 25 };
const OPEN = 1;

export class Connection extends Emitter<ConnectionEvents> {
  private _state: ConnectionState = 'disconnected';
  private socket: WebSocketLike | null = null;
  private readonly backoff: Backoff;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private welcomeTimer: ReturnType<typeof setTimeout> | null = null;
  private heartbeatTimer: ReturnType<typeof setInterval> | null = null;
  private lastHeard = 0;
  private pingSentAt = 0;
  private pingSeq = 0;
  private connectedAt = 0;
  private authFailures = 0;
  private nextTokenReason: TokenReason = 'connect';
  /** Bumped for every socket, so events of an old socket are ignored. */
  private generation = 0;
  private upgradeStatus: number | null = null;
  private started = false;
  private readonly outgoing: ThrottledQueue<string>;
  /** The server's limits from the last `welcome` (defaults before one). */
  limits: Limits = { ...DEFAULT_LIMITS };
  welcome: WelcomeFrame | null = null;

  constructor(private readonly opts: ConnectionOptions) {
    super();
    this.backoff = new Backoff(opts.backoff);
    this.outgoing = new ThrottledQueue(new TokenBucket(DEFAULT_LIMITS.frames_per_sec), (text) => this.write(text));
  }

  get state(): ConnectionState {
    return this._state;
  }

  /** Limits for frame checks: the server's, or its defaults before the first welcome. */
  frameLimits(): FrameLimits {
    return { maxFrameBytes: this.limits.max_frame_bytes, maxJsonDepth: this.limits.max_json_depth ?? this.opts.maxJsonDepth ?? 32 };
  }

  /**
   * Starts connecting (idempotent). The first attempt begins in a microtask, so listeners
   * attached right after construction still see `connecting`.
   */
  start(): void {
    if (this._state === 'closed') throw new SwitchyardError('closed', 'this connection was closed; create a new client');
    if (this.started) return;
    this.started = true;
    queueMicrotask(() => {
      if (this._state !== 'closed') void this.open();
    });
  }

  /** Closes for good: no reconnect. */
  close(reason = 'closed by the client'): void {
    if (this._state === 'closed') return;
    this.clearTimers();
    const s = this.socket;
    this.socket = null;
    this.generation++;
    this.drainUnsent();
    if (s) {
      detach(s);
      try {
        s.close(1000, 'bye');
      } catch {
        /* already closing */
      }
    }
    this.setState({ state: 'closed', code: 1000, reason });
  }

  /** Skips the backoff wait (e.g. the browser came back online). */
  reconnectNow(): void {
    if (this._state !== 'disconnected' || !this.started) return;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    void this.open();
  }

  /**
   * Drops the current socket as if it had died (the policy for `code` then applies; 1006, the
   * code of a vanished link, reconnects). Used when pings go unanswered, and by tests.
   */
  dropSocket(code = 1006, reason = 'dropped by the client'): void {
    const s = this.socket;
    if (!s) return;
    this.onSocketClosed(this.generation, code, reason);
    try {
      s.close(1000, reason);
    } catch {
      /* ignore */
    }
  }

  /** Queues a serialized frame (paced by the frame-rate bucket). Only while connected. */
  send(text: string): void {
    if (this._state !== 'connected') throw new SwitchyardError('disconnected', 'not connected');
    this.outgoing.push(text);
  }

  /** Frames waiting for the rate limiter. */
  get queued(): number {
    return this.outgoing.length;
  }

  private write(text: string): void {
    const s = this.socket;
    if (!s || s.readyState !== OPEN) {
      this.emit('unsent', [text]);
      return;
    }
    try {
      s.send(text);
    } catch {
      this.emit('unsent', [text]);
    }
  }

  private setState(change: StateChange): void {
    const same = change.state === this._state;
    this._state = change.state;
    if (!same || change.state === 'disconnected') this.emit('state', change);
  }

  private clearTimers(): void {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.welcomeTimer !== null) clearTimeout(this.welcomeTimer);
    if (this.heartbeatTimer !== null) clearInterval(this.heartbeatTimer);
    this.retryTimer = this.welcomeTimer = this.heartbeatTimer = null;
  }

  private drainUnsent(): void {
    const left = this.outgoing.clear();
    if (left.length > 0) this.emit('unsent', left);
  }

  private async open(): Promise<void> {
    const gen = ++this.generation;
    this.setState({ state: 'connecting' });
    let token: string;
    try {
      // A getToken that never answers (a hung refresh) must not leave the client connecting forever.
      const limit = this.opts.connectTimeoutMs ?? 15_000;
      let timer: ReturnType<typeof setTimeout> | undefined;
      token = await Promise.race([
        Promise.resolve(this.opts.getToken({ reason: this.nextTokenReason })),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new SwitchyardError('timeout', `getToken gave no token within ${limit} ms`)), limit);
        }),
      ]).finally(() => clearTimeout(timer));
      if (typeof token !== 'string' || token.length === 0) throw new SwitchyardError('auth_failed', 'getToken returned no token');
    } catch (e) {
      if (gen !== this.generation || this._state === 'closed') return;
      const err = e instanceof SwitchyardError ? e : new SwitchyardError('auth_failed', `getToken failed: ${String(e)}`, { cause: e });
      // A refused credential (401) cannot get better by retrying; a network failure can.
      if (err.status === 401 || err.status === 403 || err.code === 'auth_failed') {
        this.stop(err);
      } else {
        this.scheduleRetry({ kind: 'reconnect', floorMs: 0, reason: err.message }, undefined);
      }
      return;
    }
    if (gen !== this.generation || this._state === 'closed') return;
    this.upgradeStatus = null;
    let url = this.opts.wsUrl;
    if (this.opts.device) url += (url.includes('?') ? '&' : '?') + 'device=' + encodeURIComponent(this.opts.device);
    let s: WebSocketLike;
    try {
      s =
        this.opts.authMode === 'header'
          ? new this.opts.WebSocket(url, { headers: { Authorization: `Bearer ${token}` } })
          : new this.opts.WebSocket(url);
    } catch (e) {
      this.scheduleRetry({ kind: 'reconnect', floorMs: 0, reason: `could not open a socket: ${String(e)}` }, undefined);
      return;
    }
    this.socket = s;
    this.watchUpgrade(s, gen);
    s.onopen = () => {
      if (gen !== this.generation) return;
      this.lastHeard = Date.now();
      if (this.opts.authMode === 'frame') {
        const auth: Record<string, string> = { type: 'auth', id: `auth-${gen}`, token };
        if (this.opts.device) auth.device = this.opts.device.slice(0, 64);
        try {
          s.send(JSON.stringify(auth));
        } catch {
          /* the close event follows */
        }
      }
    };
    s.onmessage = (ev) => {
      if (gen !== this.generation) return;
      this.onText(ev.data);
    };
    s.onerror = () => {
      /* a close event always follows an error */
    };
    s.onclose = (ev) => this.onSocketClosed(gen, ev.code, ev.reason);
    this.welcomeTimer = setTimeout(() => {
      if (gen === this.generation && this._state === 'connecting') this.dropSocket(1006, 'no welcome in time');
    }, this.opts.connectTimeoutMs ?? 15_000);
  }

  /**
   * `ws` (Node) reports a refused upgrade (401, 403, 503) through `unexpected-response`; the
   * WHATWG interface only says 1006. Reading the status tells a bad token from a down server.
   */
  private watchUpgrade(s: WebSocketLike, gen: number): void {
    const node = s as unknown as {
      on?: (ev: string, fn: (...args: unknown[]) => void) => void;
      terminate?: () => void;
    };
    if (typeof node.on !== 'function') return;
    node.on('unexpected-response', (_req: unknown, res: unknown) => {
      if (gen === this.generation) {
        const status = (res as { statusCode?: unknown }).statusCode;
        this.upgradeStatus = typeof status === 'number' ? status : 0;
      }
      (res as { resume?: () => void }).resume?.();
      node.terminate?.();
    });
    node.on('ping', () => {
      if (gen === this.generation) this.lastHeard = Date.now();
    });
  }

  private onText(data: unknown): void {
    this.lastHeard = Date.now();
    this.pingSentAt = 0;
    if (typeof data !== 'string') return; // the server sends text only
    let frame: unknown;
    try {
      frame = JSON.parse(data);
    } catch {
      return; // hostile or broken input never throws out of the event loop
    }
    if (frame === null || typeof frame !== 'object' || typeof (frame as { type?: unknown }).type !== 'string') return;
    const f = frame as ServerFrame;
    if (f.type === 'welcome') return this.onWelcome(f);
    if (f.type === 'ok' && typeof f.id === 'string' && f.id.startsWith('hb-')) return;
    if (f.type === 'ok' && typeof f.id === 'string' && f.id.startsWith('auth-')) return;
    this.emit('frame', f);
  }

  private onWelcome(w: WelcomeFrame): void {
    if (typeof w.user_id !== 'string' || typeof w.conn_id !== 'string') return;
    if (this.welcomeTimer !== null) clearTimeout(this.welcomeTimer);
    this.welcomeTimer = null;
    const l = w.limits && typeof w.limits === 'object' ? w.limits : DEFAULT_LIMITS;
    this.limits = {
      max_frame_bytes: positive(l.max_frame_bytes, DEFAULT_LIMITS.max_frame_bytes),
      frames_per_sec: positive(l.frames_per_sec, DEFAULT_LIMITS.frames_per_sec),
      max_subscriptions: positive(l.max_subscriptions, DEFAULT_LIMITS.max_subscriptions),
      heartbeat_secs: positive(l.heartbeat_secs, DEFAULT_LIMITS.heartbeat_secs),
      ...(typeof l.max_json_depth === 'number' && l.max_json_depth > 0 ? { max_json_depth: l.max_json_depth } : {}),
    };
    // Sustained at the server's rate, with no burst beyond it (the server allows twice that).
    this.outgoing.bucket.setRate(this.limits.frames_per_sec, this.limits.frames_per_sec);
    this.welcome = w;
    this.connectedAt = Date.now();
    this.authFailures = 0;
    this.nextTokenReason = 'connect';
    this.startHeartbeat();
    this.setState({ state: 'connected' });
    this.emit('welcome', w);
  }

  private startHeartbeat(): void {
    const silence = this.opts.silenceMs ?? this.limits.heartbeat_secs * 1000 + 5000;
    const pingTimeout = this.opts.pingTimeoutMs ?? 10_000;
    const gen = this.generation;
    this.heartbeatTimer = setInterval(() => {
      if (gen !== this.generation || this._state !== 'connected') return;
      const now = Date.now();
      if (this.pingSentAt !== 0 && now - this.pingSentAt > pingTimeout) {
        this.dropSocket(1006, 'no answer to ping');
        return;
      }
      if (this.pingSentAt === 0 && now - this.lastHeard > silence) {
        this.pingSentAt = now;
        // Straight to the socket: a ping must not wait behind a throttled backlog.
        this.write(JSON.stringify({ type: 'ping', id: `hb-${++this.pingSeq}` }));
      }
    }, Math.max(250, Math.min(silence, pingTimeout) / 4));
  }

  private onSocketClosed(gen: number, code: number, reason: string): void {
    if (gen !== this.generation) return;
    this.generation++;
    const s = this.socket;
    this.socket = null;
    if (s) detach(s);
    this.clearTimers();
    this.drainUnsent();
    if (this._state === 'closed') return;
    const wasConnected = this._state === 'connected';
    if (wasConnected && Date.now() - this.connectedAt >= (this.opts.stableMs ?? 5000)) this.backoff.reset();
    const action = this.upgradeStatus !== null && this.upgradeStatus > 0 ? upgradeRefusalAction(this.upgradeStatus) : closeAction(code, reason);
    this.scheduleRetry(action, code);
  }

  private stop(err: SwitchyardError, code?: number): void {
    this.clearTimers();
    this.emit('error', err);
    this.setState({ state: 'closed', ...(code === undefined ? {} : { code }), reason: err.message });
  }

  private scheduleRetry(action: CloseAction, code: number | undefined): void {
    if (action.kind === 'stop') {
      this.stop(new SwitchyardError(code === 4030 ? 'too_many_connections' : 'closed', action.reason), code);
      return;
    }
    let delay: number;
    if (action.kind === 'reauth') {
      this.authFailures++;
      if (this.authFailures > (this.opts.maxAuthFailures ?? 3)) {
        this.stop(new SwitchyardError('auth_failed', `${action.reason}; gave up after ${this.authFailures - 1} new tokens`), code);
        return;
      }
      this.nextTokenReason = action.immediate ? 'expired' : 'rejected';
      delay = action.immediate && this.authFailures === 1 ? 0 : this.backoff.next();
    } else {
      delay = this.backoff.next(action.floorMs);
    }
    this.setState({ state: 'disconnected', ...(code === undefined ? {} : { code }), reason: action.reason, retryInMs: delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.open();
    }, delay);
  }
}

function positive(v: unknown, fallback: number): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : fallback;
}

function detach(s: WebSocketLike): void {
  s.onopen = s.onmessage = s.onerror = s.onclose = null;
  const node = s as unknown as { removeAllListeners?: (ev?: string) => void };
  node.removeAllListeners?.('unexpected-response');
  node.removeAllListeners?.('ping');
  // ws emits 'error' on a socket with no listener as an exception: keep one.
  (s as unknown as { on?: (ev: string, fn: () => void) => void }).on?.('error', () => {});
}
