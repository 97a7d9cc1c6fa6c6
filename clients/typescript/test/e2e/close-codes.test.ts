// Each close code the server can be made to send, provoked for real, and the SDK's action:
// reconnect, re-authenticate then reconnect, or stop. (4000 and 4008 cannot be provoked from a
// well-behaved client: test/unit/connection.test.ts covers them with a fake server.)
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, createSession, eventually, registerUser } from '../harness/server.js';
import { client, instrumentedWebSocket, waitState } from '../harness/client.js';
import { AuthSession, RestClient, SwitchyardError, type StateChange, type Switchyard, type TokenReason } from '../../src/index.js';

const servers: TestServer[] = [];
const clients: Switchyard[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function serve(env: Record<string, string> = {}): Promise<TestServer> {
  const s = await TestServer.start({ env });
  servers.push(s);
  return s;
}

function track(c: Switchyard): StateChange[] {
  clients.push(c);
  const seen: StateChange[] = [];
  c.on('state', (s) => seen.push(s));
  return seen;
}

const codes = (seen: StateChange[]): number[] => seen.filter((s) => s.state === 'disconnected' && s.code !== undefined).map((s) => s.code as number);

test('4001: a refused token (auth frame) makes the client fetch a new one and reconnect', async () => {
  const server = await serve();
  const user = await registerUser(server.url);
  const reasons: TokenReason[] = [];
  const c = client(server.url, user, {
    authMode: 'frame',
    getToken: ({ reason }) => {
      reasons.push(reason);
      return reasons.length === 1 ? 'not-a-token' : user.access;
    },
  });
  const seen = track(c);
  await waitState(c, 'connected');
  assert.deepEqual(codes(seen), [4001]);
  assert.deepEqual(reasons, ['connect', 'rejected'], 'a new token was asked for after the refusal');
});

test('a token refused at the upgrade (header auth, HTTP 401) is handled like 4001', async () => {
  const server = await serve();
  const user = await registerUser(server.url);
  const reasons: TokenReason[] = [];
  const c = client(server.url, user, {
    getToken: ({ reason }) => {
      reasons.push(reason);
      return reasons.length === 1 ? 'not-a-token' : user.access;
    },
  });
  track(c);
  await waitState(c, 'connected');
  assert.deepEqual(reasons, ['connect', 'rejected']);
});

test('4001 again and again: the client stops for good after a few new tokens', async () => {
  const server = await serve();
  const c = client(server.url, { access: 'bad' }, { authMode: 'frame', maxAuthFailures: 2 });
  const seen = track(c);
  const errors: SwitchyardError[] = [];
  c.on('error', (e) => errors.push(e));
  await waitState(c, 'closed');
  assert.deepEqual(codes(seen), [4001, 4001]);
  assert.equal(errors[0]?.code, 'auth_failed');
});

test('4002: an auth frame sent too late is closed by the server; the client reconnects', async () => {
  const server = await serve({ SWITCHYARD_WS_AUTH_TIMEOUT_SECS: '1' });
  const user = await registerUser(server.url);
  const ws = instrumentedWebSocket({ holdFirstFrameMs: 2500 });
  const c = client(server.url, user, { authMode: 'frame', WebSocket: ws.WebSocket });
  const seen = track(c);
  await waitState(c, 'connected');
  assert.deepEqual(codes(seen), [4002]);
  assert.equal(ws.sockets.length, 2);
});

test('a token expiring mid-connection is refreshed in band, without reconnecting', async () => {
  // 6 s: the refresh goes out a quarter of the life ahead (1.5 s), room enough for a refresh
  // round trip on a loaded CI box (3 s left 0.5-0.75 s, and the socket sometimes expired first).
  const server = await serve({ SWITCHYARD_AUTH_ACCESS_TTL_SECS: '6' });
  const user = await registerUser(server.url);
  const auth = new AuthSession({ rest: new RestClient({ baseUrl: server.url }) });
  await auth.login(user.email, user.password);
  const c = client(server.url, user, { getToken: auth.getToken });
  const seen = track(c);
  await waitState(c, 'connected');
  const firstExpiry = c.inband.expiresAt;
  assert.ok(firstExpiry !== null);
  // Outlive two token lifetimes on one socket.
  await eventually(() => (c.inband.expiresAt ?? 0) >= (firstExpiry ?? 0) + 8, 'two in-band refreshes', 30_000);
  const sid = await createSession(server.url, (await auth.getToken()) as string);
  const s = c.session(sid);
  await s.ready();
  await s.setTitle('still authenticated').confirmed;
  assert.deepEqual(seen.map((x) => x.state), ['connecting', 'connected'], 'never disconnected');
});

test('4003: a token that expires without a refresh closes the socket; the client gets a new token and reconnects', async () => {
  const server = await serve({ SWITCHYARD_AUTH_ACCESS_TTL_SECS: '2' });
  const user = await registerUser(server.url);
  const auth = new AuthSession({ rest: new RestClient({ baseUrl: server.url }) });
  await auth.login(user.email, user.password);
  const stale = auth.tokens?.access as string;
  const reasons: TokenReason[] = [];
  // The in-band refresh gets the same (expiring) token back, so the server ends the socket.
  const c = client(server.url, user, {
    getToken: (req) => {
      reasons.push(req.reason);
      return req.reason === 'refresh' ? stale : auth.getToken(req);
    },
  });
  const seen = track(c);
  await eventually(() => codes(seen).includes(4003), 'closed with 4003', 20_000);
  await waitState(c, 'connected');
  assert.ok(reasons.includes('expired'), `asked for a new token after 4003: ${reasons.join(',')}`);
});

test('the client paces itself under frames_per_sec: a burst of requests is queued, not refused', async () => {
  const server = await serve({ SWITCHYARD_WS_FRAMES_PER_SEC: '10' });
  const user = await registerUser(server.url);
  const sid = await createSession(server.url, user.access);
  const c = client(server.url, user);
  const seen = track(c);
  const s = c.session(sid);
  await s.ready();
  const sent = await Promise.all(Array.from({ length: 40 }, (_, i) => s.publish('typing', { i }).then(() => 'ok')));
  assert.equal(sent.length, 40);
  assert.deepEqual(codes(seen), [], 'never rate limited');
});

test('4029: frames beyond the rate limit (sent around the SDK) close the socket; the client backs off and reconnects', async () => {
  const server = await serve({ SWITCHYARD_WS_FRAMES_PER_SEC: '5' });
  const user = await registerUser(server.url);
  const ws = instrumentedWebSocket();
  const c = client(server.url, user, { WebSocket: ws.WebSocket });
  const seen = track(c);
  await waitState(c, 'connected');
  const raw = ws.sockets[0]!;
  // The burst (2 x 5) plus one. Not more: frames the server has not read when it closes make
  // its TCP stack reset the connection, and the close frame is lost (the client sees 1006).
  for (let i = 0; i < 11; i++) raw.send(JSON.stringify({ type: 'ping', id: `flood-${i}` }));
  await eventually(() => codes(seen).includes(4029), 'closed with 4029');
  const wait = seen.find((s) => s.code === 4029);
  assert.ok((wait?.retryInMs ?? 0) >= 2000, 'backs off at least the rate window');
  await waitState(c, 'connected');
});

test('4030: one connection too many stops that client for good', async () => {
  const server = await serve({ SWITCHYARD_WS_MAX_CONNECTIONS_PER_USER: '1' });
  const user = await registerUser(server.url);
  const first = client(server.url, user);
  track(first);
  await waitState(first, 'connected');
  const second = client(server.url, user);
  const seen = track(second);
  const errors: string[] = [];
  second.on('error', (e) => errors.push(e.code));
  await waitState(second, 'closed');
  assert.equal(seen.at(-1)?.code, 4030);
  assert.deepEqual(errors, ['too_many_connections']);
  assert.equal(first.state, 'connected', 'the first one is untouched');
});

test('1013: an instance that filled up during in-band auth is retried until a slot frees', async () => {
  const server = await serve({ SWITCHYARD_WS_MAX_CONNECTIONS: '1' });
  const user = await registerUser(server.url);
  const first = client(server.url, user);
  track(first);
  await waitState(first, 'connected');
  const second = client(server.url, user, { authMode: 'frame' });
  const seen = track(second);
  await eventually(() => codes(seen).includes(1013), 'closed with 1013');
  assert.notEqual(second.state, 'closed', 'it keeps trying');
  await first.close();
  await waitState(second, 'connected');
});

test('1012: SIGTERM tells clients to reconnect; they come back when the server does', async () => {
  const server = await serve();
  const user = await registerUser(server.url);
  const sid = await createSession(server.url, user.access);
  const c = client(server.url, user);
  const seen = track(c);
  const s = c.session(sid);
  await s.ready();
  await server.kill('SIGTERM');
  await eventually(() => codes(seen).includes(1012), 'closed with 1012');
  const pending = s.setTitle('written while the server was down');
  await server.launch();
  await waitState(c, 'connected');
  await pending.confirmed;
  await eventually(() => s.state.fields.title === 'written while the server was down' && s.state.pendingCount === 0, 'synced after the restart');
});

test('1009: the SDK refuses an oversized frame itself; one forced past it closes the socket and the client reconnects', async () => {
  const server = await serve({ SWITCHYARD_WS_MAX_FRAME_BYTES: '4096' });
  const user = await registerUser(server.url);
  const sid = await createSession(server.url, user.access);
  const ws = instrumentedWebSocket();
  const c = client(server.url, user, { WebSocket: ws.WebSocket });
  const seen = track(c);
  const s = c.session(sid);
  await s.ready();
  await assert.rejects(s.publish('big', 'x'.repeat(5000)), (e: SwitchyardError) => e.code === 'frame_too_large');
  assert.throws(() => s.setContext('big', 'y'.repeat(5000)), (e: SwitchyardError) => e.code === 'frame_too_large');
  assert.equal(c.state, 'connected', 'refused locally, the socket lives on');
  ws.sockets[0]!.send(JSON.stringify({ type: 'ping', id: 'big', pad: 'z'.repeat(5000) }));
  await eventually(() => codes(seen).includes(1009), 'closed with 1009');
  await waitState(c, 'connected');
  await s.setTitle('fine').confirmed;
});

test('JSON depth: the SDK counts nesting as the server does (32 passes, 33 is refused on both sides)', async () => {
  const server = await serve();
  const user = await registerUser(server.url);
  const sid = await createSession(server.url, user.access);
  const ws = instrumentedWebSocket();
  const c = client(server.url, user, { WebSocket: ws.WebSocket });
  track(c);
  const s = c.session(sid);
  await s.ready();
  // The frame object is level 1, `data` holds the rest.
  const nest = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = [v];
    return v;
  };
  await s.publish('deep', nest(31) as never);
  await assert.rejects(s.publish('deep', nest(32) as never), (e: SwitchyardError) => e.code === 'too_deep');
  const replies: Array<{ type: string; code?: string; id?: string | null }> = [];
  ws.sockets[0]!.on('message', (m) => replies.push(JSON.parse(m.toString()) as never));
  ws.sockets[0]!.send(JSON.stringify({ type: 'publish', id: 'raw-deep', channel: `session:${sid}`, event: 'deep', data: nest(32) }));
  await eventually(() => replies.some((r) => r.type === 'error' && r.code === 'bad_frame'), 'the server refuses 33 levels too');
  assert.equal(c.state, 'connected');
});

test('4031: a peer that answers nothing is closed as idle; the client reconnects', async () => {
  const server = await serve({ SWITCHYARD_WS_HEARTBEAT_SECS: '1', SWITCHYARD_WS_IDLE_TIMEOUT_SECS: '2' });
  const user = await registerUser(server.url);
  const ws = instrumentedWebSocket({ autoPong: false });
  const c = client(server.url, user, { WebSocket: ws.WebSocket, silenceMs: 60_000 });
  const seen = track(c);
  await eventually(() => codes(seen).includes(4031), 'closed with 4031', 20_000);
  await waitState(c, 'connected');
});
