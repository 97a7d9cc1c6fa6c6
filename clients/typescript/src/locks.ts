/**
 * Mutual exclusion for token refreshes across tabs. A refresh token is single-use: if two tabs
 * spend the same one, the second is a replay and the server revokes the whole family (both
 * tabs are signed out). So one tab refreshes while the others wait, then read its result from
 * the shared token store.
 *
 * Web Locks (`navigator.locks`) where the browser has them; else a claim protocol over
 * BroadcastChannel (best effort: the server's reuse grace window covers a lost race); else an
 * in-process mutex (Node, one tab).
 */

export interface RefreshLock {
  run<T>(name: string, fn: () => Promise<T>): Promise<T>;
}

/** One holder at a time within this JavaScript realm. */
export class MutexLock implements RefreshLock {
  private tails = new Map<string, Promise<unknown>>();

  run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.tails.set(name, tail);
    void tail.then(() => {
      if (this.tails.get(name) === tail) this.tails.delete(name);
    });
    return next;
  }
}

interface LockManagerLike {
  request<T>(name: string, opts: { mode: 'exclusive' }, fn: () => Promise<T>): Promise<T>;
}

export class WebLocksLock implements RefreshLock {
  constructor(private readonly locks: LockManagerLike) {}
  run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.locks.request(name, { mode: 'exclusive' }, fn);
  }
}

interface ChannelLike {
  postMessage(m: unknown): void;
  onmessage: ((ev: { data: unknown }) => void) | null;
}

type Msg = { t: 'want' | 'held' | 'release'; name: string; id: string; ts: number };

/**
 * Claim, listen briefly, go ahead unless an earlier claim or a holder answered; a holder
 * answers every claim while it holds. Waiters try again when the holder releases (or after
 * `maxWaitMs`, so a tab closed mid-refresh cannot block the others for good).
 */
export class BroadcastChannelLock implements RefreshLock {
  private readonly id = Math.random().toString(36).slice(2);
  private held = new Set<string>();
  private listeners = new Set<(m: Msg) => void>();
  private readonly local = new MutexLock();

  constructor(
    private readonly channel: ChannelLike,
    private readonly settleMs = 50,
    private readonly maxWaitMs = 10_000,
  ) {
    channel.onmessage = (ev) => {
      const m = ev.data as Msg;
      if (!m || typeof m !== 'object' || typeof m.name !== 'string') return;
      if (m.t === 'want' && this.held.has(m.name)) this.post('held', m.name);
      for (const l of [...this.listeners]) l(m);
    };
  }

  private post(t: Msg['t'], name: string, ts = Date.now()): void {
    this.channel.postMessage({ t, name, id: this.id, ts } satisfies Msg);
  }

  run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(name, async () => {
      const started = Date.now();
      while (Date.now() - started < this.maxWaitMs && !(await this.claim(name, started))) {
        await this.waitRelease(name, Math.max(0, this.maxWaitMs - (Date.now() - started)));
      }
      this.held.add(name);
      try {
        return await fn();
      } finally {
        this.held.delete(name);
        this.post('release', name);
      }
    });
  }

  /** True when nobody earlier wants the lock and nobody holds it. */
  private claim(name: string, ts: number): Promise<boolean> {
    return new Promise((resolve) => {
      let ok = true;
      const l = (m: Msg): void => {
        if (m.name !== name || m.id === this.id) return;
        if (m.t === 'held' || (m.t === 'want' && (m.ts < ts || (m.ts === ts && m.id < this.id)))) ok = false;
      };
      this.listeners.add(l);
      this.post('want', name, ts);
      setTimeout(() => {
        this.listeners.delete(l);
        resolve(ok);
      }, this.settleMs);
    });
  }

  private waitRelease(name: string, maxMs: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.listeners.delete(l);
        clearTimeout(timer);
        resolve();
      };
      const l = (m: Msg): void => {
        if (m.name === name && m.t === 'release') done();
      };
      const timer = setTimeout(done, maxMs);
      this.listeners.add(l);
    });
  }
}

/** The best lock this environment has. */
export function defaultRefreshLock(): RefreshLock {
  const g = globalThis as { navigator?: { locks?: LockManagerLike }; BroadcastChannel?: new (name: string) => ChannelLike };
  if (g.navigator?.locks && typeof g.navigator.locks.request === 'function') return new WebLocksLock(g.navigator.locks);
  // Node has BroadcastChannel too, but one process needs no cross-tab claims.
  const isBrowser = typeof (globalThis as { document?: unknown }).document !== 'undefined';
  if (isBrowser && typeof g.BroadcastChannel === 'function') return new BroadcastChannelLock(new g.BroadcastChannel('switchyard-locks'));
  return new MutexLock();
}
