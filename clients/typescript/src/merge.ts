/**
 * The merge rules, pure, mirroring src/sync/merge.rs line for line so a replica lands exactly
 * where the server does (test/fixtures/merge-vectors.json is replayed through both):
 *
 * - Fields, context keys and tags are last-writer-wins registers ordered by (hlc, client_id).
 *   A delete is a tombstone with its stamp, so a stale write cannot bring a key back. Within one
 *   mutation every op has the same stamp, so the first write to a key wins (ties do not).
 * - A message's position is the version at which its append was accepted, then its op index in
 *   the mutation (`seq`). Content edits are last-writer-wins against the append's or the last
 *   edit's stamp; a delete is final and beats any edit; a streaming message refuses client
 *   edits and deletes.
 * - A mutation applies whole or not at all (`strict`). Changes the server already accepted are
 *   applied `lenient`ly: an op this replica cannot apply (a message it never saw because a
 *   snapshot left deleted ones out) is skipped, the rest still lands.
 */

import { compareHlc, parseHlc, type Hlc } from './hlc.js';
import type { FieldName, Json, MessageRole, Op, Snapshot, SnapshotMessage, WireStamp } from './protocol.js';

export interface Stamp {
  hlc: Hlc;
  clientId: string;
}

export interface Register {
  /** `undefined` is a tombstone. */
  value: Json | undefined;
  /** `null`: written before this replica knew stamps (an old server's snapshot); any write wins. */
  stamp: Stamp | null;
}

export interface DocMessage {
  readonly id: string;
  readonly role: MessageRole;
  readonly content: string;
  readonly metadata: Json;
  /** Session version at which the append was accepted. */
  readonly position: number;
  /** Index of the append's op within its mutation. */
  readonly seq: number;
  readonly authorClient: string | null;
  readonly edit: Stamp | null;
  readonly deleted: boolean;
  readonly streaming: boolean;
}

/**
 * A session document. Messages are replaced, never changed in place, so a copy of the maps
 * (an optimistic overlay) can share message objects with the original.
 */
export interface Doc {
  registers: Map<string, Register>;
  messages: Map<string, DocMessage>;
  sessionDeleted: boolean;
}

export function emptyDoc(): Doc {
  return { registers: new Map(), messages: new Map(), sessionDeleted: false };
}

export function cloneDoc(d: Doc): Doc {
  return { registers: new Map(d.registers), messages: new Map(d.messages), sessionDeleted: d.sessionDeleted };
}

export const fieldKey = (f: string): string => `f:${f}`;
export const contextKey = (k: string): string => `c:${k}`;
export const tagKey = (t: string): string => `t:${t}`;

/** Compares strings by Unicode code point, which is the byte order of Rust's `String`. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    // Surrogates (non-BMP) sort after every BMP code unit in code point order.
    const sx = x >= 0xd800 && x <= 0xdfff;
    const sy = y >= 0xd800 && y <= 0xdfff;
    if (sx !== sy) return sx ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

export function compareStamp(a: Stamp, b: Stamp): number {
  return compareHlc(a.hlc, b.hlc) || compareCodePoints(a.clientId, b.clientId);
}

/** `stamp` beats `current` (strictly larger; unknown stamps always lose). */
function beats(stamp: Stamp, current: Stamp | null): boolean {
  return current === null || compareStamp(stamp, current) > 0;
}

export function stampFromWire(w: WireStamp | undefined): Stamp | null {
  if (!w || typeof w.hlc !== 'string' || typeof w.client_id !== 'string') return null;
  const hlc = parseHlc(w.hlc);
  return hlc ? { hlc, clientId: w.client_id } : null;
}

export interface MutationLike {
  client_id: string;
  hlc: string;
  ops: readonly Op[];
}

export type ApplyResult = { ok: true } | { ok: false; error: string };

/**
 * Applies `m`, accepted at `version`, to `doc` in place. `strict`: all or nothing, the way the
 * server decides (a refusal leaves `doc` unchanged). `lenient`: ops that cannot apply are
 * skipped (for changes the server already committed).
 */
export function applyMutation(doc: Doc, m: MutationLike, version: number, mode: 'strict' | 'lenient'): ApplyResult {
  const hlc = parseHlc(m.hlc);
  if (!hlc) return { ok: false, error: `bad hlc ${JSON.stringify(m.hlc)}` };
  const stamp: Stamp = { hlc, clientId: m.client_id };
  const undo: Array<() => void> = [];
  const setReg = (key: string, reg: Register): void => {
    const prev = doc.registers.get(key);
    undo.push(() => (prev === undefined ? doc.registers.delete(key) : doc.registers.set(key, prev)));
    doc.registers.set(key, reg);
  };
  const setMsg = (msg: DocMessage): void => {
    const prev = doc.messages.get(msg.id);
    undo.push(() => (prev === undefined ? doc.messages.delete(msg.id) : doc.messages.set(msg.id, prev)));
    doc.messages.set(msg.id, msg);
  };
  const write = (key: string, value: Json | undefined): void => {
    const cur = doc.registers.get(key);
    if (cur === undefined || beats(stamp, cur.stamp)) setReg(key, { value, stamp });
  };
  const append = (id: string, role: MessageRole, content: string, metadata: Json, seq: number, streaming: boolean): string | null => {
    if (doc.messages.has(id)) return `message id ${JSON.stringify(id)} is already used in this session`;
    setMsg({ id, role, content, metadata, position: version, seq, authorClient: m.client_id, edit: stamp, deleted: false, streaming });
    return null;
  };
  const streamingMsg = (id: string): DocMessage | string => {
    const msg = doc.messages.get(id);
    if (!msg) return `no message ${JSON.stringify(id)} in this session`;
    return msg.streaming ? msg : `message ${JSON.stringify(id)} is not streaming`;
  };
  const sessionDeletedBefore = doc.sessionDeleted;
  const rollback = (error: string): ApplyResult => {
    for (let u = undo.length - 1; u >= 0; u--) (undo[u] as () => void)();
    doc.sessionDeleted = sessionDeletedBefore;
    return { ok: false, error };
  };

  for (let i = 0; i < m.ops.length; i++) {
    const op = m.ops[i] as Op;
    let error: string | null = null;
    if (op === null || typeof op !== 'object') {
      error = 'an op must be an object';
      if (mode === 'strict') return rollback(error);
      continue;
    }
    switch (op.op) {
      case 'set_field':
        write(fieldKey(op.field), op.value);
        break;
      case 'set_context':
        write(contextKey(op.key), op.value);
        break;
      case 'delete_context':
        write(contextKey(op.key), undefined);
        break;
      case 'add_tag':
        write(tagKey(op.tag), true);
        break;
      case 'remove_tag':
        write(tagKey(op.tag), undefined);
        break;
      case 'append_message':
        error = append(op.message_id, op.role, op.content, op.metadata ?? null, i, false);
        break;
      case 'stream_start':
        error = append(op.message_id, 'assistant', '', op.metadata ?? null, i, true);
        break;
      case 'edit_message': {
        const msg = doc.messages.get(op.message_id);
        if (!msg) error = `no message ${JSON.stringify(op.message_id)} in this session`;
        else if (msg.streaming) error = `message ${JSON.stringify(op.message_id)} is still streaming; it cannot be edited yet`;
        // A delete is final: a concurrent edit loses silently.
        else if (!msg.deleted && beats(stamp, msg.edit)) setMsg({ ...msg, content: op.content, edit: stamp });
        break;
      }
      case 'delete_message': {
        const msg = doc.messages.get(op.message_id);
        if (!msg) error = `no message ${JSON.stringify(op.message_id)} in this session`;
        else if (msg.streaming) error = `message ${JSON.stringify(op.message_id)} is still streaming; it cannot be deleted yet`;
        // Final, and the content goes (the server drops it too).
        else if (!msg.deleted) setMsg({ ...msg, deleted: true, content: '' });
        break;
      }
      case 'stream_update': {
        const msg = streamingMsg(op.message_id);
        if (typeof msg === 'string') error = msg;
        else setMsg({ ...msg, content: op.content });
        break;
      }
      case 'stream_end': {
        const msg = streamingMsg(op.message_id);
        if (typeof msg === 'string') error = msg;
        else setMsg({ ...msg, content: op.content, metadata: op.metadata ?? null, streaming: false, edit: stamp });
        break;
      }
      case 'create_session':
        break;
      case 'delete_session':
        doc.sessionDeleted = true;
        break;
      default:
        // An op this SDK does not know (a newer server): the server applied it, we cannot.
        error = `unknown op ${JSON.stringify((op as { op?: unknown }).op)}`;
    }
    if (error !== null && mode === 'strict') return rollback(error);
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------------------------
// Views

export interface SessionState {
  version: number;
  fields: Partial<Record<FieldName, Json>>;
  context: Record<string, Json>;
  tags: string[];
  messages: DocMessage[];
}

/** Live registers by kind, tombstones left out; tags in the server's (byte) order. */
export function liveRegisters(doc: Doc): Pick<SessionState, 'fields' | 'context' | 'tags'> {
  const fields: Record<string, Json> = {};
  const context: Record<string, Json> = {};
  const tags: string[] = [];
  for (const [k, r] of doc.registers) {
    if (r.value === undefined) continue;
    const rest = k.slice(2);
    if (k.startsWith('f:')) fields[rest] = r.value;
    else if (k.startsWith('c:')) context[rest] = r.value;
    else if (k.startsWith('t:')) tags.push(rest);
  }
  tags.sort(compareCodePoints);
  return { fields: fields as Partial<Record<FieldName, Json>>, context, tags };
}

/** The transcript in order, deleted messages left out. */
export function transcript(doc: Doc): DocMessage[] {
  const v: DocMessage[] = [];
  for (const m of doc.messages.values()) if (!m.deleted) v.push(m);
  v.sort((a, b) => a.position - b.position || a.seq - b.seq);
  return v;
}

/** A replica document from a snapshot; registers without a stamp get an unknown one. */
export function docFromSnapshot(s: Snapshot): Doc {
  const doc = emptyDoc();
  const stamps = s.stamps ?? {};
  const put = (key: string, value: Json | undefined): void => {
    doc.registers.set(key, { value, stamp: stampFromWire(stamps[key]) });
  };
  for (const [f, v] of Object.entries(s.fields ?? {})) put(fieldKey(f), v);
  for (const [k, v] of Object.entries(s.context ?? {})) put(contextKey(k), v);
  for (const t of s.tags ?? []) put(tagKey(t), true);
  // Keys stamped but absent are tombstones: their stamp still beats older writes.
  for (const key of Object.keys(stamps)) if (!doc.registers.has(key)) put(key, undefined);
  for (const m of s.messages ?? []) doc.messages.set(m.id, messageFromSnapshot(m));
  return doc;
}

function messageFromSnapshot(m: SnapshotMessage): DocMessage {
  return {
    id: m.id,
    role: m.role,
    content: m.content,
    metadata: m.metadata ?? null,
    position: m.position,
    seq: m.seq ?? 0,
    authorClient: m.author_client ?? null,
    edit: stampFromWire(m.edit),
    deleted: false,
    streaming: m.streaming === true,
  };
}
