/**
 * The transcript: one list item per message, keyed by message id and updated in place (a
 * streaming answer changes only its text node), with each message's tool calls under it.
 * While a message streams it is `aria-busy`, so screen readers announce it once it is done
 * rather than token by token.
 */

import type { Json, ToolCall, ToolErrorEvent, ToolRecord, ToolResultEvent, ViewMessage } from '../../typescript/src/index.js';
import { h, setText, show } from './dom.js';
import { attachmentsOf, sizeText } from './attachments.js';

export interface ToolView {
  callId: string;
  name: string;
  arguments: Json;
  state: 'running' | 'ok' | 'error';
  detail: string;
  durationMs: number | null;
}

/** Tool calls by message id, from live `tool.*` events and the stored tool records. */
export class ToolCalls {
  private readonly byMessage = new Map<string, Map<string, ToolView>>();

  forMessage(id: string): ToolView[] {
    return [...(this.byMessage.get(id)?.values() ?? [])];
  }

  private slot(messageId: string, callId: string, name: string): ToolView {
    let m = this.byMessage.get(messageId);
    if (!m) this.byMessage.set(messageId, (m = new Map()));
    let v = m.get(callId);
    if (!v) m.set(callId, (v = { callId, name, arguments: null, state: 'running', detail: '', durationMs: null }));
    return v;
  }

  call(c: ToolCall): void {
    const v = this.slot(c.message_id, c.call_id, c.name);
    v.arguments = c.arguments;
  }

  result(r: ToolResultEvent): void {
    const v = this.slot(r.message_id, r.call_id, r.name);
    v.state = 'ok';
    v.detail = resultText(r.result);
    v.durationMs = r.duration_ms;
  }

  error(e: ToolErrorEvent): void {
    const v = this.slot(e.message_id, e.call_id, e.name);
    v.state = 'error';
    v.detail = `${e.code}: ${e.message}`;
    v.durationMs = e.duration_ms;
  }

  record(r: ToolRecord): void {
    const v = this.slot(r.message_id, r.call_id, r.name);
    if (v.state !== 'running' && v.durationMs !== null) return; // live events know better
    v.arguments = r.arguments;
    v.durationMs = r.duration_ms;
    if (r.status === 'ok') {
      v.state = 'ok';
      v.detail = resultText(r.result);
    } else {
      v.state = 'error';
      v.detail = r.error ?? r.status;
    }
  }
}

/** An MCP result's text parts, else the JSON. */
export function resultText(result: Json): string {
  if (result && typeof result === 'object' && !Array.isArray(result)) {
    const content = (result as { content?: unknown }).content;
    if (Array.isArray(content)) {
      const texts = content.map((c) => (c && typeof c === 'object' && typeof (c as { text?: unknown }).text === 'string' ? (c as { text: string }).text : '')).filter(Boolean);
      if (texts.length > 0) return texts.join('\n');
    }
    if (typeof (result as { text?: unknown }).text === 'string') return (result as { text: string }).text;
  }
  return typeof result === 'string' ? result : JSON.stringify(result);
}

function argsText(a: Json): string {
  if (a === null || a === undefined) return '';
  const s = JSON.stringify(a);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

const ROLE_LABEL: Record<string, string> = { user: 'User', assistant: 'Assistant', system: 'System', tool: 'Tool' };

interface Row {
  li: HTMLLIElement;
  who: HTMLElement;
  status: HTMLElement;
  content: HTMLElement;
  tools: HTMLUListElement;
  key: string;
}

function meta(m: ViewMessage): Record<string, Json> {
  return m.metadata && typeof m.metadata === 'object' && !Array.isArray(m.metadata) ? (m.metadata as Record<string, Json>) : {};
}

function statusOf(m: ViewMessage, online: boolean): { text: string; kind: string } {
  if (m.pending) return { text: online ? 'Sending…' : 'Queued: sent when you are back online', kind: 'pending' };
  if (m.streaming) return { text: 'Streaming…', kind: 'streaming' };
  const md = meta(m);
  if (md.status === 'cancelled') return { text: 'Cancelled', kind: 'cancelled' };
  if (md.status === 'failed') {
    const err = md.error as { message?: unknown } | undefined;
    return { text: `Failed${typeof err?.message === 'string' ? `: ${err.message}` : ''}`, kind: 'failed' };
  }
  return { text: '', kind: '' };
}

export class Transcript {
  readonly el: HTMLOListElement;
  private readonly rows = new Map<string, Row>();
  readonly empty: HTMLParagraphElement;

  constructor(private readonly scroller: () => HTMLElement) {
    this.el = h('ol', { class: 'transcript', role: 'log', 'aria-label': 'Transcript', 'aria-live': 'polite' });
    this.empty = h('p', { class: 'muted empty' }, 'No messages yet. Say something below; the assistant answers.');
  }

  render(messages: ViewMessage[], tools: ToolCalls, online: boolean): void {
    const box = this.scroller();
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 48;
    const seen = new Set<string>();
    let prev: Element | null = null;
    for (const m of messages) {
      seen.add(m.id);
      let row = this.rows.get(m.id);
      if (!row) {
        row = this.row(m);
        this.rows.set(m.id, row);
      }
      this.update(row, m, tools.forMessage(m.id), online);
      const want: Element | null = prev ? prev.nextElementSibling : this.el.firstElementChild;
      if (want !== row.li) this.el.insertBefore(row.li, want);
      prev = row.li;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) {
        row.li.remove();
        this.rows.delete(id);
      }
    }
    show(this.empty, messages.length === 0);
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  private row(m: ViewMessage): Row {
    const who = h('span', { class: 'who' });
    const status = h('span', { class: 'status' });
    const content = h('div', { class: 'content' });
    const tools = h('ul', { class: 'tools', 'aria-label': 'Tool calls' });
    const files = h('ul', { class: 'attachments', 'aria-label': 'Attached files' });
    for (const a of attachmentsOf(meta(m))) files.appendChild(h('li', { class: 'chip' }, `${a.filename} (${sizeText(a.size)})`));
    show(files, files.childElementCount > 0);
    const li = h('li', { class: `msg role-${m.role}`, 'data-message-id': m.id }, h('div', { class: 'msg-head' }, who, status), content, files, tools);
    return { li, who, status, content, tools, key: '' };
  }

  private update(row: Row, m: ViewMessage, calls: ToolView[], online: boolean): void {
    const md = meta(m);
    const model = typeof md.model === 'string' ? md.model : null;
    setText(row.who, `${ROLE_LABEL[m.role] ?? m.role}${m.role === 'assistant' && model ? ` · ${model}` : ''}`);
    const st = statusOf(m, online);
    setText(row.status, st.text);
    row.status.className = `status ${st.kind}`;
    row.li.classList.toggle('pending', m.pending);
    row.li.classList.toggle('streaming', m.streaming);
    if (m.streaming) row.li.setAttribute('aria-busy', 'true');
    else row.li.removeAttribute('aria-busy');
    setText(row.content, m.content);
    const key = JSON.stringify(calls);
    if (key !== row.key) {
      row.key = key;
      row.tools.replaceChildren(
        ...calls.map((c) =>
          h(
            'li',
            { class: `tool ${c.state}` },
            h('span', { class: 'tool-name' }, `${c.name}(${argsText(c.arguments)})`),
            ' ',
            h('span', { class: 'tool-state' }, c.state === 'running' ? 'running…' : c.state === 'ok' ? 'done' : 'failed'),
            c.durationMs !== null ? h('span', { class: 'muted' }, ` ${c.durationMs} ms`) : null,
            c.detail ? h('pre', { class: 'tool-detail' }, c.detail) : null,
          ),
        ),
      );
      show(row.tools, calls.length > 0);
    }
  }
}
