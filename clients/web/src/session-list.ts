/**
 * The sidebar's session list: `session.list` over the socket, fetched again whenever the user
 * channel says `session.list_changed` (created, shared, revoked, updated) and after every
 * reconnect; the open session's title comes from its live view, so an edit shows here at once.
 */

import type { SessionInfo, Switchyard } from '../../typescript/src/index.js';
import { isSwitchyardError } from '../../typescript/src/index.js';
import { coalesce, errorText, h, replace, setText, uid } from './dom.js';

function ago(iso: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

export class SessionList {
  readonly el: HTMLElement;
  private items: SessionInfo[] = [];
  private loaded = false;
  private readonly live = new Map<string, string>();
  private current: string | null = null;
  private readonly list: HTMLUListElement;
  private readonly status: HTMLElement;
  private readonly newTitle: HTMLInputElement;
  private readonly createButton: HTMLButtonElement;
  private readonly createError: HTMLElement;
  private readonly draw = coalesce(() => this.render());
  private fetching = false;
  private again = false;

  constructor(
    private readonly sy: Switchyard,
    private readonly open: (id: string) => void,
    /** The list changed (roles may have: the open view wants to know). */
    private readonly changed: () => void = () => {},
  ) {
    const titleId = uid('new-title');
    this.newTitle = h('input', { id: titleId, type: 'text', maxlength: 200, placeholder: 'Title (optional)', autocomplete: 'off' });
    this.createButton = h('button', { type: 'submit', class: 'primary' }, 'New session');
    this.createError = h('p', { class: 'form-error', role: 'alert' });
    const form = h(
      'form',
      { class: 'new-session', onsubmit: (ev: Event) => this.create(ev) },
      h('label', { for: titleId, class: 'visually-hidden' }, 'Title of the new session'),
      this.newTitle,
      this.createButton,
    );
    this.list = h('ul', { class: 'session-list' });
    this.status = h('p', { class: 'muted', role: 'status' }, 'Loading sessions…');
    this.el = h('nav', { class: 'sessions', 'aria-labelledby': 'sessions-heading' }, h('h2', { id: 'sessions-heading' }, 'Sessions'), form, this.createError, this.status, this.list);

    sy.on('user', (ev) => {
      if (ev.event === 'session.list_changed') void this.refresh();
    });
    sy.on('welcome', () => void this.refresh());
    if (sy.state === 'connected') void this.refresh();
  }

  get sessions(): SessionInfo[] {
    return this.items;
  }

  info(id: string): SessionInfo | undefined {
    return this.items.find((s) => s.id === id);
  }

  setCurrent(id: string | null): void {
    this.current = id;
    this.draw();
  }

  /** The open session's title as its view shows it (optimistic). */
  liveTitle(id: string, title: string): void {
    if (this.live.get(id) === title) return;
    this.live.set(id, title);
    this.draw();
  }

  forgetLive(id: string): void {
    this.live.delete(id);
    this.draw();
  }

  async refresh(): Promise<void> {
    if (this.fetching) {
      this.again = true;
      return;
    }
    this.fetching = true;
    try {
      const all: SessionInfo[] = [];
      let after: string | undefined;
      for (let page = 0; page < 10; page++) {
        const r = await this.sy.request<{ data?: SessionInfo[]; next_cursor?: string | null }>('session.list', after ? { after, limit: 100 } : { limit: 100 });
        all.push(...(r.data ?? []));
        if (!r.next_cursor) break;
        after = r.next_cursor;
      }
      this.items = all;
      this.loaded = true;
      this.changed();
    } catch (e) {
      if (!isSwitchyardError(e) || e.code !== 'disconnected') setText(this.status, `Could not load the sessions: ${errorText(e)}`);
    } finally {
      this.fetching = false;
    }
    this.draw();
    if (this.again) {
      this.again = false;
      void this.refresh();
    }
  }

  private create(ev: Event): void {
    ev.preventDefault();
    const title = this.newTitle.value.trim();
    this.createButton.disabled = true;
    setText(this.createError, '');
    this.sy.rest
      .createSession(title ? { title } : {})
      .then((info) => {
        this.newTitle.value = '';
        if (!this.items.some((s) => s.id === info.id)) this.items = [{ ...info, role: 'owner' }, ...this.items];
        this.draw();
        this.open(info.id);
      })
      .catch((e: unknown) =>
        setText(this.createError, isSwitchyardError(e) && e.code === 'network_error' ? 'Creating a session needs a connection. Try again when you are online.' : `Could not create a session: ${errorText(e)}`),
      )
      .finally(() => (this.createButton.disabled = false));
  }

  private render(): void {
    if (this.loaded) setText(this.status, this.items.length === 0 ? 'No sessions yet. Create one above.' : '');
    const rows = this.items.map((s) => {
      const title = (this.live.get(s.id) ?? s.title) || 'Untitled session';
      const shared = s.role && s.role !== 'owner' ? `shared · ${s.role}` : '';
      const sub = [shared, ago(s.updated_at)].filter(Boolean).join(' · ');
      return h(
        'li',
        {},
        h(
          'a',
          { href: `#/s/${s.id}`, class: 'session-link', 'aria-current': s.id === this.current ? 'page' : undefined, 'data-session-id': s.id },
          h('span', { class: 'session-title' }, title),
          h('span', { class: 'session-sub' }, sub),
        ),
      );
    });
    const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset.sessionId : undefined;
    replace(this.list, rows);
    if (focused) this.list.querySelector<HTMLElement>(`[data-session-id="${CSS.escape(focused)}"]`)?.focus();
  }
}
