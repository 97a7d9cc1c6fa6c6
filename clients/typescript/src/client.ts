/**
 * `Switchyard`: the client. It wires the parts (connection, requests, channels, mutation queue,
 * in-band token refresh, MCP status, REST) and hands out synced sessions. Each part has its own
 * module; this one only connects them.
 */

import { InbandRefresh } from './auth.js';
import type { BackoffOptions } from './backoff.js';
import { Channels, canonicalUuid, type Channel, type ServerEvent } from './channels.js';
import { Connection, type ConnectionState, type GetToken, type StateChange, type WebSocketConstructor } from './connection.js';
import { Emitter } from './emitter.js';
import { SwitchyardError } from './errors.js';
import { HybridClock } from './hlc.js';
import { McpStatuses } from './mcp.js';
import { MutationQueue, type AppliedMutation, type RefusedMutation } from './queue.js';
import { Requests, type RequestOptions } from './requests.js';
import { RestClient } from './rest.js';
import { SyncedSession } from './session.js';
import { MemoryQueueStore } from './storage/memory.js';
import type { QueueStore } from './storage/types.js';
import type { ToolSet } from './tools.js';
import type { ElicitationAction, JsonObject, WelcomeFrame } from './protocol.js';

export interface SwitchyardOptions {
  /** The server, `https://host` (REST lives under it; the socket at `/v1/ws`). */
  url: string;
  /** Returns an access token (JWT or API key); asked again for a new one when refused or expiring. */
  getToken: GetToken;
  /** Override the socket URL (default: `url` with ws(s):// and `/v1/ws`). */
  wsUrl?: string;
  /** A WebSocket constructor; default the global one (browsers). In Node pass the `ws` package's. */
  WebSocket?: WebSocketConstructor;
  /**
   * `header`: `Authorization: Bearer` on the upgrade (Node with `ws`); `frame`: an `auth` frame
   * first (browsers cannot set headers). Default: `header` when a WebSocket constructor is
   * passed in, else `frame`.
   */
  authMode?: 'header' | 'frame';
  /** A label for presence ("iPhone", "Firefox"). */
  device?: string;
  /** Where queued mutations are kept (default: memory). Use IndexedDB or a JSON file to survive restarts. */
  store?: QueueStore;
  /** Client id for a first run (default: generated and then kept in the store). */
  clientId?: string;
  /** Tools every turn started from this client offers (see tools.ts). */
  tools?: ToolSet;
  fetch?: typeof fetch;
  /** Connect at once (default true). */
  autoConnect?: boolean;
  requestTimeoutMs?: number;
  backoff?: BackoffOptions;
  /** Connection tuning: see ConnectionOptions. */
  connectTimeoutMs?: number;
  silenceMs?: number;
  pingTimeoutMs?: number;
  maxAuthFailures?: number;
  /** The server's `server.max_json_depth` if not the default 32. */
  maxJsonDepth?: number;
  /** Mutations per push (default 100). */
  maxBatch?: number;
  /** How long a client tool's answer may take to send. Default 60000. */
  toolTimeoutMs?: number;
}

export interface SwitchyardEvents {
  state: StateChange;
  welcome: WelcomeFrame;
  /** The connection stopped for good (see close-policy.ts), or an in-band refresh failed. */
  error: SwitchyardError;
  applied: AppliedMutation;
  refused: RefusedMutation;
  /** Events on the `user:<id>` channel (session.list_changed, project.changed, mcp.status). */
  user: ServerEvent;
}

function socketUrl(url: string): string {
  const u = new URL(url);
  u.protocol = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
  u.pathname = u.pathname.replace(/\/+$/, '') + '/v1/ws';
  return u.toString();
}

let messageSeq = 0;

export class Switchyard extends Emitter<SwitchyardEvents> {
  readonly connection: Connection;
  readonly requests: Requests;
  readonly channels: Channels;
  readonly queue: MutationQueue;
  readonly clock = new HybridClock();
  readonly rest: RestClient;
  readonly mcp = new McpStatuses();
  readonly inband: InbandRefresh;
  private readonly sessions = new Map<string, SyncedSession>();
  private readonly tools: ToolSet;
  private readonly toolTimeoutMs: number;
  private offline: (() => void) | null = null;

  constructor(opts: SwitchyardOptions) {
    super();
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new SwitchyardError('closed', 'no WebSocket here: pass one (in Node: `import WebSocket from "ws"`)');
    this.connection = new Connection({
      wsUrl: opts.wsUrl ?? socketUrl(opts.url),
      getToken: opts.getToken,
      WebSocket: WS,
      authMode: opts.authMode ?? (opts.WebSocket ? 'header' : 'frame'),
      ...(opts.device === undefined ? {} : { device: opts.device }),
      ...(opts.backoff === undefined ? {} : { backoff: opts.backoff }),
      ...(opts.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: opts.connectTimeoutMs }),
      ...(opts.silenceMs === undefined ? {} : { silenceMs: opts.silenceMs }),
      ...(opts.pingTimeoutMs === undefined ? {} : { pingTimeoutMs: opts.pingTimeoutMs }),
      ...(opts.maxAuthFailures === undefined ? {} : { maxAuthFailures: opts.maxAuthFailures }),
      ...(opts.maxJsonDepth === undefined ? {} : { maxJsonDepth: opts.maxJsonDepth }),
    });
    this.requests = new Requests(this.connection);
    if (opts.requestTimeoutMs !== undefined) this.requests.defaultTimeoutMs = opts.requestTimeoutMs;
    this.channels = new Channels(this.connection, this.requests);
    this.queue = new MutationQueue(opts.store ?? new MemoryQueueStore(), this.requests, this.connection, this.clock, {
      ...(opts.clientId === undefined ? {} : { clientId: opts.clientId }),
      ...(opts.maxBatch === undefined ? {} : { maxBatch: opts.maxBatch }),
    });
    this.rest = new RestClient({
      baseUrl: opts.url,
      getToken: () => opts.getToken({ reason: 'connect' }),
      ...(opts.fetch === undefined ? {} : { fetch: opts.fetch }),
    });
    this.inband = new InbandRefresh(this.connection, this.requests, opts.getToken, (e) => this.emit('error', e));
    this.tools = opts.tools ?? {};
    this.toolTimeoutMs = opts.toolTimeoutMs ?? 60_000;

    this.connection.on('state', (s) => this.emit('state', s));
    this.connection.on('error', (e) => this.emit('error', e));
    this.connection.on('welcome', (w) => {
      this.mcp.reconnected();
      this.emit('welcome', w);
    });
    this.queue.on('applied', (a) => this.emit('applied', a));
    this.queue.on('refused', (r) => this.emit('refused', r));
    this.channels.user.on('event', (ev) => {
      this.mcp.onEvent(ev);
      this.emit('user', ev);
    });
    this.watchOnline();
    if (opts.autoConnect !== false) this.connect();
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  /** The user this connection authenticated as (after the first welcome). */
  get userId(): string | null {
    return this.connection.welcome?.user_id ?? null;
  }

  get clientId(): string {
    return this.queue.clientId;
  }

  connect(): void {
    this.connection.start();
  }

  /** Resolves when connected (welcome received); rejects if the client closes first. */
  connected(): Promise<void> {
    if (this.state === 'connected') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const off = this.connection.on('state', ({ state, reason }) => {
        if (state === 'connected') {
          off();
          resolve();
        } else if (state === 'closed') {
          off();
          reject(new SwitchyardError('closed', reason ?? 'closed'));
        }
      });
    });
  }

  /**
   * The synced session `id` (subscribed on first ask, kept across reconnects). Accepts any
   * spelling of the UUID; the channel is canonical.
   */
  session(id: string): SyncedSession {
    const canonical = canonicalUuid(id);
    if (!canonical) throw new SwitchyardError('bad_channel', `not a session id: ${JSON.stringify(id)}`);
    let s = this.sessions.get(canonical);
    if (s && !s.channel.ended) return s;
    const channelName = `session:${canonical}`;
    const existing = this.channels.get(channelName);
    const ch = existing && !existing.ended ? existing : null;
    s = new SyncedSession(canonical, ch ?? this.channels.subscribe(channelName), {
      requests: this.requests,
      queue: this.queue,
      clock: this.clock,
      clientTools: this.tools,
      toolTimeoutMs: this.toolTimeoutMs,
      newMessageId: () => `${this.queue.clientId || 'js'}-m${Date.now().toString(36)}${(++messageSeq).toString(36)}`,
    });
    s.channel.owner = s;
    if (this.state === 'connected' && !s.channel.live && !s.channel.inFlight) s.channel.resync();
    this.sessions.set(canonical, s);
    return s;
  }

  /** A channel for ephemeral events and presence only (sessions use {@link session}). */
  channel(name: string): Channel {
    return this.channels.subscribe(name);
  }

  /** Any request by type (`session.list`, `project.create`, `mcp.list`, ...). */
  request<T extends object = JsonObject>(type: string, fields: object = {}, opts?: RequestOptions): Promise<T> {
    return this.requests.request<T>(type, fields, opts);
  }

  /**
   * Answers an MCP server's question (`mcp.elicitation`, listed in `mcp.elicitations`):
   * `accept` with the form's fields (those left out take the schema's defaults), `decline` or
   * `cancel`. The first answer from any of the user's connections counts; a later one is
   * refused `not_found`.
   */
  answerElicitation(elicitationId: string, action: ElicitationAction, content?: JsonObject): Promise<JsonObject> {
    const fields = content === undefined ? { elicitation_id: elicitationId, action } : { elicitation_id: elicitationId, action, content };
    return this.requests.request('mcp.elicitation.result', fields);
  }

  /** Creates a session over REST and returns it synced. */
  async createSession(opts: { title?: string } = {}): Promise<SyncedSession> {
    const info = await this.rest.createSession(opts);
    return this.session(info.id);
  }

  /** Resolves when every mutation queued so far has been answered by the server. */
  synced(): Promise<void> {
    return this.queue.drained();
  }

  async close(): Promise<void> {
    this.offline?.();
    this.connection.close();
    await this.queue.close();
  }

  private watchOnline(): void {
    const w = globalThis as { addEventListener?: (e: string, f: () => void) => void; removeEventListener?: (e: string, f: () => void) => void };
    if (typeof w.addEventListener !== 'function' || typeof (globalThis as { document?: unknown }).document === 'undefined') return;
    const online = (): void => this.connection.reconnectNow();
    w.addEventListener('online', online);
    this.offline = () => w.removeEventListener?.('online', online);
  }
}
