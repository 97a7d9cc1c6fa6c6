/**
 * Questions the user's MCP servers ask during a tool call (`mcp.elicitation`): each shows as a
 * small form built from its requested schema (text, number, yes/no, a choice), answered with
 * Send or Decline. It leaves when answered here, on another device, or when it times out.
 */

import type { Elicitation, Json, Switchyard } from '../../typescript/src/index.js';
import { errorText, h, replace, setText, uid } from './dom.js';

interface Field {
  name: string;
  schema: { type?: string; title?: string; description?: string; default?: Json; enum?: Json[] };
  required: boolean;
}

function fields(q: Elicitation): Field[] {
  const s = q.requested_schema as { properties?: Record<string, Field['schema']>; required?: string[] } | null;
  const req = new Set(s?.required ?? []);
  return Object.entries(s?.properties ?? {}).map(([name, schema]) => ({ name, schema, required: req.has(name) }));
}

/** One input per field; `read` collects what the user entered (empty optional fields left out). */
function input(f: Field): { el: HTMLElement; read: () => Json | undefined } {
  const id = uid(`q-${f.name}`);
  const label = h('label', { for: id }, f.schema.title ?? f.name, f.required ? ' *' : '');
  const d = f.schema.default;
  if (Array.isArray(f.schema.enum)) {
    const sel = h('select', { id }, f.schema.enum.map((v) => h('option', { value: String(v), selected: v === d }, String(v))));
    return { el: h('div', { class: 'field' }, label, sel), read: () => sel.value };
  }
  if (f.schema.type === 'boolean') {
    const box = h('input', { id, type: 'checkbox', checked: d === true });
    return { el: h('div', { class: 'field check' }, box, label), read: () => box.checked };
  }
  const numeric = f.schema.type === 'number' || f.schema.type === 'integer';
  const inp = h('input', { id, type: numeric ? 'number' : 'text', required: f.required, value: d === undefined ? undefined : String(d), step: f.schema.type === 'integer' ? 1 : 'any' });
  return {
    el: h('div', { class: 'field' }, label, inp),
    read: () => (inp.value === '' ? undefined : numeric ? Number(inp.value) : inp.value),
  };
}

function card(sy: Switchyard, q: Elicitation, status: HTMLElement): HTMLElement {
  const inputs = fields(q).map((f) => ({ f, ...input(f) }));
  const send = h('button', { type: 'submit' }, 'Send');
  const decline = h('button', { type: 'button', class: 'link' }, 'Decline');
  const answer = (action: 'accept' | 'decline', content?: Record<string, Json>): void => {
    send.disabled = decline.disabled = true;
    sy.answerElicitation(q.elicitation_id, action, content)
      .then(() => setText(status, action === 'accept' ? `Sent to ${q.server}.` : `Declined ${q.server}'s question.`))
      .catch((e: unknown) => setText(status, `Could not answer: ${errorText(e)}`))
      .finally(() => (send.disabled = decline.disabled = false));
  };
  decline.addEventListener('click', () => answer('decline'));
  const form = h('form', { class: 'question', 'aria-label': `Question from ${q.server}` }, h('p', { class: 'q-message' }, h('strong', {}, q.server), ': ', q.message), inputs.map((i) => i.el), send, decline);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const content: Record<string, Json> = {};
    for (const i of inputs) {
      const v = i.read();
      if (v !== undefined) content[i.f.name] = v;
    }
    answer('accept', content);
  });
  return form;
}

export function questionsPanel(sy: Switchyard): HTMLElement {
  const list = h('div', { class: 'question-list' });
  const status = h('p', { class: 'muted', role: 'status' });
  const section = h('section', { class: 'questions', 'aria-labelledby': 'questions-heading' }, h('h2', { id: 'questions-heading' }, 'Questions from MCP servers'), list, status);
  const render = (): void => {
    const open = sy.mcp.elicitations;
    section.hidden = open.length === 0 && status.textContent === '';
    replace(list, open.map((q) => card(sy, q, status)));
  };
  sy.mcp.on('elicitation', render);
  sy.mcp.on('elicitation.ended', render);
  render();
  return section;
}
