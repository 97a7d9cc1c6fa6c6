/**
 * One session, live: its title and tags (sync mutations, shown at once and confirmed by the
 * server), who is here and who is typing (presence and ephemeral events), the transcript with
 * the assistant's answer streaming in, tool calls as they happen, sharing, and the composer.
 */

import type { SessionInfo, Switchyard, SyncedSession } from '../../typescript/src/index.js';
import { isSwitchyardError } from '../../typescript/src/index.js';
import { coalesce, errorText, h, plural, replace, setText, show, uid } from './dom.js';
import { peopleHere, Typing, typingText, type Names } from './people.js';
import { ToolCalls, Transcript } from './transcript.js';
import { AttachTray } from './attachments.js';

export interface SessionContext {
  /** The socket is up (sends go out now). */
  online(): boolean;
  /** The session's title changed in the view (the list shows it at once). */
  titleChanged(id: string, title: string): void;
}

const MAX_TAG = 64;

export class SessionView {
  readonly el: HTMLElement;
  readonly session: SyncedSession;
  private info: SessionInfo | undefined;
  private readonly offs: Array<() => void> = [];
  private readonly typing: Typing;
  private readonly tools = new ToolCalls();
  private readonly transcript: Transcript;
  private readonly render = coalesce(() => this.draw());
  private knownConns = new Set<string>();
  private helloTimer: ReturnType<typeof setTimeout> | null = null;
  private loaded = false;
  private ended: string | null = null;

  private readonly titleInput: HTMLInputElement;
  private readonly roleBadge: HTMLElement;
  private readonly people: HTMLUListElement;
  private readonly tagList: HTMLUListElement;
  private readonly tagForm: HTMLFormElement;
  private readonly tagInput: HTMLInputElement;
  private readonly share: HTMLDetailsElement;
  private readonly typingLine: HTMLElement;
  private readonly error: HTMLElement;
  private readonly composer: HTMLTextAreaElement;
  private readonly sendButton: HTMLButtonElement;
  private readonly cancelButton: HTMLButtonElement;
  private readonly composerHint: HTMLElement;
  private readonly attach: AttachTray;
  private readonly scroll: HTMLElement;
  private readonly loading: HTMLElement;

  constructor(
    private readonly sy: Switchyard,
    readonly id: string,
    private readonly names: Names,
    private readonly ctx: SessionContext,
    info: SessionInfo | undefined,
  ) {
    this.info = info;
    this.session = sy.session(id);
    const s = this.session;
    this.typing = new Typing(s, () => sy.connection.welcome?.conn_id ?? null);

    const titleId = uid('title');
    this.titleInput = h('input', { id: titleId, class: 'title-input', type: 'text', maxlength: 200, placeholder: 'Untitled session', autocomplete: 'off', enterkeyhint: 'done' });
    this.titleInput.addEventListener('change', () => this.commitTitle());
    this.titleInput.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        this.commitTitle();
      } else if (ev.key === 'Escape') {
        this.titleInput.value = this.currentTitle();
        this.titleInput.blur();
      }
    });
    this.roleBadge = h('span', { class: 'badge role' });

    this.people = h('ul', { class: 'people', 'aria-label': 'People here' });

    this.tagList = h('ul', { class: 'tags', 'aria-label': 'Tags' });
    const tagId = uid('tag');
    this.tagInput = h('input', { id: tagId, type: 'text', maxlength: MAX_TAG, placeholder: 'add a tag', autocomplete: 'off', enterkeyhint: 'done', autocapitalize: 'off' });
    this.tagForm = h(
      'form',
      { class: 'tag-form', onsubmit: (ev: Event) => this.addTag(ev) },
      h('label', { for: tagId, class: 'visually-hidden' }, 'New tag'),
      this.tagInput,
      h('button', { type: 'submit' }, 'Add tag'),
    );

    this.share = this.shareForm();

    this.typingLine = h('p', { class: 'typing', 'aria-live': 'polite' });
    this.error = h('p', { class: 'form-error', role: 'alert' });

    const composerId = uid('composer');
    const hintId = uid('composer-hint');
    this.composer = h('textarea', { id: composerId, class: 'composer-input', rows: 2, placeholder: 'Message (Enter sends, Shift+Enter for a new line)', 'aria-describedby': hintId, enterkeyhint: 'send' });
    this.composer.addEventListener('input', () => (this.composer.value.trim() ? this.typing.typed() : this.typing.stopped()));
    this.composer.addEventListener('blur', () => this.typing.stopped());
    this.composer.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.sendMessage();
      }
    });
    this.sendButton = h('button', { type: 'submit', class: 'primary' }, 'Send');
    this.cancelButton = h('button', { type: 'button', class: 'danger', hidden: true, onclick: () => this.cancelTurn() }, 'Cancel reply');
    this.composerHint = h('p', { id: hintId, class: 'hint' });
    this.attach = new AttachTray(sy.rest, id, () => this.render());
    const composerForm = h(
      'form',
      {
        class: 'composer',
        onsubmit: (ev: Event) => {
          ev.preventDefault();
          this.sendMessage();
        },
      },
      h('label', { for: composerId, class: 'visually-hidden' }, 'Message'),
      this.composer,
      this.attach.el,
      h('div', { class: 'composer-actions' }, this.attach.button, this.cancelButton, this.sendButton),
      this.composerHint,
    );

    this.transcript = new Transcript(() => this.scroll);
    this.loading = h('p', { class: 'muted empty' }, 'Loading the session…');
    this.scroll = h('div', { class: 'scroll' }, this.loading, this.transcript.empty, this.transcript.el);
    show(this.transcript.empty, false);

    this.el = h(
      'section',
      { class: 'session', 'aria-labelledby': titleId },
      h(
        'header',
        { class: 'session-head' },
        h('div', { class: 'title-row' }, h('a', { href: '#/', class: 'back' }, h('span', { 'aria-hidden': 'true' }, '←'), ' Sessions'), h('label', { for: titleId, class: 'visually-hidden' }, 'Session title'), this.titleInput, this.roleBadge),
        h('div', { class: 'meta-row' }, h('div', { class: 'presence' }, h('span', { class: 'label', 'aria-hidden': 'true' }, 'Here:'), this.people), h('div', { class: 'tag-box' }, this.tagList, this.tagForm)),
        this.share,
      ),
      this.scroll,
      h('footer', { class: 'session-foot' }, this.typingLine, this.error, composerForm),
    );

    this.offs.push(
      s.on('change', () => this.render()),
      s.on('synced', () => {
        this.loaded = true;
        this.sayHello();
        this.render();
      }),
      s.on('presence', ({ members }) => {
        const now = new Set(members.map((m) => m.conn_id));
        const mine = sy.connection.welcome?.conn_id;
        let joined = false;
        for (const c of now) if (!this.knownConns.has(c) && c !== mine) joined = true;
        for (const c of this.knownConns) if (!now.has(c)) this.typing.left(c);
        this.knownConns = now;
        // Someone new: tell them who we are (they cannot tell from presence).
        if (joined) this.sayHello();
        this.render();
      }),
      s.on('broadcast', (b) => {
        this.names.heard(b);
        this.typing.heard(b);
      }),
      s.on('event', (ev) => {
        const d = ev.data as never;
        if (ev.event === 'tool.call') this.tools.call(d);
        else if (ev.event === 'tool.result') this.tools.result(d);
        else if (ev.event === 'tool.error') this.tools.error(d);
        else return;
        this.render();
      }),
      s.on('refused', (r) => setText(this.error, `A change was refused by the server: ${r.error}`)),
      s.on('reset', ({ reason }) => {
        if (reason === 'ahead') setText(this.error, 'The server had an older copy of this session; your unsent changes were sent again.');
      }),
      s.on('ended', (e) => {
        this.ended = e.code === 'forbidden' ? 'You no longer have access to this session.' : `This session is closed: ${e.message}`;
        this.render();
      }),
      this.typing.on('changed', () => this.render()),
      names.on('changed', () => this.render()),
    );
    s.ready().then(
      () => {
        this.loaded = true;
        this.render();
        void this.loadTools();
      },
      (e: unknown) => {
        this.ended = isSwitchyardError(e) && e.code === 'forbidden' ? 'You do not have access to this session (or it does not exist).' : `Could not open this session: ${errorText(e)}`;
        this.render();
      },
    );
    if (s.channel.live) {
      this.loaded = true;
      this.sayHello();
    }
    this.draw();
  }

  setInfo(info: SessionInfo | undefined): void {
    this.info = info;
    this.render();
  }

  /** The online/offline state changed: composer wording, queued labels. */
  connectivityChanged(): void {
    this.render();
  }

  private get role(): string {
    return this.info?.role ?? 'owner';
  }

  private get canEdit(): boolean {
    return this.role !== 'viewer' && this.ended === null;
  }

  private currentTitle(): string {
    const t = this.session.state.fields.title;
    return typeof t === 'string' ? t : '';
  }

  private commitTitle(): void {
    if (!this.canEdit) return;
    const v = this.titleInput.value.trim();
    if (v === this.currentTitle()) return;
    this.session.setTitle(v);
  }

  private addTag(ev: Event): void {
    ev.preventDefault();
    const tag = this.tagInput.value.trim();
    if (!tag || !this.canEdit) return;
    if (!this.session.state.tags.includes(tag)) this.session.addTag(tag);
    this.tagInput.value = '';
    this.tagInput.focus();
  }

  private sayHello(): void {
    if (this.helloTimer !== null) return;
    this.helloTimer = setTimeout(() => {
      this.helloTimer = null;
      if (!this.session.channel.live) return;
      this.session.publish('hello', { email: this.names.me.email }).catch(() => {});
    }, 50);
  }

  private async loadTools(): Promise<void> {
    try {
      const r = await this.sy.request<{ data?: unknown }>('tool.list', { session_id: this.id, limit: 100 });
      if (Array.isArray(r.data)) for (const rec of r.data) this.tools.record(rec as never);
      this.render();
    } catch {
      /* tool history is a nicety; live events still show */
    }
  }

  private sendMessage(): void {
    const text = this.composer.value.trim();
    if (!text || !this.canEdit) return;
    setText(this.error, '');
    this.typing.stopped();
    if (!this.ctx.online()) {
      // Offline: the message is a queued sync change, added to the transcript on reconnect.
      this.session.appendMessage(text);
      this.composer.value = '';
      return;
    }
    if (this.session.chat.active) {
      setText(this.error, 'The assistant is still answering. Wait for it, or cancel the reply.');
      return;
    }
    if (this.attach.busy) {
      setText(this.error, 'Wait for the files to finish uploading.');
      return;
    }
    const files = this.attach.take();
    const turn = this.session.send(text, { files: files.map((f) => f.id) });
    this.composer.value = '';
    turn.started.catch((e: unknown) => {
      if (!this.composer.value) this.composer.value = text;
      this.attach.restore(files);
      setText(this.error, isSwitchyardError(e) && e.code === 'turn_active' ? 'The assistant is still answering. Wait for it, or cancel the reply.' : `Not sent: ${errorText(e)}`);
    });
    turn.done.then(
      (r) => {
        if (r.status === 'failed') setText(this.error, `The reply failed: ${r.error?.message ?? 'unknown error'}`);
        this.render();
      },
      () => this.render(),
    );
    this.render();
  }

  private cancelTurn(): void {
    const t = this.session.chat.active;
    if (!t) return;
    this.cancelButton.disabled = true;
    t.cancel()
      .catch((e: unknown) => setText(this.error, `Could not cancel: ${errorText(e)}`))
      .finally(() => {
        this.cancelButton.disabled = false;
        this.render();
      });
  }

  private shareForm(): HTMLDetailsElement {
    const emailId = uid('share-email');
    const roleId = uid('share-role');
    const email = h('input', { id: emailId, type: 'email', required: true, autocomplete: 'off', placeholder: 'name@example.com', inputmode: 'email', autocapitalize: 'off' });
    const role = h('select', { id: roleId }, h('option', { value: 'editor' }, 'Editor (can edit and chat)'), h('option', { value: 'viewer' }, 'Viewer (read only)'));
    const status = h('p', { class: 'muted', role: 'status' });
    const button = h('button', { type: 'submit', class: 'primary' }, 'Share');
    const form = h(
      'form',
      { class: 'share-form' },
      h('div', { class: 'field' }, h('label', { for: emailId }, 'E-mail of the person'), email),
      h('div', { class: 'field' }, h('label', { for: roleId }, 'Access'), role),
      button,
      status,
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const addr = email.value.trim();
      if (!addr) {
        setText(status, 'Enter an e-mail address.');
        email.focus();
        return;
      }
      button.disabled = true;
      setText(status, 'Sharing…');
      const r = role.value === 'viewer' ? 'viewer' : 'editor';
      this.sy.rest
        .share(this.id, addr, r)
        .then(() => {
          setText(status, `Shared with ${addr} as ${r}.`);
          email.value = '';
        })
        .catch((e: unknown) => setText(status, isSwitchyardError(e) && e.code === 'network_error' ? 'Sharing needs a connection. Try again when you are online.' : `Could not share: ${errorText(e)}`))
        .finally(() => (button.disabled = false));
    });
    return h('details', { class: 'share' }, h('summary', {}, 'Share this session'), form);
  }

  private draw(): void {
    const st = this.session.state;
    const online = this.ctx.online();
    const title = this.currentTitle();
    if (document.activeElement !== this.titleInput && this.titleInput.value !== title) this.titleInput.value = title;
    this.ctx.titleChanged(this.id, title);
    document.title = `${title || 'Untitled session'} · switchyard`;

    const role = this.role;
    setText(this.roleBadge, role);
    show(this.roleBadge, role !== 'owner');
    show(this.share, role === 'owner' && this.ended === null);
    const editable = this.canEdit;
    this.titleInput.readOnly = !editable;
    show(this.tagForm, editable);

    // People here
    // Offline, presence is unknown: say so rather than show who was there.
    const here = this.session.channel.live ? peopleHere(this.session.presence, this.names) : [];
    const key = JSON.stringify([here, this.session.channel.live]);
    if (this.people.dataset.key !== key) {
      this.people.dataset.key = key;
      replace(
        this.people,
        !this.session.channel.live ? h('li', { class: 'muted' }, this.loaded ? 'unknown while offline' : '…') : null,
        here.map((p) =>
          h(
            'li',
            { class: `person${p.me ? ' me' : ''}`, 'data-user-id': p.userId },
            h('span', { class: 'dot', 'aria-hidden': 'true' }),
            p.name,
            p.me ? h('span', { class: 'muted' }, ' (you)') : null,
            p.connections > 1 ? h('span', { class: 'muted' }, ` · ${plural(p.connections, 'tab')}`) : null,
          ),
        ),
      );
    }

    // Tags
    const tagKey = JSON.stringify([st.tags, editable]);
    if (this.tagList.dataset.key !== tagKey) {
      this.tagList.dataset.key = tagKey;
      const hadFocus = this.tagList.contains(document.activeElement);
      replace(
        this.tagList,
        st.tags.map((t) =>
          h(
            'li',
            { class: 'tag' },
            h('span', { class: 'tag-text' }, t),
            editable ? h('button', { type: 'button', class: 'tag-remove', 'aria-label': `Remove tag ${t}`, title: `Remove tag ${t}`, onclick: () => this.session.removeTag(t) }, '×') : null,
          ),
        ),
      );
      if (hadFocus) this.tagInput.focus();
    }

    // Transcript
    show(this.loading, !this.loaded && this.ended === null);
    if (this.ended !== null) {
      setText(this.loading, this.ended);
      show(this.loading, true);
    }
    if (this.loaded) this.transcript.render(st.messages, this.tools, online);

    setText(this.typingLine, typingText(this.typing.typers(), this.names));

    // Composer
    const active = this.session.chat.active;
    show(this.cancelButton, active !== null && editable && online);
    this.composer.disabled = !editable;
    this.sendButton.disabled = !editable;
    // Files upload over HTTP at once; offline there is nowhere to put them.
    this.attach.button.disabled = !editable || !online;
    setText(this.sendButton, online ? 'Send' : 'Queue message');
    setText(
      this.composerHint,
      !editable
        ? this.ended ?? 'You can read this session (viewer access).'
        : !online
          ? 'Offline: messages are added to the transcript when the connection is back; the assistant answers messages sent online.'
          : active
            ? 'The assistant is answering…'
            : '',
    );
  }

  close(): void {
    for (const off of this.offs) off();
    this.typing.stopped();
    this.typing.dispose();
    if (this.helloTimer !== null) clearTimeout(this.helloTimer);
    void this.session.close().catch(() => {});
  }
}
