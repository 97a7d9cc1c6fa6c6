// Every frame the SDK builds, captured by a fake server, must pass protocol/schema/client/.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { FakeServer } from '../harness/fake-server.js';
import { client, waitState } from '../harness/client.js';
import { eventually } from '../harness/server.js';
import type { Switchyard } from '../../src/index.js';

const dir = new URL('../../../../../protocol/schema/client/', import.meta.url);
const ajv = new Ajv2020({ strict: false, allErrors: true });
const validators = new Map(
  readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => [f.replace(/\.json$/, ''), ajv.compile(JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as object)]),
);

const SID = '0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d';
const TURN = '0193a4c3-0000-7000-8000-000000000001';
let fake: FakeServer;
let c: Switchyard;

before(async () => {
  fake = await FakeServer.start();
  fake.expiresAt = Math.floor(Date.now() / 1000) + 3600;
  fake.handlers.set('chat.send', (_f, ws) => {
    setTimeout(() => {
      const ev = (event: string, data: object): string => JSON.stringify({ type: 'event', channel: `session:${SID}`, event, data, ts: Date.now() });
      ws.send(ev('tool.call', { turn_id: TURN, message_id: 'm', call_id: 'call_0', name: 'pick', server: null, tool: 'pick', side: 'client', arguments: { q: 1 } }));
      ws.send(ev('tool.call', { turn_id: TURN, message_id: 'm', call_id: 'call_1', name: 'fail', server: null, tool: 'fail', side: 'client', arguments: {} }));
    }, 10);
    return { turn_id: TURN, message_id: 'm', user_message_id: 'u', model: 'echo', version: 1 };
  });
  c = client(fake.url, { access: 'tok' }, {
    authMode: 'frame',
    device: 'schema test',
    silenceMs: 100,
    tools: {
      pick: { description: 'pick one', parameters: { type: 'object', properties: { q: { type: 'number' } } }, run: () => 'picked' },
      fail: { run: () => { throw new Error('nope'); } },
    },
  });
  await waitState(c, 'connected');
  const s = c.session(SID.toUpperCase());
  await s.ready();
  s.setTitle('t');
  s.mutate([
    { op: 'set_context', key: 'repo', value: { url: 'x' } },
    { op: 'delete_context', key: 'b' },
    { op: 'add_tag', tag: 'u' },
    { op: 'remove_tag', tag: 'l' },
    { op: 'append_message', message_id: 'm1', role: 'user', content: 'hi', metadata: {} },
    { op: 'edit_message', message_id: 'm1', content: 'hello' },
    { op: 'delete_message', message_id: 'm1' },
  ]);
  await c.synced();
  await s.publish('typing', { on: true });
  await s.channel.refreshPresence();
  const turn = s.send('hello', { model: 'echo', maxTokens: 10, temperature: 0.5 });
  await turn.started;
  await eventually(() => fake.received.filter((f) => f.type === 'tool.result').length === 2, 'both tools answered');
  await turn.cancel();
  await c.inband.refreshNow();
  await c.request('session.list', { limit: 10 });
  await eventually(() => fake.received.some((f) => f.type === 'ping'), 'a heartbeat ping');
  // Resubscribe with since on the same connection, then leave.
  s.channel.resync();
  await eventually(() => fake.received.filter((f) => f.type === 'subscribe').length >= 2, 'second subscribe');
  await s.close();
});
after(async () => {
  await c?.close();
  await fake?.stop();
});

test('the SDK sent every kind of frame it can build', () => {
  const kinds = new Set(fake.received.map((f) => f.type));
  for (const k of ['auth', 'subscribe', 'session.push', 'publish', 'presence', 'chat.send', 'tool.result', 'chat.cancel', 'auth.refresh', 'session.list', 'ping', 'unsubscribe']) {
    assert.ok(kinds.has(k), `sent ${k}`);
  }
});

test('every frame the SDK sent matches its JSON Schema', () => {
  const bad: string[] = [];
  for (const f of fake.received) {
    const v = validators.get(f.type);
    if (!v) {
      bad.push(`no schema for ${f.type}`);
      continue;
    }
    const text = `${f.type}: in ${JSON.stringify(f)}`;
    if (!v(f)) bad.push(`${ajv.errorsText(v.errors)} ${text}`);
  }
  assert.deepEqual(bad, []);
});

test('channels go out canonical, and a resubscribe carries since', () => {
  const subs = fake.received.filter((f) => f.type === 'subscribe');
  assert.equal(subs[0]?.channel, `session:${SID}`);
  assert.equal(subs[0]?.since, undefined, 'the first subscribe asks for a snapshot');
  assert.equal(typeof subs[1]?.since, 'number');
  const send = fake.received.find((f) => f.type === 'chat.send');
  assert.deepEqual((send?.tools as Array<{ name: string }>).map((t) => t.name), ['pick', 'fail']);
  const results = fake.received.filter((f) => f.type === 'tool.result').sort((a, b) => String(a.call_id).localeCompare(String(b.call_id)));
  assert.deepEqual(results.map((r) => [r.call_id, r.result ?? null, r.error ?? null]), [
    ['call_0', 'picked', null],
    ['call_1', null, 'nope'],
  ]);
});
