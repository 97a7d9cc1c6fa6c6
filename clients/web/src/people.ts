/**
 * Who is who. Presence carries user ids only, so every page announces its user's e-mail with an
 * ephemeral `hello` event when it joins a session and whenever someone else joins; the others
 * keep the names they heard. Typing indicators are ephemeral `typing` events, `{on}`, which
 * fade on their own if the "stopped" never comes.
 */

import type { BroadcastEvent, Member, SyncedSession } from '../../typescript/src/index.js';
import { EventHub } from '../../typescript/src/emitter.js';

export class Names extends EventHub<{ changed: void }> {
  private readonly byUser = new Map<string, string>();

  constructor(readonly me: { userId: string; email: string }) {
    super();
    this.byUser.set(me.userId, me.email);
  }

  name(userId: string): string {
    return this.byUser.get(userId) ?? `someone (${userId.slice(0, 8)}…)`;
  }

  heard(b: BroadcastEvent): void {
    if (b.event !== 'hello') return;
    const email = (b.data as { email?: unknown } | null)?.email;
    if (typeof email !== 'string' || email.length === 0 || email.length > 320) return;
    if (this.byUser.get(b.from.user_id) === email) return;
    this.byUser.set(b.from.user_id, email);
    this.emit('changed', undefined);
  }
}

export interface PersonHere {
  userId: string;
  name: string;
  me: boolean;
  connections: number;
}

/** Presence grouped by person, the signed-in user first. */
export function peopleHere(members: Member[], names: Names): PersonHere[] {
  const by = new Map<string, PersonHere>();
  for (const m of members) {
    const p = by.get(m.user_id);
    if (p) p.connections++;
    else by.set(m.user_id, { userId: m.user_id, name: names.name(m.user_id), me: m.user_id === names.me.userId, connections: 1 });
  }
  return [...by.values()].sort((a, b) => Number(b.me) - Number(a.me) || a.name.localeCompare(b.name));
}

const TYPING_TTL_MS = 6000;
const TYPING_RESEND_MS = 2500;
const TYPING_IDLE_MS = 3000;

/** Others typing in one session, and this page's own typing announcements. */
export class Typing extends EventHub<{ changed: void }> {
  private readonly others = new Map<string, { userId: string; until: number }>();
  private expiry: ReturnType<typeof setTimeout> | null = null;
  private lastSent = 0;
  private idle: ReturnType<typeof setTimeout> | null = null;
  private active = false;

  constructor(
    private readonly session: SyncedSession,
    private readonly myConn: () => string | null,
  ) {
    super();
  }

  heard(b: BroadcastEvent): void {
    if (b.event !== 'typing' || b.from.conn_id === this.myConn()) return;
    const on = (b.data as { on?: unknown } | null)?.on === true;
    if (on) this.others.set(b.from.conn_id, { userId: b.from.user_id, until: Date.now() + TYPING_TTL_MS });
    else if (!this.others.delete(b.from.conn_id)) return;
    this.schedule();
    this.emit('changed', undefined);
  }

  /** A connection left: its typing goes with it. */
  left(connId: string): void {
    if (this.others.delete(connId)) this.emit('changed', undefined);
  }

  /** User ids typing now (one entry per person). */
  typers(): string[] {
    const now = Date.now();
    const users = new Set<string>();
    for (const t of this.others.values()) if (t.until > now) users.add(t.userId);
    return [...users];
  }

  private schedule(): void {
    if (this.expiry !== null) clearTimeout(this.expiry);
    this.expiry = null;
    const now = Date.now();
    let next = Infinity;
    for (const [k, t] of this.others) {
      if (t.until <= now) this.others.delete(k);
      else next = Math.min(next, t.until);
    }
    if (next !== Infinity) {
      this.expiry = setTimeout(() => {
        this.schedule();
        this.emit('changed', undefined);
      }, next - now + 10);
    }
  }

  /** The user typed in the composer. */
  typed(): void {
    const now = Date.now();
    if (!this.active || now - this.lastSent > TYPING_RESEND_MS) {
      this.active = true;
      this.lastSent = now;
      this.send(true);
    }
    if (this.idle !== null) clearTimeout(this.idle);
    this.idle = setTimeout(() => this.stopped(), TYPING_IDLE_MS);
  }

  /** Sent, cleared or left the composer. */
  stopped(): void {
    if (this.idle !== null) clearTimeout(this.idle);
    this.idle = null;
    if (!this.active) return;
    this.active = false;
    this.send(false);
  }

  private send(on: boolean): void {
    // Ephemeral: when it cannot be delivered (offline) it is simply lost.
    if (!this.session.channel.live) return;
    this.session.publish('typing', { on }).catch(() => {});
  }

  dispose(): void {
    if (this.expiry !== null) clearTimeout(this.expiry);
    if (this.idle !== null) clearTimeout(this.idle);
  }
}

export function typingText(userIds: string[], names: Names): string {
  const n = userIds.map((u) => names.name(u));
  if (n.length === 0) return '';
  if (n.length === 1) return `${n[0]} is typing…`;
  if (n.length === 2) return `${n[0]} and ${n[1]} are typing…`;
  return `${n.length} people are typing…`;
}
