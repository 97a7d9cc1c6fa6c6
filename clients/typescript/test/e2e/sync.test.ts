// Session sync against a real server: optimistic state, confirmation, convergence of two
// clients, offline queue replay, survival of a server SIGKILL with no lost or doubled mutation.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, createSession, eventually, registerUser, api, type TestUser } from '../harness/server.js';
import { client } from '../harness/client.js';
import type { Snapshot } from '../../src/index.js';

let server: TestServer;
let alice: TestUser;

before(async () => {
  server = await TestServer.start();
  alice = await registerUser(server.url);
});
after(async () => {
  await server?.stop();
});

test('a local change shows at once, is confirmed, and reaches a second client', async () => {
  const sid = await createSession(server.url, alice.access);
  const a = client(server.url, alice);
  const b = client(server.url, alice);
  try {
    const sa = a.session(sid);
    const sb = b.session(sid);
    await Promise.all([sa.ready(), sb.ready()]);
    const m = sa.setTitle('hello');
    assert.equal(sa.state.fields.title, 'hello', 'optimistic');
    assert.equal(sa.state.pendingCount, 1);
    const { version } = await m.confirmed;
    assert.ok(version >= 1);
    await eventually(() => sb.state.fields.title === 'hello', 'b sees the title');
    const msg = sa.appendMessage('first message');
    await msg.confirmed;
    await eventually(() => sb.state.messages.some((x) => x.id === msg.messageId && x.content === 'first message'), 'b sees the message');
    assert.equal(sa.state.pendingCount, 0);
    const rest = await api<Snapshot>(server.url, alice.access, 'GET', `/v1/sessions/${sid}`);
    assert.equal(rest.fields.title, 'hello');
    assert.deepEqual(sa.state.fields, rest.fields);
  } finally {
    await a.close();
    await b.close();
  }
});

test('concurrent edits from two clients converge to the same state', async () => {
  const sid = await createSession(server.url, alice.access);
  const a = client(server.url, alice);
  const b = client(server.url, alice);
  try {
    const sa = a.session(sid);
    const sb = b.session(sid);
    await Promise.all([sa.ready(), sb.ready()]);
    for (let i = 0; i < 20; i++) {
      sa.setContext('k', `a${i}`);
      sb.setContext('k', `b${i}`);
      if (i % 3 === 0) sa.addTag(`t${i}`);
      if (i % 4 === 0) sb.removeTag(`t${i - 4}`);
      sb.appendMessage(`b says ${i}`);
    }
    await Promise.all([a.synced(), b.synced()]);
    const rest = await api<Snapshot>(server.url, alice.access, 'GET', `/v1/sessions/${sid}`);
    await eventually(() => sa.version === rest.version && sb.version === rest.version, 'both replicas at the server version');
    for (const s of [sa, sb]) {
      assert.deepEqual(s.state.context, rest.context);
      assert.deepEqual(s.state.tags, [...rest.tags].sort());
      assert.deepEqual(
        s.state.messages.map((m) => [m.id, m.content]),
        rest.messages.map((m) => [m.id, m.content]),
      );
    }
  } finally {
    await a.close();
    await b.close();
  }
});

test('200 mutations queued offline are replayed after reconnect, in order, exactly once', async () => {
  const sid = await createSession(server.url, alice.access);
  const c = client(server.url, alice, { autoConnect: false });
  try {
    const s = c.session(sid);
    const all = [];
    for (let i = 0; i < 200; i++) all.push(s.appendMessage(`offline ${i}`, { id: `off-${i}` }));
    assert.equal(s.state.messages.length, 200, 'all visible optimistically');
    assert.ok(s.state.messages.every((m) => m.pending));
    c.connect();
    const versions = (await Promise.all(all.map((m) => m.confirmed))).map((r) => r.version);
    assert.deepEqual(versions, [...versions].sort((x, y) => x - y), 'applied in queue order');
    assert.equal(new Set(versions).size, 200);
    const ids = all.map((m) => m.mutation.mutation_id);
    assert.deepEqual(ids, ids.map((_, i) => ids[0]! + i), 'contiguous mutation ids');
    const rest = await api<Snapshot>(server.url, alice.access, 'GET', `/v1/sessions/${sid}`);
    assert.equal(rest.version, 200);
    assert.deepEqual(rest.messages.map((m) => m.content), all.map((_, i) => `offline ${i}`));
    await eventually(() => s.version === 200, 'replica caught up');
    assert.ok(s.state.messages.every((m) => !m.pending));
  } finally {
    await c.close();
  }
});

test('a member removed by the owner sees the session end and does not subscribe again', async () => {
  const bob = await registerUser(server.url);
  const sid = await createSession(server.url, alice.access);
  await api(server.url, alice.access, 'POST', `/v1/sessions/${sid}/members`, { email: bob.email, role: 'editor' });
  const c = client(server.url, bob);
  try {
    const s = c.session(sid);
    await s.ready();
    const ended = new Promise<string>((res) => s.on('ended', (e) => res(e.code)));
    await api(server.url, alice.access, 'DELETE', `/v1/sessions/${sid}/members/${bob.userId}`);
    assert.equal(await ended, 'forbidden');
    assert.equal(s.channel.ended, true);
    // After a reconnect the revoked session stays unsubscribed.
    c.connection.dropSocket();
    await eventually(() => c.state === 'connected', 'reconnected');
    assert.equal(c.channels.get(`session:${sid}`), undefined);
  } finally {
    await c.close();
  }
});
