/**
 * The signed-in app: the header (connection state, who is signed in), the offline banner with
 * the count of queued changes, the session list and MCP servers in the sidebar, and the open
 * session in the main area. Routes are hashes (`#/`, `#/s/<id>`), so every path the server
 * serves is index.html's.
 */

import { IndexedDbQueueStore, MemoryQueueStore, Switchyard, type QueueStore, type StateChange } from '../../typescript/src/index.js';
import { crossOrigin } from './config.js';
import { h, plural, setText } from './dom.js';
import { mcpPanel } from './mcp-panel.js';
import { questionsPanel } from './questions.js';
import { isOnline, OnlineWebSocket, watchOffline } from './net.js';
import { Names } from './people.js';
import type { Profile } from './session-store.js';
import { SessionList } from './session-list.js';
import { SessionView } from './session-view.js';

const SESSION_ROUTE = /^#\/s\/([0-9a-fA-F-]{32,36})$/;

export interface ShellOptions {
  url: string;
  profile: Profile;
  getToken: ConstructorParameters<typeof Switchyard>[0]['getToken'];
  signOut: (notice?: string) => void;
}

async function queueStore(userId: string): Promise<QueueStore> {
  try {
    // One database per account: a queue never pushes one user's changes with another's token.
    return await IndexedDbQueueStore.open({ name: `switchyard-queue-${userId}` });
  } catch {
    return new MemoryQueueStore();
  }
}

export class Shell {
  readonly el: HTMLElement;
  readonly sy: Switchyard;
  private readonly names: Names;
  private readonly list: SessionList;
  private readonly main: HTMLElement;
  private readonly placeholder: HTMLElement;
  private readonly connPill: HTMLElement;
  private readonly offlineBanner: HTMLElement;
  private readonly errorBanner: HTMLElement;
  private view: SessionView | null = null;
  private everConnected = false;
  private failures = 0;
  private lastState: StateChange = { state: 'connecting' };
  private closedReason: string | null = null;
  private readonly offs: Array<() => void> = [];

  static async start(opts: ShellOptions): Promise<Shell> {
    return new Shell(opts, await queueStore(opts.profile.userId));
  }

  private constructor(
    private readonly opts: ShellOptions,
    store: QueueStore,
  ) {
    this.sy = new Switchyard({
      url: opts.url,
      getToken: opts.getToken,
      WebSocket: OnlineWebSocket,
      authMode: 'frame',
      device: 'web',
      store,
    });
    this.names = new Names(opts.profile);
    const sy = this.sy;

    this.connPill = h('span', { class: 'conn', role: 'status' }, 'Connecting…');
    // Live regions stay in the page (empty, they take no room), so what they say is announced.
    this.offlineBanner = h('div', { class: 'banner offline', role: 'status', 'aria-live': 'polite' });
    this.errorBanner = h('div', { class: 'banner error', role: 'alert' });
    this.list = new SessionList(
      sy,
      (id) => (location.hash = `#/s/${id}`),
      () => this.syncInfo(),
    );
    this.placeholder = h('div', { class: 'placeholder' }, h('h2', {}, 'No session open'), h('p', { class: 'muted' }, 'Pick a session from the list, or create a new one.'));
    this.main = h('main', { class: 'main', id: 'main', tabindex: -1 }, this.placeholder);

    this.el = h(
      'div',
      { class: 'app', 'data-view': 'list' },
      h('a', { href: '#main', class: 'skip', onclick: (ev: Event) => (ev.preventDefault(), this.main.focus()) }, 'Skip to content'),
      h(
        'header',
        { class: 'topbar' },
        h('h1', { class: 'brand-h' }, h('a', { href: '#/', class: 'brand' }, 'switchyard')),
        this.connPill,
        h('span', { class: 'me', title: opts.profile.email }, opts.profile.email),
        h('button', { type: 'button', class: 'link', onclick: () => this.signOut() }, 'Sign out'),
      ),
      this.offlineBanner,
      this.errorBanner,
      h('div', { class: 'layout' }, h('aside', { class: 'sidebar', 'aria-label': 'Sessions and tools' }, this.list.el, questionsPanel(sy), mcpPanel(sy)), this.main),
    );

    this.offs.push(
      sy.on('state', (s) => {
        this.lastState = s;
        if (s.state === 'connected') {
          this.everConnected = true;
          this.failures = 0;
        } else if (s.state === 'disconnected') {
          this.failures++;
        } else if (s.state === 'closed') {
          this.closedReason = s.reason ?? 'the connection was closed';
        }
        this.status();
        this.view?.connectivityChanged();
      }),
      sy.on('error', (e) => {
        if (e.code === 'auth_failed') this.opts.signOut('Your sign-in has expired. Sign in again.');
      }),
      sy.queue.on('changed', () => this.status()),
      sy.queue.on('applied', () => this.status()),
      sy.queue.on('refused', () => this.status()),
      watchOffline(sy, () => {
        this.status();
        this.view?.connectivityChanged();
      }),
    );
    const route = (): void => this.route();
    addEventListener('hashchange', route);
    this.offs.push(() => removeEventListener('hashchange', route));
    this.route();
    this.status();
  }

  private online(): boolean {
    return this.sy.state === 'connected';
  }

  private route(): void {
    const m = SESSION_ROUTE.exec(location.hash);
    const id = m?.[1]?.toLowerCase() ?? null;
    if (this.view && this.view.id !== id) {
      this.list.forgetLive(this.view.id);
      this.view.close();
      this.view.el.remove();
      this.view = null;
    }
    if (id && !this.view) {
      this.view = new SessionView(
        this.sy,
        id,
        this.names,
        {
          online: () => this.online(),
          titleChanged: (sid, title) => this.list.liveTitle(sid, title),
        },
        this.list.info(id),
      );
      this.placeholder.remove();
      this.main.append(this.view.el);
    }
    if (!id) {
      if (!this.placeholder.isConnected) this.main.append(this.placeholder);
      document.title = 'switchyard';
    }
    this.list.setCurrent(id);
    this.el.dataset.view = id ? 'session' : 'list';
    // The link that was clicked may be hidden now (phones show one pane): keep focus somewhere useful.
    const a = document.activeElement;
    if (!a || a === document.body || (a instanceof HTMLElement && a.offsetParent === null)) this.main.focus({ preventScroll: true });
  }

  /** The session list learned roles: hand them to the open view. */
  private syncInfo(): void {
    if (this.view) this.view.setInfo(this.list.info(this.view.id));
  }

  private status(): void {
    this.syncInfo();
    const state = this.sy.state;
    const online = isOnline();
    const queued = this.sy.queue.size;
    setText(this.connPill, state === 'connected' ? 'Online' : !online ? 'Offline' : state === 'closed' ? 'Disconnected' : this.everConnected ? 'Reconnecting…' : 'Connecting…');
    this.connPill.dataset.state = state === 'connected' ? 'online' : !online ? 'offline' : state;

    const lost = !online || (this.everConnected && state !== 'connected');
    let banner = '';
    if (lost && state !== 'closed') {
      const head = online ? 'Connection lost, reconnecting…' : 'You are offline.';
      const tail = queued > 0 ? `${plural(queued, 'change')} waiting; they will be sent when the connection is back.` : 'Changes you make are kept and sent when the connection is back.';
      banner = `${head} ${tail}`;
    } else if (state === 'connected' && queued > 0) {
      banner = `Sending ${plural(queued, 'queued change')}…`;
    }
    setText(this.offlineBanner, banner);
    this.offlineBanner.dataset.queued = String(queued);

    let error = '';
    if (state === 'closed') {
      error = `Disconnected: ${this.closedReason ?? 'the connection was closed'}. Reload the page to try again.`;
    } else if (online && !this.everConnected && this.failures >= 2) {
      error = `Can't connect to the server at ${this.opts.url}: it refused the connection or can't be reached. Retrying…`;
      if (crossOrigin(this.opts.url)) error += ` This page comes from ${location.origin}; the server accepts sockets only from its own origin and the ones in its allowlist (server.cors_origins).`;
    }
    setText(this.errorBanner, error);
    void this.lastState;
  }

  private signOut(): void {
    this.opts.signOut();
  }

  async close(): Promise<void> {
    for (const off of this.offs) off();
    this.view?.close();
    await this.sy.close().catch(() => {});
  }
}
