// Refresh tokens are single-use: two tabs refreshing at once must spend one once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthSession, BroadcastChannelLock, MutexLock, RestClient, type StoredTokens, type TokenStore } from '../../src/index.js';

/** A fake /v1/auth/refresh with the server's rule: replaying a spent token revokes the family. */
function fakeAuthServer(): { fetch: typeof fetch; calls: string[]; revoked: () => boolean } {
  const spent = new Set<string>();
  let revoked = false;
  let n = 0;
  const calls: string[] = [];
  const f = async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const body = JSON.parse(String(init?.body)) as { refresh_token: string };
    calls.push(body.refresh_token);
    await new Promise((r) => setTimeout(r, 20));
    if (revoked || spent.has(body.refresh_token)) {
      revoked = true;
      return new Response(JSON.stringify({ error: { message: 'reused', type: 'invalid_request_error', code: 'invalid_token', param: null } }), { status: 401 });
    }
    spent.add(body.refresh_token);
    n++;
    return new Response(JSON.stringify({ access_token: `access-${n}`, token_type: 'Bearer', expires_in: 900, refresh_token: `refresh-${n}`, refresh_expires_in: 86400 }), { status: 200 });
  };
  return { fetch: f as typeof fetch, calls, revoked: () => revoked };
}

/** One store shared by "tabs", as localStorage is. */
class SharedStore implements TokenStore {
  t: StoredTokens | null = null;
  load(): StoredTokens | null {
    return this.t ? { ...this.t } : null;
  }
  save(t: StoredTokens | null): void {
    this.t = t ? { ...t } : null;
  }
}

function tabs(n: number, lock: () => MutexLock | BroadcastChannelLock, srv: ReturnType<typeof fakeAuthServer>, store: SharedStore): AuthSession[] {
  return Array.from({ length: n }, () => new AuthSession({ rest: new RestClient({ baseUrl: 'http://auth.test', fetch: srv.fetch }), store, lock: lock() }));
}

const start = (store: SharedStore): void =>
  store.save({ access: 'access-0', accessExpiresAt: Date.now() + 900_000, accessIssuedAt: Date.now() - 10_000, refresh: 'refresh-0', refreshExpiresAt: Date.now() + 86_400_000 });

test('three tabs whose token was refused refresh once between them (shared mutex)', async () => {
  const srv = fakeAuthServer();
  const store = new SharedStore();
  start(store);
  const lock = new MutexLock();
  const all = tabs(3, () => lock, srv, store);
  const tokens = await Promise.all(all.map((t) => t.getToken({ reason: 'rejected' })));
  assert.deepEqual(srv.calls, ['refresh-0'], 'one refresh call');
  assert.deepEqual(tokens, ['access-1', 'access-1', 'access-1']);
  assert.equal(srv.revoked(), false);
});

test('tabs coordinated over BroadcastChannel do not replay the refresh token', async () => {
  const srv = fakeAuthServer();
  const store = new SharedStore();
  start(store);
  const channels: BroadcastChannel[] = [];
  const all = tabs(3, () => {
    const ch = new BroadcastChannel('switchyard-test-locks');
    channels.push(ch);
    return new BroadcastChannelLock(ch as unknown as ConstructorParameters<typeof BroadcastChannelLock>[0], 30);
  }, srv, store);
  try {
    const tokens = await Promise.all(all.map((t) => t.getToken({ reason: 'rejected' })));
    assert.equal(srv.revoked(), false, 'no refresh token was spent twice');
    assert.deepEqual(srv.calls, ['refresh-0']);
    assert.deepEqual(new Set(tokens), new Set(['access-1']));
  } finally {
    for (const ch of channels) ch.close();
  }
});

test('without coordination the same tabs would replay it (the failure the lock prevents)', async () => {
  const srv = fakeAuthServer();
  const store = new SharedStore();
  start(store);
  const all = tabs(2, () => new MutexLock(), srv, store);
  const results = await Promise.allSettled(all.map((t) => t.getToken({ reason: 'rejected' })));
  assert.ok(srv.revoked(), 'the second refresh replayed a spent token');
  assert.ok(results.some((r) => r.status === 'rejected'));
});

test('a fresh token is returned without a refresh; an in-band refresh gets a new one', async () => {
  const srv = fakeAuthServer();
  const store = new SharedStore();
  // Obtained 800 s ago, 100 s left: still fine to connect with, old for an in-band refresh.
  store.save({ access: 'access-0', accessExpiresAt: Date.now() + 100_000, accessIssuedAt: Date.now() - 800_000, refresh: 'refresh-0', refreshExpiresAt: Date.now() + 86_400_000 });
  const [tab] = tabs(1, () => new MutexLock(), srv, store);
  assert.equal(await tab!.getToken({ reason: 'connect' }), 'access-0');
  assert.deepEqual(srv.calls, []);
  assert.equal(await tab!.getToken({ reason: 'refresh' }), 'access-1');
  assert.equal(await tab!.getToken({ reason: 'refresh' }), 'access-1', 'just refreshed: recent enough');
  assert.deepEqual(srv.calls, ['refresh-0']);
});
