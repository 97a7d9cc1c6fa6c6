/**
 * The mutation queue: every local change becomes a mutation with the next contiguous id of
 * this client and a fresh HLC stamp, is written to the store, then pushed in order, in batches
 * of one session's consecutive mutations, one batch in flight at a time. The server's answer
 * per mutation decides: `applied` and `refused` leave the queue, `out_of_order` resends.
 * Because ids are persisted before they are sent and never reused, a retry after a reconnect
 * or a restart is answered with the original result: each mutation lands exactly once.
 *
 * When the server can never accept the queue's ids (the client id belongs to another account,
 * a whole session refused us, or the server lost ids we had already dropped), the queue takes
 * a new client id and renumbers what it still holds from 1: the server never saw those ids
 * under the new client id, so nothing can be mistaken for a retry.
 */

import { Backoff } from './backoff.js';
import type { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { SwitchyardError } from './errors.js';
import { encodeChecked, utf8Length } from './frame-check.js';
import { formatHlc, parseHlc, type HybridClock } from './hlc.js';
import type { ClientOp, Mutation, MutationResult, PushReply } from './protocol.js';
import type { Requests } from './requests.js';
import type { QueueMeta, QueueStore } from './storage/types.js';

export interface AppliedMutation {
  sessionId: string;
  mutation: Mutation;
  version: number;
}

export interface RefusedMutation {
  sessionId: string;
  mutation: Mutation;
  /** The server's refusal code (`invalid`, `clock_ahead`, `forbidden`, ...). */
  code: string;
  error: string;
}

export interface QueueEvents {
  applied: AppliedMutation;
  refused: RefusedMutation;
  /** The pending mutations of a session changed (queued, acknowledged, renumbered). */
  changed: { sessionId: string };
  /** The queue moved to a new client id (see the module comment). */
  rotated: { previous: string; clientId: string; reason: string };
  /** A push failed for a reason that may pass (it is retried). */
  retrying: { error: SwitchyardError; inMs: number };
}

/** A queued local change, as the app sees it. */
export interface LocalMutation {
  readonly sessionId: string;
  readonly mutation: Mutation;
  /** Resolves once the mutation is in the store (it survives a restart from then on). */
  readonly persisted: Promise<void>;
  /** Resolves with the session version it was applied at; rejects (code `refused`) if refused. */
  readonly confirmed: Promise<{ version: number }>;
}

interface Item {
  sessionId: string;
  mutation: Mutation;
  persisted: boolean;
  resolve: (v: { version: number }) => void;
  reject: (e: SwitchyardError) => void;
}

export interface QueueOptions {
  /** Use this client id instead of the stored or a generated one (first run only). */
  clientId?: string;
  /** Prefix of generated client ids. Default `js`. */
  clientIdPrefix?: string;
  /** Mutations per push. Default 100 (the server's default `sync.max_batch`). */
  maxBatch?: number;
  pushTimeoutMs?: number;
}

export function newClientId(prefix = 'js'): string {
  const bytes = new Uint8Array(9);
  globalThis.crypto.getRandomValues(bytes);
  const rand = [...bytes].map((b) => b.toString(36).padStart(2, '0')).join('');
  return `${prefix}-${rand}`.slice(0, 64);
}

/** A refusal code for servers that send only the message. */
export function inferRefusalCode(error: string): string {
  if (/clock too far ahead/i.test(error)) return 'clock_ahead';
  if (/in use by another account/i.test(error)) return 'client_id_taken';
  if (/written by the server only|only the owner|viewers cannot/i.test(error)) return 'not_allowed';
  if (/already used/i.test(error)) return 'conflict';
  if (/unknown (op|variant)/i.test(error)) return 'unknown_op';
  return 'invalid';
}

export class MutationQueue extends Emitter<QueueEvents> {
  private items: Item[] = [];
  /** Local changes made before the store was loaded; they get ids once it is. */
  private early: Array<{ item: Item; ops: ClientOp[] }> = [];
  private meta: QueueMeta = { clientId: '', nextMutationId: 1, hlc: '0:0' };
  private loaded = false;
  private inFlight = false;
  private closed = false;
  private writes: Promise<void> = Promise.resolve();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly backoff = new Backoff({ baseMs: 500, capMs: 30_000 });
  private batchLimit: number;
  readonly ready: Promise<void>;

  constructor(
    private readonly store: QueueStore,
    private readonly requests: Requests,
    private readonly conn: Connection,
    private readonly clock: HybridClock,
    private readonly opts: QueueOptions = {},
  ) {
    super();
    this.batchLimit = opts.maxBatch ?? 100;
    this.ready = this.load();
    // Nobody may await `ready`; a failing store is reported through it without crashing.
    this.ready.catch(() => {});
    conn.on('welcome', () => this.kick());
  }

  get clientId(): string {
    return this.meta.clientId;
  }

  /** Mutations not yet acknowledged, all sessions. */
  get size(): number {
    return this.items.length + this.early.length;
  }

  /** The pending mutations of one session, in order (what the optimistic view re-applies). */
  pendingFor(sessionId: string): Mutation[] {
    const out: Mutation[] = [];
    for (const i of this.items) if (i.sessionId === sessionId) out.push(i.mutation);
    for (const e of this.early) if (e.item.sessionId === sessionId) out.push(e.item.mutation);
    return out;
  }

  private async load(): Promise<void> {
    const state = await this.store.load();
    if (state) {
      this.meta = { clientId: state.clientId, nextMutationId: state.nextMutationId, hlc: state.hlc };
      for (const s of state.mutations) {
        this.items.push(this.newItem(s.sessionId, s.mutation, true));
        this.meta.nextMutationId = Math.max(this.meta.nextMutationId, s.mutation.mutation_id + 1);
        const h = parseHlc(s.mutation.hlc);
        if (h) this.clock.observe(h);
      }
      const h = parseHlc(state.hlc);
      if (h) this.clock.observe(h);
    } else {
      this.meta = { clientId: this.opts.clientId ?? newClientId(this.opts.clientIdPrefix), nextMutationId: 1, hlc: '0:0' };
      await this.store.replace({ ...this.meta, mutations: [] });
    }
    this.loaded = true;
    const early = this.early;
    this.early = [];
    for (const e of early) this.assign(e.item, e.ops);
    const sessions = new Set([...this.items.map((i) => i.sessionId)]);
    for (const sessionId of sessions) this.emit('changed', { sessionId });
    this.kick();
  }

  private newItem(sessionId: string, mutation: Mutation, persisted: boolean): Item {
    let resolve!: (v: { version: number }) => void;
    let reject!: (e: SwitchyardError) => void;
    const confirmed = new Promise<{ version: number }>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    confirmed.catch(() => {}); // a refusal nobody awaits is reported by the `refused` event
    const item: Item = { sessionId, mutation, persisted, resolve, reject };
    confirmedOf.set(item, confirmed);
    return item;
  }

  /**
   * Queues `ops` as one mutation for `sessionId`. Throws (synchronously) when the mutation
   * could never be sent: larger than the server's frame limit or nested too deeply.
   */
  enqueue(sessionId: string, ops: ClientOp[]): LocalMutation {
    if (this.closed) throw new SwitchyardError('closed', 'the client is closed');
    if (ops.length === 0) throw new SwitchyardError('invalid_request', 'a mutation has at least one op');
    const draft: Mutation = { client_id: this.meta.clientId || 'x'.repeat(16), mutation_id: Number.MAX_SAFE_INTEGER, hlc: formatHlc(this.clock.peek()), ops };
    // Checked as the push that would carry it alone, so every mutation fits some batch.
    encodeChecked({ type: 'session.push', id: 'r000000000', session_id: sessionId, mutations: [draft] }, this.conn.frameLimits());
    const item = this.newItem(sessionId, draft, false);
    let persisted: Promise<void>;
    if (!this.loaded) {
      draft.hlc = formatHlc(this.clock.now());
      this.early.push({ item, ops });
      persisted = this.ready.then(() => this.writes);
    } else {
      persisted = this.assign(item, ops);
    }
    this.emit('changed', { sessionId });
    return { sessionId, mutation: item.mutation, persisted, confirmed: confirmedOf.get(item) as Promise<{ version: number }> };
  }

  private assign(item: Item, ops: ClientOp[]): Promise<void> {
    const m = item.mutation;
    m.client_id = this.meta.clientId;
    m.mutation_id = this.meta.nextMutationId++;
    m.hlc = formatHlc(this.clock.now());
    m.ops = ops;
    this.meta.hlc = m.hlc;
    this.items.push(item);
    const meta = { ...this.meta };
    const stored = { sessionId: item.sessionId, mutation: structuredClone(m) };
    const write = this.writes.then(() => this.store.append(meta, [stored]));
    this.writes = write.catch(() => {});
    return write.then(() => {
      item.persisted = true;
      this.kick();
    });
  }

  /** Pushes what is persisted, if connected and nothing is in flight. */
  kick(): void {
    if (this.closed || !this.loaded || this.inFlight || this.conn.state !== 'connected') return;
    if (this.retryTimer !== null || !this.items[0]?.persisted) return;
    this.inFlight = true;
    // A push tells the server that the client holds the answers of every id below its lowest,
    // and the server prunes them: the store must have forgotten those mutations first, or a
    // restart would retry them and get `already_processed` instead of their answers.
    void this.writes.then(() => this.push());
  }

  private push(): void {
    const batch = this.conn.state === 'connected' && !this.closed ? this.nextBatch() : [];
    if (batch.length === 0) {
      this.inFlight = false;
      return;
    }
    const sessionId = (batch[0] as Item).sessionId;
    this.requests
      .request<PushReply>('session.push', { session_id: sessionId, mutations: batch.map((i) => i.mutation) }, { timeoutMs: this.opts.pushTimeoutMs ?? 30_000 })
      .then(
        (reply) => this.onReply(batch, reply),
        (e: unknown) => this.onPushError(batch, e instanceof SwitchyardError ? e : new SwitchyardError('bad_reply', String(e))),
      )
      .catch((e: unknown) => {
        // A bug in the handlers above must not wedge the queue.
        console.error('[switchyard] mutation queue:', e);
      })
      .finally(() => {
        this.inFlight = false;
        this.kick();
      });
  }

  /** The head's session's consecutive persisted mutations, within the batch and frame limits. */
  private nextBatch(): Item[] {
    const head = this.items[0];
    if (!head || !head.persisted) return [];
    const budget = this.conn.frameLimits().maxFrameBytes - 200;
    const out: Item[] = [];
    let bytes = 0;
    for (const i of this.items) {
      if (!i.persisted || i.sessionId !== head.sessionId || out.length >= this.batchLimit) break;
      // A mutation creating its session must open a push (the server creates on the first op).
      if (out.length > 0 && i.mutation.ops[0]?.op === 'create_session') break;
      const size = utf8Length(JSON.stringify(i.mutation)) + 1;
      if (out.length > 0 && bytes + size > budget) break;
      bytes += size;
      out.push(i);
    }
    return out;
  }

  private onReply(batch: Item[], reply: PushReply): void {
    if (typeof reply.server_hlc === 'string') {
      const h = parseHlc(reply.server_hlc);
      if (h) {
        this.clock.calibrate(h.ms);
        this.clock.observe(h);
        this.meta.hlc = formatHlc(this.clock.peek());
      }
    }
    const results = new Map<number, MutationResult>();
    for (const r of Array.isArray(reply.results) ? reply.results : []) {
      if (r && typeof r.mutation_id === 'number') results.set(r.mutation_id, r);
    }
    const done: Item[] = [];
    let rotate: string | null = null;
    for (const item of batch) {
      const r = results.get(item.mutation.mutation_id);
      if (!r) continue;
      if (r.status === 'applied' && typeof r.version === 'number') {
        done.push(item);
        item.resolve({ version: r.version });
        this.emit('applied', { sessionId: item.sessionId, mutation: item.mutation, version: r.version });
      } else if (r.status === 'refused') {
        const error = typeof r.error === 'string' ? r.error : 'refused';
        const code = typeof r.code === 'string' ? r.code : inferRefusalCode(error);
        if (code === 'client_id_taken') {
          rotate = 'the client id belongs to another account';
          continue;
        }
        done.push(item);
        this.refuse(item, code, error);
      } else if (r.status === 'out_of_order') {
        const expected = r.expected;
        const head = this.items[0]?.mutation.mutation_id ?? 0;
        // Ids from `expected` on are still here: the next push starts at the head and the
        // server answers the ones it has. Ids below the head were dropped after their answer,
        // so the server lost them: only a new client id gets the queue moving again.
        if (typeof expected !== 'number' || expected < head) rotate = `the server expected mutation ${String(expected)}, which this client no longer has`;
      }
    }
    this.drop(done);
    this.backoff.reset();
    if (rotate) this.rotate(rotate);
  }

  private onPushError(batch: Item[], err: SwitchyardError): void {
    const sessionId = (batch[0] as Item).sessionId;
    if (err.code === 'disconnected' || err.code === 'closed') return; // the next welcome pushes again
    if (err.code === 'forbidden' || err.code === 'not_found') {
      // The whole session refuses us: nothing of it can land. Its ids were never stored.
      const gone = this.items.filter((i) => i.sessionId === sessionId);
      this.drop(gone);
      for (const i of gone) this.refuse(i, err.code, err.message);
      this.rotate(`session ${sessionId} refused the push (${err.code})`);
      return;
    }
    if ((err.code === 'invalid_request' || err.code === 'bad_request') && batch.length > 1) {
      // Perhaps the server's max batch is smaller than ours: halve and try again.
      this.batchLimit = Math.max(1, Math.floor(batch.length / 2));
      return;
    }
    if (err.code === 'invalid_request' || err.code === 'bad_request' || err.code === 'frame_too_large' || err.code === 'too_deep') {
      const item = batch[0] as Item;
      this.drop([item]);
      this.refuse(item, err.code === 'frame_too_large' || err.code === 'too_deep' ? 'limit_exceeded' : 'invalid', err.message);
      this.rotate('the server could not read a mutation');
      return;
    }
    const inMs = this.backoff.next();
    this.emit('retrying', { error: err, inMs });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.kick();
    }, inMs);
  }

  private refuse(item: Item, code: string, error: string): void {
    item.reject(new SwitchyardError('refused', error, { param: code }));
    this.emit('refused', { sessionId: item.sessionId, mutation: item.mutation, code, error });
  }

  private drop(done: Item[]): void {
    if (done.length === 0) return;
    const gone = new Set(done);
    this.items = this.items.filter((i) => !gone.has(i));
    const meta = { ...this.meta };
    const ids = done.map((i) => i.mutation.mutation_id);
    const write = this.writes.then(() => this.store.remove(meta, ids));
    this.writes = write.catch(() => {});
    for (const sessionId of new Set(done.map((i) => i.sessionId))) this.emit('changed', { sessionId });
  }

  /** A new client id; what is left is renumbered from 1 under it. */
  private rotate(reason: string): void {
    const previous = this.meta.clientId;
    this.meta.clientId = newClientId(this.opts.clientIdPrefix);
    this.meta.nextMutationId = 1;
    for (const i of this.items) {
      i.mutation.client_id = this.meta.clientId;
      i.mutation.mutation_id = this.meta.nextMutationId++;
    }
    const state = { ...this.meta, mutations: this.items.map((i) => ({ sessionId: i.sessionId, mutation: structuredClone(i.mutation) })) };
    // Renumbered mutations must be on disk before they go out under their new ids.
    for (const i of this.items) i.persisted = false;
    const write = this.writes.then(() => this.store.replace(state));
    this.writes = write.catch(() => {});
    const items = [...this.items];
    write.then(
      () => {
        for (const i of items) i.persisted = true;
        this.kick();
      },
      () => {},
    );
    this.emit('rotated', { previous, clientId: this.meta.clientId, reason });
    for (const sessionId of new Set(this.items.map((i) => i.sessionId))) this.emit('changed', { sessionId });
  }

  /** Resolves when every mutation queued so far is answered (applied or refused) and the store says so. */
  async drained(): Promise<void> {
    await this.ready;
    const all = [...this.items, ...this.early.map((e) => e.item)].map((i) => confirmedOf.get(i)?.catch(() => undefined));
    await Promise.all(all);
    await this.writes;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    await this.writes;
    await this.store.close?.();
  }
}

const confirmedOf = new WeakMap<Item, Promise<{ version: number }>>();
