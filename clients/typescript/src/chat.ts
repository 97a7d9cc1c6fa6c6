/**
 * Chat turns of one session. `send()` returns a {@link Turn} at once; its text is built from
 * `chat.delta` events strictly in index order: a delta at or below the last index is a
 * duplicate and dropped, one beyond the next index is a gap, healed by subscribing again (the
 * reply's `turn` carries the text up to its index, and the server sends only later deltas).
 * A turn running when this client subscribes is joined from the reply's `turn` field, and a
 * turn that ended while the client was away is finished from its synced message.
 */

import { SwitchyardError } from './errors.js';
import type { DocMessage } from './merge.js';
import type { ChatDelta, ChatDone, ChatErrorData, ChatSendResult, Json, LiveTurn, ToolCall, ToolErrorEvent, ToolResultEvent, ToolWaitingEvent, Usage } from './protocol.js';
import type { ServerEvent } from './channels.js';
import { declareTools } from './tools.js';
import { Turn, type ChatHost, type SendOptions, type TurnResult } from './turn.js';

export { Turn, type ChatHost, type DeltaEvent, type SendOptions, type TurnEvents, type TurnResult, type TurnStatus } from './turn.js';

/** The outcome of a finished message (stream_end's metadata). */
function resultFromMessage(m: DocMessage): TurnResult {
  const meta = (m.metadata && typeof m.metadata === 'object' && !Array.isArray(m.metadata) ? m.metadata : {}) as Record<string, Json>;
  const status = meta.status === 'cancelled' ? 'cancelled' : meta.status === 'failed' ? 'failed' : 'complete';
  const r: TurnResult = {
    status,
    text: m.content,
    finishReason: typeof meta.finish_reason === 'string' ? meta.finish_reason : null,
    usage: isUsage(meta.usage) ? meta.usage : null,
  };
  const err = meta.error as { code?: unknown; message?: unknown } | undefined;
  if (status === 'failed') r.error = { code: typeof err?.code === 'string' ? err.code : 'failed', message: typeof err?.message === 'string' ? err.message : 'the turn failed' };
  return r;
}

function isUsage(u: unknown): u is Usage {
  return !!u && typeof u === 'object' && typeof (u as Usage).prompt_tokens === 'number' && typeof (u as Usage).completion_tokens === 'number';
}

export class Chat {
  private readonly turns = new Map<string, Turn>();
  /** Events of turns not known yet while a send is waiting for its reply. */
  private unclaimed = new Map<string, ServerEvent[]>();
  private sending = 0;

  constructor(private readonly host: ChatHost) {}

  /** The turn running now, if this client knows of one. */
  get active(): Turn | null {
    for (const t of this.turns.values()) if (!t.finished) return t;
    return null;
  }

  turn(turnId: string): Turn | undefined {
    return this.turns.get(turnId);
  }

  /** Live text of a streaming message, when a turn for it is running here. */
  liveText(messageId: string): string | undefined {
    for (const t of this.turns.values()) if (t.messageId === messageId && !t.finished) return t.text;
    return undefined;
  }

  /**
   * Appends the user's message and starts a turn. `started` rejects with `turn_active` when a
   * turn already runs in the session (the app decides whether to cancel or wait).
   */
  send(text: string, opts: SendOptions = {}): Turn {
    const tools = { ...this.host.clientTools, ...(opts.tools ?? {}) };
    const turn = new Turn(this.host, true, tools);
    const fields: Record<string, unknown> = { session_id: this.host.sessionId, message: text };
    if (opts.model !== undefined) fields.model = opts.model;
    if (opts.maxTokens !== undefined) fields.max_tokens = opts.maxTokens;
    if (opts.temperature !== undefined) fields.temperature = opts.temperature;
    if (opts.messageId !== undefined) fields.message_id = opts.messageId;
    if (opts.files !== undefined && opts.files.length > 0) fields.files = opts.files;
    try {
      const decl = declareTools(tools);
      if (decl.length > 0) fields.tools = decl;
    } catch (e) {
      turn.refuse(e as SwitchyardError);
      return turn;
    }
    this.sending++;
    this.host.requests
      .request<ChatSendResult>('chat.send', fields, opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs })
      .then(
        (r) => {
          if (typeof r.turn_id !== 'string') throw new SwitchyardError('bad_reply', 'chat.send reply without turn_id');
          turn.accept(r);
          this.turns.set(r.turn_id, turn);
          this.host.turnAppeared(turn);
          const early = this.unclaimed.get(r.turn_id) ?? [];
          this.unclaimed.delete(r.turn_id);
          for (const ev of early) this.route(turn, ev);
        },
      )
      .catch((e: unknown) => turn.refuse(e instanceof SwitchyardError ? e : new SwitchyardError('bad_reply', String(e))))
      .finally(() => {
        this.sending--;
        if (this.sending === 0) this.releaseUnclaimed();
      });
    return turn;
  }

  /** Events of turns nobody here started: they are turns of others, shown as observed. */
  private releaseUnclaimed(): void {
    const left = this.unclaimed;
    this.unclaimed = new Map();
    for (const [id, evs] of left) {
      const t = this.observe(id, evs[0]?.data as { message_id?: unknown } | undefined);
      for (const ev of evs) this.route(t, ev);
    }
  }

  private observe(turnId: string, data?: { message_id?: unknown }): Turn {
    let t = this.turns.get(turnId);
    if (!t) {
      t = new Turn(this.host, false);
      t.turnId = turnId;
      if (data && typeof data.message_id === 'string') t.messageId = data.message_id;
      t.status = 'streaming';
      this.turns.set(turnId, t);
      this.prune();
      this.host.turnAppeared(t);
    }
    return t;
  }

  /** Keeps the finished turns bounded. */
  private prune(): void {
    if (this.turns.size <= 50) return;
    for (const [id, t] of this.turns) {
      if (this.turns.size <= 50) break;
      if (t.finished) this.turns.delete(id);
    }
  }

  /** A subscribe reply: join the running turn, finish the ones that ended meanwhile. */
  onSubscribed(live: LiveTurn | undefined): void {
    if (live && typeof live.turn_id === 'string') {
      const t = this.turns.get(live.turn_id) ?? this.observe(live.turn_id, live);
      t.join(live);
    }
    this.onReplicaChanged();
  }

  /** Finishes turns whose message the replica shows as ended (stream_end synced). */
  onReplicaChanged(): void {
    for (const t of this.turns.values()) {
      if (t.finished || t.messageId === null) continue;
      const m = this.host.message(t.messageId);
      if (m && !m.streaming) {
        const r = resultFromMessage(m);
        t.finish(r);
      }
    }
  }

  onEvent(ev: ServerEvent): void {
    const data = ev.data as { turn_id?: unknown } | null;
    if (!data || typeof data !== 'object' || typeof data.turn_id !== 'string') return;
    const known = this.turns.get(data.turn_id);
    if (known) return this.route(known, ev);
    if (this.sending > 0) {
      const list = this.unclaimed.get(data.turn_id) ?? [];
      if (list.length < 10_000) list.push(ev);
      this.unclaimed.set(data.turn_id, list);
      return;
    }
    this.route(this.observe(data.turn_id, data as { message_id?: unknown }), ev);
  }

  private route(t: Turn, ev: ServerEvent): void {
    switch (ev.event) {
      case 'chat.delta':
        t.delta(ev.data as unknown as ChatDelta);
        break;
      case 'chat.done': {
        const d = ev.data as unknown as ChatDone;
        this.finishFrom(t, d.index, {
          status: d.status === 'cancelled' ? 'cancelled' : 'complete',
          text: t.text,
          finishReason: typeof d.finish_reason === 'string' ? d.finish_reason : null,
          usage: isUsage(d.usage) ? d.usage : null,
        });
        break;
      }
      case 'chat.error': {
        const d = ev.data as unknown as ChatErrorData;
        this.finishFrom(t, d.index, {
          status: 'failed',
          text: t.text,
          finishReason: null,
          usage: null,
          error: { code: String(d.code ?? 'failed'), message: String(d.message ?? '') },
        });
        break;
      }
      case 'tool.call': {
        const call = ev.data as unknown as ToolCall;
        t.emit('tool.call', call);
        if (t.local && call.side === 'client') void t.answer(call);
        break;
      }
      case 'tool.result':
        t.emit('tool.result', ev.data as unknown as ToolResultEvent);
        break;
      case 'tool.error':
        t.emit('tool.error', ev.data as unknown as ToolErrorEvent);
        break;
      case 'tool.waiting':
        t.emit('tool.waiting', ev.data as unknown as ToolWaitingEvent);
        break;
    }
  }

  /**
   * The final text is the synced message's (stream_end is committed before chat.done is
   * sent); deltas that never arrived are no loss then.
   */
  private finishFrom(t: Turn, lastIndex: unknown, r: TurnResult): void {
    const m = t.messageId !== null ? this.host.message(t.messageId) : undefined;
    if (m && !m.streaming) {
      const fromMsg = resultFromMessage(m);
      r.text = fromMsg.text;
      if (r.status === 'failed' && !r.error) r.error = fromMsg.error as { code: string; message: string };
    } else if (typeof lastIndex === 'number' && lastIndex > t.index && t.messageId !== null) {
      // Deltas are missing and the final message has not been synced yet: it will be.
      t.emit('gap', { expected: t.index + 1, got: lastIndex });
      this.pendingFinish.set(t, r);
      return;
    }
    t.finish(r);
  }

  private pendingFinish = new Map<Turn, TurnResult>();

  /** Called after each replica change: completes turns that waited for their final message. */
  settlePending(): void {
    for (const [t, r] of this.pendingFinish) {
      const m = t.messageId !== null ? this.host.message(t.messageId) : undefined;
      if (m && !m.streaming) {
        this.pendingFinish.delete(t);
        t.finish({ ...r, text: m.content });
      }
    }
  }
}
