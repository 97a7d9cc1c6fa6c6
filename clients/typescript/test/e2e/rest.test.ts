// REST helpers against a real server, refresh-token rotation (and the server's reuse grace
// for two tabs refreshing at once), and sockets opened with an API key.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { TestServer, eventually } from '../harness/server.js';
import { client, waitState } from '../harness/client.js';
import { AuthSession, MutexLock, MemoryTokenStore, RestClient, SwitchyardError, type StateChange } from '../../src/index.js';

let server: TestServer;
before(async () => {
  server = await TestServer.start();
});
after(async () => {
  await server?.stop();
});

const email = (): string => `rest-${Date.now()}-${Math.random().toString(36).slice(2)}@example.com`;
const PASSWORD = 'correct horse battery staple';

test('register, me, sessions, messages, members, projects and API keys through the REST helpers', async () => {
  const anon = new RestClient({ baseUrl: server.url });
  const me = email();
  const { user, tokens } = await anon.register(me, PASSWORD);
  const rest = new RestClient({ baseUrl: server.url, getToken: () => tokens.access_token });
  assert.equal((await rest.me()).email, me);
  await assert.rejects(anon.login(me, 'wrong password!'), (e: SwitchyardError) => e.status === 401);

  const s = await rest.createSession({ title: 'from REST' });
  assert.equal(s.title, 'from REST');
  const snap = await rest.getSession(s.id);
  assert.equal(snap.fields.title, 'from REST');
  assert.equal(snap.version, 1, 'a title at creation is version 1');
  await rest.pushMutations(s.id, [{ client_id: 'rest-1', mutation_id: 1, hlc: `${Date.now()}:0`, ops: [{ op: 'append_message', message_id: 'r1', role: 'user', content: 'hello' }] }]);
  assert.deepEqual((await rest.messages(s.id)).data.map((m) => m.content), ['hello']);
  assert.ok((await rest.listSessions()).data.some((x) => x.id === s.id && x.role === 'owner'));

  const other = email();
  await anon.register(other, PASSWORD);
  await rest.share(s.id, other, 'viewer');
  const members = await rest.members(s.id);
  assert.equal(members.data.length, 2);
  const viewer = members.data.find((m) => m.user_id !== user.id);
  await rest.unshare(s.id, viewer!.user_id);
  assert.equal((await rest.members(s.id)).data.length, 1);

  const p = await rest.createProject({ name: 'parser', description: 'the parser work' });
  assert.equal((await rest.updateProject(p.id, { name: 'parser v2' })).name, 'parser v2');
  assert.ok((await rest.listProjects()).data.some((x) => x.id === p.id));
  await rest.deleteProject(p.id);
  await assert.rejects(rest.getProject(p.id), (e: SwitchyardError) => e.status === 404);

  const key = await rest.createApiKey('ci');
  assert.ok(key.secret.length > 10);
  assert.ok((await rest.listApiKeys()).data.some((k) => k.id === key.id));
  const byKey = new RestClient({ baseUrl: server.url, getToken: () => key.secret });
  assert.ok((await byKey.models()).data.some((m) => m.id === 'echo'));
  await rest.revokeApiKey(key.id);
  await eventually(async () => byKey.me().then(() => false, (e: SwitchyardError) => e.status === 401), 'the revoked key stops working');
});

test('refresh rotates the pair; two uncoordinated refreshes at once get the same successor (server grace)', async () => {
  const anon = new RestClient({ baseUrl: server.url });
  const me = email();
  await anon.register(me, PASSWORD);
  const store = new MemoryTokenStore();
  const a = new AuthSession({ rest: anon, store, lock: new MutexLock() });
  await a.login(me, PASSWORD);
  const first = a.tokens!;
  // A second tab that shares nothing with the first but the stored pair.
  const b = new AuthSession({ rest: anon, store: new MemoryTokenStore(), lock: new MutexLock() });
  await b.use({ access_token: first.access, token_type: 'Bearer', expires_in: 900, refresh_token: first.refresh, refresh_expires_in: 3600 });
  const [ta, tb] = await Promise.all([a.refresh(first.access), b.refresh(first.access)]);
  assert.equal(ta.refresh, tb.refresh, 'the replay within the grace window got the same successor');
  assert.notEqual(ta.refresh, first.refresh);
  // The family is alive: the successor refreshes again.
  const next = await a.refresh(ta.access);
  assert.notEqual(next.refresh, ta.refresh);
  await a.logout();
  await assert.rejects(anon.refresh(next.refresh), (e: SwitchyardError) => e.status === 401);
});

test('a socket opened with an API key has no expiry; revoking the key closes it (4001) and the client stops', async () => {
  const anon = new RestClient({ baseUrl: server.url });
  const { tokens } = await anon.register(email(), PASSWORD);
  const rest = new RestClient({ baseUrl: server.url, getToken: () => tokens.access_token });
  const key = await rest.createApiKey('socket');
  const c = client(server.url, { access: key.secret }, { maxAuthFailures: 1 });
  const seen: StateChange[] = [];
  c.on('state', (s) => seen.push(s));
  try {
    await waitState(c, 'connected');
    assert.equal(c.connection.welcome?.expires_at, null);
    assert.equal(c.inband.expiresAt, null, 'nothing to refresh in band');
    await rest.revokeApiKey(key.id);
    await waitState(c, 'closed');
    assert.ok(seen.some((s) => s.code === 4001), `closed with 4001: ${seen.map((s) => s.code ?? s.state).join(',')}`);
  } finally {
    await c.close();
  }
});

/** RFC 6238 TOTP (SHA-1, 30 s, six digits) of a base32 secret, as an authenticator app shows it. */
function totp(base32: string, step: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', key).update(msg).digest();
  const at = (h[h.length - 1] ?? 0) & 0x0f;
  return String((h.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

test('an account with a second factor signs in with a code through AuthSession.login', async () => {
  const anon = new RestClient({ baseUrl: server.url });
  const me = email();
  const { tokens } = await anon.register(me, PASSWORD);
  const rest = new RestClient({ baseUrl: server.url, getToken: () => tokens.access_token });
  const enrolled = await rest.call<{ secret: string; otpauth_uri: string }>('POST', '/v1/auth/totp', { password: PASSWORD });
  const step = Math.floor(Date.now() / 30_000);
  const confirmed = await rest.call<{ recovery_codes: string[] }>('POST', '/v1/auth/totp/confirm', { code: totp(enrolled.secret, step) });
  assert.equal(confirmed.recovery_codes.length, 10);

  const auth = new AuthSession({ rest: anon });
  await assert.rejects(auth.login(me, PASSWORD), (e: SwitchyardError) => e.code === 'mfa_required' && e.status === 401);
  await auth.login(me, PASSWORD, { totpCode: totp(enrolled.secret, step + 1) });
  assert.ok(auth.tokens?.access, 'signed in');
  const other = new AuthSession({ rest: anon });
  await other.login(me, PASSWORD, { recoveryCode: confirmed.recovery_codes[0] as string });
  await assert.rejects(anon.login(me, PASSWORD, { recoveryCode: confirmed.recovery_codes[0] as string }), (e: SwitchyardError) => e.code === 'invalid_mfa_code');
});
