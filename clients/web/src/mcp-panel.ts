/**
 * The user's MCP servers as the server reports them (`mcp.status` on the user channel:
 * connecting, ready with its tools, error with the reason and the next retry, stopped), with a
 * small form to add a Streamable HTTP server and a button to remove one.
 */

import type { McpStatus, Switchyard } from '../../typescript/src/index.js';
import { errorText, h, replace, setText, uid } from './dom.js';

function stateText(s: McpStatus): string {
  switch (s.state) {
    case 'ready':
      return `ready · ${s.tool_count} ${s.tool_count === 1 ? 'tool' : 'tools'}`;
    case 'connecting':
      return 'connecting…';
    case 'error': {
      const retry = typeof s.next_retry_at === 'number' ? `; retrying in ${Math.max(0, Math.round((s.next_retry_at - Date.now()) / 1000))} s` : '';
      return `error: ${s.error ?? 'unknown'}${retry}`;
    }
    case 'stopped':
      return 'stopped';
    default:
      return String(s.state);
  }
}

export function mcpPanel(sy: Switchyard): HTMLElement {
  const list = h('ul', { class: 'mcp-list' });
  const empty = h('p', { class: 'muted' }, 'No MCP servers. Add one to offer its tools to the assistant.');
  const status = h('p', { class: 'muted', role: 'status' });

  const render = (): void => {
    const servers = [...sy.mcp.servers].sort((a, b) => a.name.localeCompare(b.name));
    empty.hidden = servers.length > 0;
    replace(
      list,
      servers.map((s) =>
        h(
          'li',
          { class: `mcp-server state-${s.state}` },
          h('span', { class: 'dot', 'aria-hidden': 'true' }),
          h('span', { class: 'mcp-name' }, s.name),
          ' ',
          h('span', { class: 'mcp-state' }, stateText(s)),
          h(
            'button',
            {
              type: 'button',
              class: 'link',
              'aria-label': `Remove MCP server ${s.name}`,
              onclick: () => {
                sy.request('mcp.delete', { server_id: s.server_id })
                  .then(() => setText(status, `Removed ${s.name}.`))
                  .catch((e: unknown) => setText(status, `Could not remove ${s.name}: ${errorText(e)}`));
              },
            },
            'Remove',
          ),
          s.state === 'ready' && s.tools.length > 0 ? h('span', { class: 'mcp-tools muted' }, `Tools: ${s.tools.map((t) => t.name).join(', ')}`) : null,
        ),
      ),
    );
  };
  sy.mcp.on('servers', render);
  sy.mcp.on('status', render);

  const nameId = uid('mcp-name');
  const urlId = uid('mcp-url');
  const name = h('input', { id: nameId, type: 'text', required: true, maxlength: 64, autocomplete: 'off', placeholder: 'files' });
  const url = h('input', { id: urlId, type: 'url', required: true, autocomplete: 'off', placeholder: 'https://mcp.example.com/mcp' });
  const add = h('button', { type: 'submit' }, 'Add server');
  const form = h(
    'form',
    { class: 'mcp-form' },
    h('div', { class: 'field' }, h('label', { for: nameId }, 'Name'), name),
    h('div', { class: 'field' }, h('label', { for: urlId }, 'Streamable HTTP URL'), url),
    add,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!name.value.trim() || !url.value.trim()) {
      setText(status, 'A server needs a name and a URL.');
      return;
    }
    add.disabled = true;
    sy.request('mcp.create', { server: { name: name.value.trim(), transport: 'http', url: url.value.trim() } })
      .then(() => {
        setText(status, `Added ${name.value.trim()}; connecting…`);
        name.value = url.value = '';
      })
      .catch((e: unknown) => setText(status, `Could not add the server: ${errorText(e)}`))
      .finally(() => (add.disabled = false));
  });

  render();
  return h('section', { class: 'mcp', 'aria-labelledby': 'mcp-heading' }, h('h2', { id: 'mcp-heading' }, 'MCP servers'), empty, list, status, h('details', {}, h('summary', {}, 'Add a server'), form));
}
