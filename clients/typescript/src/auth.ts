/**
 * Tokens. {@link AuthSession} keeps an access/refresh pair from `/v1/auth/login` or
 * `/register` and is a ready-made `getToken` for the client: it refreshes when the access
 * token is about to expire or was refused, one tab at a time (see locks.ts), and reuses a pair
 * another tab refreshed meanwhile. {@link InbandRefresh} swaps a new access token into the open
 * socket (`auth.refresh`) before `welcome.expires_at`, so no reconnect is needed.
 */

import type { Connection, TokenRequest } from './connection.js';
import { SwitchyardError } from './errors.js';
import { defaultRefreshLock, type RefreshLock } from './locks.js';
import type { Requests } from './requests.js';
import type { RestClient, TokenPair } from './rest.js';

export interface StoredTokens {
  access: string;
  /** Unix ms. */
  accessExpiresAt: number;
  /** Unix ms when the access token was obtained (its life is expiry minus this). */
  accessIssuedAt?: number;
  refresh: string;
  refreshExpiresAt: number;
}

/** Where the pair lives; shared by tabs in a browser (localStorage), so they see each other's refreshes. */
export interface TokenStore {
  load(): StoredTokens | null | Promise<StoredTokens | null>;
  save(t: StoredTokens | null): void | Promise<void>;
}

export class MemoryTokenStore implements TokenStore {
  private t: StoredTokens | null = null;
  load(): StoredTokens | null {
    return this.t;
  }
  save(t: StoredTokens | null): void {
    this.t = t;
  }
}

interface StorageLike {
  getItem(k: string): string | null;
  setItem(k: string, v: string): void;
  removeItem(k: string): void;
}

export class LocalStorageTokenStore implements TokenStore {
  constructor(
    private readonly key = 'switchyard.tokens',
    private readonly storage: StorageLike = (globalThis as unknown as { localStorage: StorageLike }).localStorage,
  ) {}
  load(): StoredTokens | null {
    try {
      const v = JSON.parse(this.storage.getItem(this.key) ?? 'null') as StoredTokens | null;
      return v && typeof v.access === 'string' && typeof v.refresh === 'string' ? v : null;
    } catch {
      return null;
    }
  }
  save(t: StoredTokens | null): void {
    if (t) this.storage.setItem(this.key, JSON.stringify(t));
    else this.storage.removeItem(this.key);
  }
}

export function storedFromPair(p: TokenPair, now = Date.now()): StoredTokens {
  return {
    access: p.access_token,
    accessExpiresAt: now + p.expires_in * 1000,
    accessIssuedAt: now,
    refresh: p.refresh_token,
    refreshExpiresAt: now + p.refresh_expires_in * 1000,
  };
}

export interface AuthSessionOptions {
  rest: RestClient;
  store?: TokenStore;
  lock?: RefreshLock;
  /** Refresh when the access token has less than this left (ms). Default 60000, at most a quarter of its life. */
  refreshMarginMs?: number;
}

export class AuthSession {
  private current: StoredTokens | null = null;
  private readonly store: TokenStore;
  private readonly lock: RefreshLock;

  constructor(private readonly opts: AuthSessionOptions) {
    this.store = opts.store ?? new MemoryTokenStore();
    this.lock = opts.lock ?? defaultRefreshLock();
  }

  /** Signs in and stores the pair. */
  async login(email: string, password: string, second: { totpCode?: string; recoveryCode?: string } = {}): Promise<void> {
    await this.use(await this.opts.rest.login(email, password, second));
  }

  async register(email: string, password: string): Promise<{ id: string; email: string }> {
    const r = await this.opts.rest.register(email, password);
    await this.use(r.tokens);
    return r.user;
  }

  /** Adopts a pair obtained elsewhere. */
  async use(pair: TokenPair): Promise<void> {
    this.current = storedFromPair(pair);
    await this.store.save(this.current);
  }

  get tokens(): StoredTokens | null {
    return this.current;
  }

  /** How long before expiry a token counts as stale: a minute, at most a quarter of its life. */
  private margin(t: StoredTokens, now: number): number {
    const life = t.accessExpiresAt - (t.accessIssuedAt ?? now);
    return Math.min(this.opts.refreshMarginMs ?? 60_000, Math.max(life, 1) / 4);
  }

  /** Obtained less than half its life ago (another tab refreshed it just now). */
  private recent(t: StoredTokens, now: number): boolean {
    if (t.accessIssuedAt === undefined) return false;
    return now - t.accessIssuedAt < (t.accessExpiresAt - t.accessIssuedAt) / 2;
  }

  /** A `getToken` for the client (bound, pass it as is). */
  readonly getToken = async (req: TokenRequest = { reason: 'connect' }): Promise<string> => {
    this.current ??= await this.store.load();
    const t = this.current;
    if (!t) throw new SwitchyardError('auth_failed', 'not signed in', { status: 401 });
    const now = Date.now();
    const fresh = t.accessExpiresAt - now > this.margin(t, now);
    const force = req.reason === 'rejected' || req.reason === 'expired';
    if (req.reason === 'connect' && fresh) return t.access;
    // An in-band refresh wants a token that outlives the socket's: only a recent one will do.
    if (req.reason === 'refresh' && this.recent(t, now)) return t.access;
    return (await this.refresh(force ? t.access : undefined)).access;
  };

  /**
   * Rotates the refresh token, one caller at a time across tabs. A pair another tab stored
   * while we waited is used instead of spending the (now used) refresh token again.
   */
  async refresh(rejectedAccess?: string): Promise<StoredTokens> {
    const seen = this.current?.refresh;
    return this.lock.run('switchyard-token-refresh', async () => {
      const stored = (await this.store.load()) ?? this.current;
      if (!stored) throw new SwitchyardError('auth_failed', 'not signed in', { status: 401 });
      const now = Date.now();
      const rotatedElsewhere = stored.refresh !== seen && stored.access !== rejectedAccess;
      if (rotatedElsewhere && stored.accessExpiresAt - now > this.margin(stored, now) && this.recent(stored, now)) {
        this.current = stored;
        return stored;
      }
      let pair: TokenPair;
      try {
        pair = await this.opts.rest.refresh(stored.refresh);
      } catch (e) {
        if (e instanceof SwitchyardError && e.status === 401) {
          // Refused for good (expired, revoked, replayed): signed out.
          this.current = null;
          await this.store.save(null);
        }
        throw e;
      }
      this.current = storedFromPair(pair);
      await this.store.save(this.current);
      return this.current;
    });
  }

  /** Revokes the refresh family on the server and forgets the pair. */
  async logout(): Promise<void> {
    const t = this.current ?? (await this.store.load());
    this.current = null;
    await this.store.save(null);
    if (t) await this.opts.rest.logout(t.refresh);
  }
}

/**
 * Keeps an open socket authenticated: sends `auth.refresh` with a new token a little before
 * the current one expires (a quarter of its remaining life, at most a minute ahead).
 */
export class InbandRefresh {
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** Unix seconds, from `welcome` or the last refresh; null for API keys. */
  expiresAt: number | null = null;

  constructor(
    private readonly conn: Connection,
    private readonly requests: Requests,
    private readonly getToken: (req: TokenRequest) => Promise<string> | string,
    private readonly onError: (e: SwitchyardError) => void,
  ) {
    conn.on('welcome', (w) => this.schedule(w.expires_at));
    conn.on('state', ({ state }) => {
      if (state !== 'connected') this.cancel();
    });
  }

  cancel(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  schedule(expiresAt: number | null): void {
    this.cancel();
    this.expiresAt = typeof expiresAt === 'number' ? expiresAt : null;
    if (this.expiresAt === null) return;
    const remaining = this.expiresAt * 1000 - Date.now();
    const lead = Math.min(60_000, Math.max(remaining, 0) / 4);
    this.timer = setTimeout(() => void this.refreshNow(), Math.max(0, remaining - lead));
  }

  /** Sends `auth.refresh` now; on failure tries again until the token expires. */
  async refreshNow(reason: 'refresh' | 'rejected' = 'refresh'): Promise<void> {
    this.cancel();
    if (this.conn.state !== 'connected') return;
    try {
      const token = await this.getToken({ reason });
      const r = await this.requests.request<{ expires_at?: number | null }>('auth.refresh', { token });
      this.schedule(typeof r.expires_at === 'number' ? r.expires_at : null);
    } catch (e) {
      const err = e instanceof SwitchyardError ? e : new SwitchyardError('auth_failed', String(e));
      this.onError(err);
      if (this.conn.state !== 'connected' || this.expiresAt === null) return;
      const left = this.expiresAt * 1000 - Date.now();
      if (left <= 0) return; // the server closes with 4003; the reconnect gets a new token
      const refused = err.code === 'invalid_token' || err.code === 'forbidden' || err.code === 'token_expired';
      this.timer = setTimeout(() => void this.refreshNow(refused ? 'rejected' : 'refresh'), Math.min(5_000, left / 2));
    }
  }
}
