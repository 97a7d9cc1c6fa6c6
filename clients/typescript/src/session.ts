/**
 * One synced session as the app sees it: the confirmed replica (what the server has), this
 * client's pending mutations re-applied on top (optimistic state, rebased whenever a server
 * change arrives), the channel it lives on (presence, ephemeral events), and its chat turns.
 */

import { Chat, type SendOptions, type Turn } from './chat.js';
import type { BroadcastEvent, Channel, ChannelOwner, ServerEvent } from './channels.js';
import { EventHub } from './emitter.js';
import { SwitchyardError } from './errors.js';
import { parseHlc, type HybridClock } from './hlc.js';
import { applyMutation, cloneDoc, liveRegisters, transcript, type DocMessage, type SessionState } from './merge.js';
import type { ClientOp, FieldName, Json, Member, MessageRole, Mutation, SnapshotReason, SubscribeResult } from './protocol.js';
import type { AppliedMutation, LocalMutation, MutationQueue, RefusedMutation } from './queue.js';
import { Replica } from './replica.js';
import type { Requests } from './requests.js';
import type { ToolSet } from './tools.js';

export interface ViewMessage extends DocMessage {
  /** Not yet confirmed by the server (this client's own, still queued). */
  readonly pending: boolean;
}

export interface SessionView extends Omit<SessionState, 'messages'> {
  messages: ViewMessage[];
  /** A delete_session op applied (the session is gone for everyone). */
  deleted: boolean;
  /** Mutations of this client not yet confirmed. */
  pendingCount: number;
}

export interface SessionEvents {
  /** The view changed: `local` (own mutation), `remote` (a server change), `snapshot`, `turn` (streaming text). */
  change: { source: 'local' | 'remote' | 'snapshot' | 'turn' };
  /**
   * The replica was replaced by a snapshot. `ahead`: the server is behind what this client had
   * (its state was restored or rebuilt): what this client saw may be gone; its queued
   * mutations are kept and pushed again.
   */
  reset: { reason: SnapshotReason };
  refused: RefusedMutation;
  applied: AppliedMutation;
  /** A turn started here or was seen running (joined). */
  turn: Turn;
  presence: { members: Member[]; count: number };
  broadcast: BroadcastEvent;
  event: ServerEvent;
  /** The subscription ended for good (access revoked, forbidden). */
  ended: SwitchyardError;
  /** Subscribed (again): the replica is current. */
  synced: { version: number };
}

export interface SessionDeps {
  requests: Requests;
  queue: MutationQueue;
  clock: HybridClock;
  clientTools: ToolSet;
  toolTimeoutMs: number;
  newMessageId(): string;
}

export class SyncedSession extends EventHub<SessionEvents> implements ChannelOwner {
  readonly replica: Replica;
  readonly chat: Chat;
  /** Own mutations the server applied but whose change has not arrived yet, by version. */
  private awaiting = new Map<number, Mutation>();
  private view: SessionView | null = null;
  private readonly offs: Array<() => void> = [];

  constructor(
    readonly id: string,
    readonly channel: Channel,
    private readonly deps: SessionDeps,
  ) {
    super();
    this.replica = new Replica(deps.clock);
    const self = this;
    this.chat = new Chat({
      sessionId: id,
      requests: deps.requests,
      resync: () => channel.resync(),
      message: (mid) => self.replica.doc.messages.get(mid),
      turnAppeared: (t) => self.emit('turn', t),
      turnUpdated: () => self.invalidate('turn'),
      clientTools: deps.clientTools,
      toolTimeoutMs: deps.toolTimeoutMs,
    });
    const q = deps.queue;
    this.offs.push(
      q.on('changed', ({ sessionId }) => sessionId === id && this.invalidate('local')),
      q.on('applied', (a) => {
        if (a.sessionId !== id) return;
        if (this.replica.version < a.version) this.awaiting.set(a.version, a.mutation);
        this.emit('applied', a);
      }),
      q.on('refused', (r) => r.sessionId === id && this.emit('refused', r)),
      channel.on('presence', ({ members, count }) => this.emit('presence', { members, count })),
      channel.on('broadcast', (b) => this.emit('broadcast', b)),
      channel.on('event', (e) => this.emit('event', e)),
      channel.on('ended', (e) => this.emit('ended', e)),
    );
  }

  /** Resolves once the first subscribe reply is applied. */
  ready(): Promise<void> {
    return this.channel.ready();
  }

  get version(): number {
    return this.replica.version;
  }

  get presence(): Member[] {
    return [...this.channel.presence.values()];
  }

  /** The state to show: confirmed replica + pending own mutations, with live turn text. */
  get state(): SessionView {
    this.view ??= this.compute();
    return this.view;
  }

  private compute(): SessionView {
    const pending = this.deps.queue.pendingFor(this.id);
    const base = this.replica.doc;
    const overlay = pending.length > 0 || this.awaiting.size > 0;
    const doc = overlay ? cloneDoc(base) : base;
    let version = Math.max(this.replica.version, 0);
    if (overlay) {
      for (const [v, m] of [...this.awaiting].sort((a, b) => a[0] - b[0])) {
        if (v > this.replica.version) {
          applyMutation(doc, m, v, 'strict');
          version = Math.max(version, v);
        }
      }
      // Pending mutations land after everything confirmed, in queue order, as the server
      // will put them; one the server would refuse shows nothing (all or nothing).
      for (const m of pending) applyMutation(doc, m, ++version, 'strict');
    }
    const confirmed = this.replica.version;
    const messages = transcript(doc).map((m): ViewMessage => {
      const live = m.streaming ? this.chat.liveText(m.id) : undefined;
      const content = live !== undefined && live.length >= m.content.length ? live : m.content;
      return { ...m, content, pending: m.position > confirmed && !this.awaitingHas(m.position) };
    });
    return {
      version: Math.max(this.replica.version, 0),
      ...liveRegisters(doc),
      messages,
      deleted: doc.sessionDeleted,
      pendingCount: pending.length,
    };
  }

  private awaitingHas(v: number): boolean {
    return this.awaiting.has(v);
  }

  private invalidate(source: SessionEvents['change']['source']): void {
    this.view = null;
    this.emit('change', { source });
  }

  // --- ChannelOwner ---

  since(): number | undefined {
    return this.replica.known ? this.replica.version : undefined;
  }

  onSubscribed(r: SubscribeResult): void {
    if (typeof r.server_hlc === 'string') {
      const h = parseHlc(r.server_hlc);
      if (h) this.deps.clock.observe(h);
    }
    let source: 'remote' | 'snapshot' = 'remote';
    if (r.snapshot && typeof r.snapshot === 'object') {
      const reason = r.reason ?? (this.replica.known ? 'compacted' : 'requested');
      this.replica.applySnapshot(r.snapshot);
      source = 'snapshot';
      if (reason === 'ahead') this.awaiting.clear();
      if (reason !== 'requested') this.emit('reset', { reason });
    } else if (Array.isArray(r.changes)) {
      const serverVersion = typeof r.version === 'number' ? r.version : undefined;
      if (serverVersion !== undefined && this.replica.known && serverVersion < this.replica.version) {
        // An older server answers a `since` from the future with nothing: start over.
        this.replica.version = -1;
        this.awaiting.clear();
        this.emit('reset', { reason: 'ahead' });
        this.channel.resync();
        return;
      }
      if (!this.replica.known) this.replica.startEmpty();
      for (const c of [...r.changes].sort((a, b) => a.version - b.version)) this.replica.applyChange(c);
      if (serverVersion !== undefined && this.replica.version < serverVersion) this.channel.resync();
    }
    this.pruneAwaiting();
    this.chat.onSubscribed(r.turn);
    this.chat.settlePending();
    this.invalidate(source);
    this.emit('synced', { version: this.replica.version });
  }

  onEvent(ev: ServerEvent): void {
    if (ev.event === 'sync.change') {
      if (!this.replica.known) return; // the subscribe reply will carry it
      const outcome = this.replica.applyChange(ev.data as never);
      if (outcome === 'gap') this.channel.resync();
      if (outcome !== 'applied') return;
      this.pruneAwaiting();
      this.chat.onReplicaChanged();
      this.chat.settlePending();
      this.invalidate('remote');
    } else if (ev.event === 'sync.resync') {
      this.channel.resync();
    } else if (ev.event.startsWith('chat.') || ev.event.startsWith('tool.')) {
      this.chat.onEvent(ev);
    }
  }

  private pruneAwaiting(): void {
    for (const v of [...this.awaiting.keys()]) if (v <= this.replica.version) this.awaiting.delete(v);
  }

  // --- local changes ---

  /** Queues one mutation of `ops` (all or nothing on the server). */
  mutate(ops: ClientOp[]): LocalMutation {
    return this.deps.queue.enqueue(this.id, ops);
  }

  setField(field: FieldName, value: Json): LocalMutation {
    return this.mutate([{ op: 'set_field', field, value }]);
  }

  setTitle(title: string): LocalMutation {
    return this.setField('title', title);
  }

  setContext(key: string, value: Json): LocalMutation {
    return this.mutate([{ op: 'set_context', key, value }]);
  }

  deleteContext(key: string): LocalMutation {
    return this.mutate([{ op: 'delete_context', key }]);
  }

  addTag(tag: string): LocalMutation {
    return this.mutate([{ op: 'add_tag', tag }]);
  }

  removeTag(tag: string): LocalMutation {
    return this.mutate([{ op: 'remove_tag', tag }]);
  }

  /** Appends a message (not a chat turn: use `chat.send` to ask the model). */
  appendMessage(content: string, opts: { role?: MessageRole; id?: string; metadata?: Json } = {}): LocalMutation & { messageId: string } {
    const messageId = opts.id ?? this.deps.newMessageId();
    const op: ClientOp = { op: 'append_message', message_id: messageId, role: opts.role ?? 'user', content };
    if (opts.metadata !== undefined) op.metadata = opts.metadata;
    return { ...this.mutate([op]), messageId };
  }

  editMessage(messageId: string, content: string): LocalMutation {
    return this.mutate([{ op: 'edit_message', message_id: messageId, content }]);
  }

  deleteMessage(messageId: string): LocalMutation {
    return this.mutate([{ op: 'delete_message', message_id: messageId }]);
  }

  /** Starts an assistant turn (see {@link Chat.send}). */
  send(text: string, opts?: SendOptions): Turn {
    return this.chat.send(text, opts);
  }

  /** Sends an ephemeral event (typing, cursor) to everyone on the session. */
  publish(event: string, data: Json): Promise<void> {
    return this.channel.publish(event, data);
  }

  /** Leaves the session channel; pending mutations still get pushed. */
  async close(): Promise<void> {
    for (const off of this.offs) off();
    await this.channel.unsubscribe();
  }
}
