/**
 * The subscription registry: which channels this client wants, subscribing them again after
 * every reconnect (a session channel with `since` = the last version it applied), presence
 * rebuilt from each subscribe reply and kept by `presence.diff` events, and the routing of
 * channel events to whoever owns the channel (a synced session, or the app).
 */

import { Backoff } from './backoff.js';
import type { Connection } from './connection.js';
import { EventHub } from './emitter.js';
import { SwitchyardError } from './errors.js';
import type { BroadcastFrame, EventFrame, Json, Member, Sender, ServerFrame, SubscribeResult } from './protocol.js';
import { RESERVED_EVENT_PREFIXES } from './protocol.js';
import type { Requests } from './requests.js';

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/** `session:<lowercase hyphenated uuid>` from any common spelling of the id; null if it is none. */
export function canonicalUuid(id: string): string | null {
  const s = id.trim().replace(/^urn:uuid:/i, '').replace(/^\{(.*)\}$/, '$1');
  if (!UUID.test(s)) return null;
  const h = s.replace(/-/g, '').toLowerCase();
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The canonical channel name the server echoes (`session:<uuid>`, `user:<uuid>`). */
export function canonicalChannel(name: string): string {
  const i = name.indexOf(':');
  if (i < 0) throw new SwitchyardError('bad_channel', `not a channel name: ${JSON.stringify(name)}`);
  const kind = name.slice(0, i).toLowerCase();
  const id = canonicalUuid(name.slice(i + 1));
  if ((kind !== 'session' && kind !== 'user') || id === null) {
    throw new SwitchyardError('bad_channel', `channels are session:<uuid> or user:<uuid>, not ${JSON.stringify(name)}`);
  }
  return `${kind}:${id}`;
}

export interface BroadcastEvent {
  event: string;
  data: Json;
  from: Sender;
  ts: number;
}

export interface ServerEvent {
  event: string;
  data: Json;
  ts: number;
}

export interface ChannelEvents {
  /** A subscribe reply arrived (first subscribe or after a reconnect). */
  subscribed: SubscribeResult;
  /** Server events (no sender): sync.*, chat.*, tool.*, session.* ... */
  event: ServerEvent;
  /** Another client's (or our own) ephemeral `publish`. */
  broadcast: BroadcastEvent;
  /**
   * Who is here now. `joined`/`left` are the change that caused it (empty for a full list from a
   * subscribe reply or a `presence` answer). `count` is the channel's members on every instance:
   * it exceeds `members.length` in a big channel (past `ws.presence_list_max` the server sends
   * only the count). `truncated`: the server counted more changes than it listed; the
   * SDK asks for the list again when the channel is small enough to be listed whole.
   */
  presence: { members: Member[]; count: number; joined: Member[]; left: Member[]; truncated: boolean };
  /** The subscription ended for good (forbidden, revoked, too many subscriptions). */
  ended: SwitchyardError;
}

/** What a session replica plugs into its channel. */
export interface ChannelOwner {
  /** The version to resume from, or undefined for a snapshot. */
  since(): number | undefined;
  onSubscribed(result: SubscribeResult): void;
  /** Called for every server event on the channel, before the channel's listeners. */
  onEvent(ev: ServerEvent): void;
}

/** A truncated diff is followed by a fresh `presence` read only up to this many members (the
 * server's default `ws.presence_list_max`); past it, a list could not be whole anyway. */
const PRESENCE_REFETCH_MAX = 100;

export class Channel extends EventHub<ChannelEvents> {
  readonly presence = new Map<string, Member>();
  /** Members on the channel (every instance), as the server last said. */
  presenceCount = 0;
  private presenceRefetch: ReturnType<typeof setTimeout> | null = null;
  /** Whether the server has answered a subscribe on the current connection. */
  live = false;
  ended = false;
  owner: ChannelOwner | null = null;
  /** A subscribe request is out. */
  inFlight = false;
  /** Another subscribe should follow the one in flight (a gap was seen meanwhile). */
  again = false;
  readonly backoff = new Backoff({ baseMs: 500, capMs: 15_000 });
  retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readyWaiters: Array<{ resolve: () => void; reject: (e: SwitchyardError) => void }> = [];

  constructor(
    readonly name: string,
    private readonly registry: Channels,
  ) {
    super();
  }

  /** Resolves once the server has answered the subscribe (rejects if it refuses for good). */
  ready(): Promise<void> {
    if (this.live) return Promise.resolve();
    if (this.ended) return Promise.reject(new SwitchyardError('closed', `${this.name} is unsubscribed`));
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
  }

  /** Sends an ephemeral event to everyone on the channel (the sender included). */
  publish(event: string, data: Json, timeoutMs?: number): Promise<void> {
    if (RESERVED_EVENT_PREFIXES.some((p) => event.startsWith(p))) {
      return Promise.reject(new SwitchyardError('reserved_event', `event names starting with ${event.split('.')[0]}. belong to the server`));
    }
    return this.registry.requests
      .request('publish', { channel: this.name, event, data }, timeoutMs === undefined ? {} : { timeoutMs })
      .then(() => undefined);
  }

  /** Asks the server for the channel's members now (the `presence` request). */
  async refreshPresence(): Promise<Member[]> {
    const r = await this.registry.requests.request<{ members?: Member[]; count?: number }>('presence', { channel: this.name });
    this.setPresence(Array.isArray(r.members) ? r.members : [], r.count);
    return [...this.presence.values()];
  }

  /** Subscribes again on the live connection (e.g. after a version gap). */
  resync(): void {
    this.registry.resubscribe(this);
  }

  unsubscribe(): Promise<void> {
    return this.registry.unsubscribe(this);
  }

  setPresence(members: Member[], count?: unknown): void {
    this.presence.clear();
    for (const m of members) if (isMember(m)) this.presence.set(m.conn_id, m);
    this.presenceCount = typeof count === 'number' ? count : this.presence.size;
    this.emit('presence', { members: [...this.presence.values()], count: this.presenceCount, joined: [], left: [], truncated: false });
  }

  /** A `presence.diff`: joins, then leaves, applied to the list. */
  applyPresenceDiff(data: unknown): void {
    if (typeof data !== 'object' || data === null) return;
    const d = data as { joins?: unknown; leaves?: unknown; count?: unknown; truncated?: unknown };
    const joined = Array.isArray(d.joins) ? d.joins.filter(isMember) : [];
    const left = Array.isArray(d.leaves) ? d.leaves.filter(isMember) : [];
    for (const m of joined) this.presence.set(m.conn_id, m);
    for (const m of left) this.presence.delete(m.conn_id);
    if (typeof d.count === 'number') this.presenceCount = d.count;
    const truncated = d.truncated === true;
    this.emit('presence', { members: [...this.presence.values()], count: this.presenceCount, joined, left, truncated });
    if (truncated && this.presenceCount <= PRESENCE_REFETCH_MAX) this.refetchPresenceSoon();
  }

  /** One `presence` read after a burst of truncated diffs, spread out so a crowd joining at
   * once does not all ask in the same instant. */
  private refetchPresenceSoon(): void {
    if (this.presenceRefetch) return;
    this.presenceRefetch = setTimeout(() => {
      this.presenceRefetch = null;
      if (this.live && !this.ended) this.refreshPresence().catch(() => undefined);
    }, 250 + Math.random() * 500);
  }

  settleReady(err: SwitchyardError | null): void {
    const w = this.readyWaiters;
    this.readyWaiters = [];
    for (const x of w) (err ? x.reject(err) : x.resolve());
  }
}

function isMember(m: unknown): m is Member {
  return m !== null && typeof m === 'object' && typeof (m as Member).conn_id === 'string' && typeof (m as Member).user_id === 'string';
}

/** Errors that will not go away by subscribing again. */
const FINAL = new Set(['forbidden', 'bad_channel', 'not_found', 'too_many_subscriptions', 'closed']);

export class Channels {
  private readonly channels = new Map<string, Channel>();
  /** Events on the implicit `user:<id>` channel (mcp.status, session.list_changed, ...). */
  readonly user = new EventHub<{ event: ServerEvent }>();
  userChannel: string | null = null;

  constructor(
    readonly conn: Connection,
    readonly requests: Requests,
  ) {
    conn.on('welcome', (w) => {
      this.userChannel = `user:${w.user_id}`;
      for (const ch of this.channels.values()) {
        ch.live = false;
        ch.inFlight = false;
        this.resubscribe(ch);
      }
    });
    conn.on('state', ({ state }) => {
      if (state === 'connected') return;
      for (const ch of this.channels.values()) {
        ch.live = false;
        if (ch.retryTimer !== null) clearTimeout(ch.retryTimer);
        ch.retryTimer = null;
        if (state === 'closed') ch.settleReady(new SwitchyardError('closed', 'the client is closed'));
      }
    });
    conn.on('frame', (f) => this.onFrame(f));
  }

  get(name: string): Channel | undefined {
    return this.channels.get(canonicalChannel(name));
  }

  /** The channel object for `name`, subscribing it if this is the first ask. */
  subscribe(name: string, owner?: ChannelOwner): Channel {
    const canonical = canonicalChannel(name);
    let ch = this.channels.get(canonical);
    if (!ch || ch.ended) {
      ch = new Channel(canonical, this);
      this.channels.set(canonical, ch);
      if (owner) ch.owner = owner;
      if (this.conn.state === 'connected') this.resubscribe(ch);
    } else if (owner && !ch.owner) {
      ch.owner = owner;
    }
    return ch;
  }

  resubscribe(ch: Channel): void {
    if (ch.ended || this.conn.state !== 'connected') return;
    if (ch.inFlight) {
      ch.again = true;
      return;
    }
    ch.inFlight = true;
    ch.again = false;
    const since = ch.owner?.since();
    const fields: Record<string, unknown> = { channel: ch.name };
    if (since !== undefined) fields.since = since;
    this.requests
      .request<SubscribeResult>('subscribe', fields, { timeoutMs: 30_000 })
      .then((result) => {
        ch.inFlight = false;
        if (ch.ended) return;
        ch.live = true;
        ch.backoff.reset();
        if (Array.isArray(result.presence)) ch.setPresence(result.presence, result.presence_count);
        try {
          ch.owner?.onSubscribed(result);
        } finally {
          ch.emit('subscribed', result);
          ch.settleReady(null);
        }
        if (ch.again) this.resubscribe(ch);
      })
      .catch((e: unknown) => {
        ch.inFlight = false;
        const err = e instanceof SwitchyardError ? e : new SwitchyardError('bad_reply', String(e));
        if (FINAL.has(err.code)) {
          this.end(ch, err);
          return;
        }
        if (err.code === 'disconnected' || this.conn.state !== 'connected') return; // the next welcome subscribes again
        const delay = ch.backoff.next();
        ch.retryTimer = setTimeout(() => {
          ch.retryTimer = null;
          this.resubscribe(ch);
        }, delay);
      });
  }

  async unsubscribe(ch: Channel): Promise<void> {
    if (ch.ended) return;
    this.end(ch, new SwitchyardError('closed', `${ch.name} was unsubscribed`), false);
    if (this.conn.state !== 'connected') return;
    try {
      await this.requests.request('unsubscribe', { channel: ch.name });
    } catch (e) {
      if (!(e instanceof SwitchyardError) || (e.code !== 'not_subscribed' && e.code !== 'disconnected')) throw e;
    }
  }

  private end(ch: Channel, err: SwitchyardError, notify = true): void {
    ch.ended = true;
    ch.live = false;
    if (ch.retryTimer !== null) clearTimeout(ch.retryTimer);
    if (this.channels.get(ch.name) === ch) this.channels.delete(ch.name);
    ch.settleReady(err);
    if (notify) ch.emit('ended', err);
  }

  private onFrame(f: ServerFrame): void {
    if (f.type !== 'event' && f.type !== 'broadcast') return;
    if (typeof f.channel !== 'string' || typeof f.event !== 'string') return;
    const ts = typeof f.ts === 'number' ? f.ts : Date.now();
    if (f.type === 'broadcast' || (f as EventFrame).from !== undefined) {
      const from = (f as BroadcastFrame).from;
      if (!from || typeof from !== 'object') return;
      const ch = this.channels.get(f.channel);
      ch?.emit('broadcast', { event: f.event, data: f.data ?? null, from, ts });
      return;
    }
    const ev: ServerEvent = { event: f.event, data: f.data ?? null, ts };
    if (f.channel === this.userChannel) {
      this.user.emit('event', ev);
      return;
    }
    const ch = this.channels.get(f.channel);
    if (!ch || ch.ended) return;
    if (ev.event === 'presence.diff') {
      ch.applyPresenceDiff(ev.data);
      return;
    }
    if (ev.event === 'session.revoked') {
      ch.owner?.onEvent(ev);
      this.end(ch, new SwitchyardError('forbidden', 'access to this session was revoked'));
      return;
    }
    try {
      ch.owner?.onEvent(ev);
    } finally {
      ch.emit('event', ev);
    }
  }
}
