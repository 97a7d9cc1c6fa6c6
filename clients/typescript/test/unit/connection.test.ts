// The connection against a scripted server: auth modes, limits, silence, close codes that a
// real server cannot be made to send, and hostile frames.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer } from '../harness/fake-server.js';
import { client, waitState } from '../harness/client.js';
import { eventually } from '../harness/server.js';
import type { StateChange, Switchyard } from '../../src/index.js';

let fake: FakeServer;
let c: Switchyard | null = null;
afterEach(async () => {
  await c?.close();
  c = null;
  await fake?.stop();
});

function states(x: Switchyard): StateChange[] {
  const seen: StateChange[] = [];
  x.on('state', (s) => seen.push(s));
  return seen;
}

test('header auth sends the bearer on the upgrade; frame auth sends an auth frame first', async () => {
  fake = await FakeServer.start();
  c = client(fake.url, { access: 'tok-1' }, { device: 'test rig' });
  await waitState(c, 'connected');
  assert.equal(fake.authHeaders[0], 'Bearer tok-1');
  await c.close();
  c = client(fake.url, { access: 'tok-2' }, { authMode: 'frame', device: 'browser' });
  await waitState(c, 'connected');
  assert.equal(fake.authHeaders[1], undefined);
  assert.deepEqual(fake.received[0], { type: 'auth', id: fake.received[0]?.id, token: 'tok-2', device: 'browser' });
});

test('4000 stops for good; 4008 reconnects after a pause', async () => {
  fake = await FakeServer.start();
  c = client(fake.url, { access: 't' });
  const seen = states(c);
  await waitState(c, 'connected');
  fake.closeAll(4008, 'slow consumer');
  await eventually(() => seen.some((s) => s.code === 4008), '4008 seen');
  const slow = seen.find((s) => s.code === 4008);
  assert.equal(slow?.state, 'disconnected');
  assert.ok((slow?.retryInMs ?? 0) >= 1000);
  await waitState(c, 'connected');
  fake.closeAll(4000, 'protocol error');
  await waitState(c, 'closed');
  assert.equal(seen.at(-1)?.code, 4000);
});

test('silence: the client pings, and drops a link that does not answer', async () => {
  fake = await FakeServer.start();
  let answer = true;
  fake.handlers.set('ping', () => (answer ? { server_time: Date.now() } : undefined));
  c = client(fake.url, { access: 't' }, { silenceMs: 200, pingTimeoutMs: 300 });
  const seen = states(c);
  await waitState(c, 'connected');
  await eventually(() => fake.received.some((f) => f.type === 'ping'), 'a ping after silence');
  await new Promise((r) => setTimeout(r, 700));
  assert.ok(!seen.some((s) => s.state === 'disconnected'), 'answered pings keep the link');
  answer = false;
  await eventually(() => seen.some((s) => s.state === 'disconnected'), 'an unanswered ping drops the link');
  await waitState(c, 'connected');
  assert.ok(fake.sockets.length >= 2, 'reconnected');
});

test('a getToken that never answers is timed out and asked again', async () => {
  fake = await FakeServer.start();
  let calls = 0;
  c = client(fake.url, { access: 't' }, {
    connectTimeoutMs: 200,
    getToken: () => (++calls === 1 ? new Promise<string>(() => {}) : 'tok'),
  });
  await waitState(c, 'connected');
  assert.equal(calls, 2);
  assert.equal(fake.authHeaders[0], 'Bearer tok');
});

test('the welcome limits are used: frame size is checked against max_frame_bytes', async () => {
  fake = await FakeServer.start();
  fake.limits = { ...fake.limits, max_frame_bytes: 300 };
  c = client(fake.url, { access: 't' });
  await waitState(c, 'connected');
  await assert.rejects(c.request('publish', { channel: 'x', event: 'e', data: 'x'.repeat(400) }), (e: { code: string }) => e.code === 'frame_too_large');
  await c.request('ping');
});

test('hostile frames do not throw out of the event loop, and the client keeps working', async () => {
  fake = await FakeServer.start();
  const sid = '33333333-3333-4333-8333-333333333333';
  c = client(fake.url, { access: 't' });
  const errors: unknown[] = [];
  const onErr = (e: unknown): void => {
    errors.push(e);
  };
  process.on('uncaughtException', onErr);
  try {
    const s = c.session(sid);
    await s.ready();
    const ch = `session:${sid}`;
    for (const junk of [
      'not json',
      '[]',
      'null',
      '42',
      '{"type":5}',
      '{"type":"ok"}',
      '{"type":"ok","id":{"x":1}}',
      '{"type":"error","id":"r1"}',
      '{"type":"welcome"}',
      `{"type":"event","channel":"${ch}"}`,
      `{"type":"event","channel":"${ch}","event":"sync.change","data":null}`,
      `{"type":"event","channel":"${ch}","event":"sync.change","data":{"version":1,"client_id":"x","hlc":"1:0","ops":[null,5,{"op":"edit_message"},{"op":"set_field"}]}}`,
      `{"type":"event","channel":"${ch}","event":"sync.change","data":{"version":"two"}}`,
      `{"type":"event","channel":"${ch}","event":"chat.delta","data":{"turn_id":7}}`,
      `{"type":"event","channel":"${ch}","event":"chat.delta","data":{"turn_id":"t","index":"1","text":3}}`,
      `{"type":"event","channel":"${ch}","event":"chat.done","data":{"turn_id":"t"}}`,
      `{"type":"event","channel":"${ch}","event":"tool.call","data":{"turn_id":"t","side":"client"}}`,
      `{"type":"event","channel":"${ch}","event":"presence.diff","data":"someone"}`,
      `{"type":"event","channel":"${ch}","event":"presence.diff","data":{"joins":[null,{"conn_id":5}],"leaves":"x","count":"many"}}`,
      `{"type":"event","channel":"${ch}","event":"sync.resync","data":[]}`,
      `{"type":"broadcast","channel":"${ch}","event":"cursor","data":1}`,
      `{"type":"event","channel":"user:00000000-0000-4000-8000-0000000000aa","event":"mcp.status","data":{"servers":[null,{"server_id":1}]}}`,
    ]) {
      fake.broadcast(junk);
    }
    await c.request('ping');
    assert.deepEqual(errors, []);
    assert.equal(c.state, 'connected');
    s.setTitle('after the junk');
    assert.equal(s.state.fields.title, 'after the junk');
  } finally {
    process.off('uncaughtException', onErr);
  }
});

test('a request made offline waits for the connection; one sent before a drop rejects with disconnected', async () => {
  fake = await FakeServer.start();
  fake.handlers.set('publish', () => undefined); // never answered
  c = client(fake.url, { access: 't' }, { autoConnect: false });
  const early = c.request('ping');
  c.connect();
  const r = (await early) as { server_time?: number };
  assert.equal(typeof r.server_time, 'number');
  const hanging = c.request('publish', { channel: 'x', event: 'e', data: 1 });
  await eventually(() => fake.received.some((f) => f.type === 'publish'), 'sent');
  fake.closeAll(1012);
  await assert.rejects(hanging, (e: { code: string }) => e.code === 'disconnected');
  await assert.rejects(c.request('ping', {}, { timeoutMs: 1 }), (e: { code: string }) => e.code === 'timeout');
});
