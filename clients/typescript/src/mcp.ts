/**
 * The status of the user's MCP servers, from `mcp.status` events on the `user:<id>` channel:
 * right after `welcome` one event carries every server; later ones carry those that changed.
 * Also the servers' open questions to the user (`mcp.elicitation`), until they end; answer one
 * with `Switchyard.answerElicitation`.
 */

import { EventHub } from './emitter.js';
import type { Elicitation, ElicitationEnded, McpStatus } from './protocol.js';
import type { ServerEvent } from './channels.js';

export class McpStatuses extends EventHub<{
  status: McpStatus;
  servers: McpStatus[];
  elicitation: Elicitation;
  'elicitation.ended': ElicitationEnded;
}> {
  private readonly byId = new Map<string, McpStatus>();
  private readonly asks = new Map<string, Elicitation>();

  /** Questions still open (an `ended` missed while offline is covered by `expires_at`). */
  get elicitations(): Elicitation[] {
    const now = Date.now();
    for (const [id, q] of this.asks) if (q.expires_at <= now) this.asks.delete(id);
    return [...this.asks.values()];
  }
  /** The next event is the full list sent after a (re)connect. */
  private expectFull = true;

  get servers(): McpStatus[] {
    return [...this.byId.values()];
  }

  get(serverId: string): McpStatus | undefined {
    return this.byId.get(serverId);
  }

  /** Calls `fn` with the server's status now (if known) and on every change; returns an unsubscribe. */
  watch(serverId: string, fn: (s: McpStatus) => void): () => void {
    const now = this.byId.get(serverId);
    if (now) fn(now);
    return this.on('status', (s) => {
      if (s.server_id === serverId) fn(s);
    });
  }

  /** A new connection: its first `mcp.status` replaces what we knew. */
  reconnected(): void {
    this.expectFull = true;
  }

  onEvent(ev: ServerEvent): void {
    if (ev.event === 'mcp.elicitation' || ev.event === 'mcp.elicitation.ended') return this.onQuestion(ev);
    if (ev.event !== 'mcp.status') return;
    const servers = (ev.data as { servers?: unknown } | null)?.servers;
    if (!Array.isArray(servers)) return;
    if (this.expectFull) {
      this.byId.clear();
      this.expectFull = false;
    }
    for (const s of servers as McpStatus[]) {
      if (!s || typeof s !== 'object' || typeof s.server_id !== 'string') continue;
      const prev = this.byId.get(s.server_id);
      if (prev && typeof prev.updated_at === 'number' && typeof s.updated_at === 'number' && s.updated_at < prev.updated_at) continue;
      this.byId.set(s.server_id, s);
      this.emit('status', s);
    }
    this.emit('servers', this.servers);
  }

  private onQuestion(ev: ServerEvent): void {
    const d = ev.data as { elicitation_id?: unknown } | null;
    if (!d || typeof d.elicitation_id !== 'string') return;
    if (ev.event === 'mcp.elicitation') {
      const q = d as unknown as Elicitation;
      this.asks.set(q.elicitation_id, q);
      this.emit('elicitation', q);
    } else {
      this.asks.delete(d.elicitation_id);
      this.emit('elicitation.ended', d as unknown as ElicitationEnded);
    }
  }
}
