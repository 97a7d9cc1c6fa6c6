// MCP status from user-channel events, and chat turns healing an index gap by resubscribing.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer, type Frame } from '../harness/fake-server.js';
import { client } from '../harness/client.js';
import { eventually } from '../harness/server.js';
import type { McpStatus, Switchyard, Turn } from '../../src/index.js';

const USER = 'user:00000000-0000-4000-8000-0000000000aa';
const SID = '55555555-5555-4555-8555-555555555555';
const CH = `session:${SID}`;
const TURN = '0193a4c3-0000-7000-8000-0000000000ff';
let fake: FakeServer;
let c: Switchyard | null = null;
afterEach(async () => {
  await c?.close();
  c = null;
  await fake?.stop();
});

const status = (id: string, state: McpStatus['state'], updated_at: number): McpStatus => ({
  server_id: `00000000-0000-4000-8000-00000000000${id}`,
  name: `srv${id}`,
  state,
  tool_count: 0,
  tools: [],
  updated_at,
});
const ev = (channel: string, event: string, data: object): string => JSON.stringify({ type: 'event', channel, event, data, ts: 1 });

test('mcp.status: the list after welcome, then per-server updates, observable per server', async () => {
  fake = await FakeServer.start();
  c = client(fake.url, { access: 't' });
  const seen: string[] = [];
  const off = c.mcp.watch(status('1', 'ready', 0).server_id, (s) => seen.push(s.state));
  await c.connected();
  fake.broadcast(ev(USER, 'mcp.status', { servers: [status('1', 'connecting', 1), status('2', 'ready', 1)] }));
  fake.broadcast(ev(USER, 'mcp.status', { servers: [status('1', 'ready', 2)] }));
  fake.broadcast(ev(USER, 'mcp.status', { servers: [status('1', 'error', 1)] })); // older than what we have
  await eventually(() => seen.length === 2, 'two updates of server 1');
  assert.deepEqual(seen, ['connecting', 'ready']);
  assert.deepEqual(c.mcp.servers.map((s) => [s.name, s.state]), [['srv1', 'ready'], ['srv2', 'ready']]);
  off();
});

test('a gap in delta indexes is healed from the subscribe reply; duplicates are dropped', async () => {
  fake = await FakeServer.start();
  const subs: Frame[] = [];
  fake.handlers.set('subscribe', (f) => {
    subs.push(f);
    const base = { channel: CH, presence: [], version: 0 };
    if (subs.length === 1) return { ...base, snapshot: { version: 0, fields: {}, context: {}, tags: [], messages: [] } };
    return { ...base, changes: [], turn: { turn_id: TURN, message_id: 'r', model: 'echo', index: 4, content: 'a b c d ' } };
  });
  c = client(fake.url, { access: 't' });
  const s = c.session(SID);
  await s.ready();
  const turnP = new Promise<Turn>((res) => s.on('turn', res));
  const delta = (index: number, text: string): string => ev(CH, 'chat.delta', { turn_id: TURN, message_id: 'r', index, text });
  fake.broadcast(delta(1, 'a '));
  const t = await turnP;
  assert.equal(t.local, false, 'a turn someone else started');
  const gaps: number[] = [];
  t.on('gap', (g) => gaps.push(g.expected));
  fake.broadcast(delta(2, 'b '));
  fake.broadcast(delta(4, 'd ')); // 3 is missing
  await eventually(() => subs.length === 2, 'resubscribed to refetch the turn');
  await eventually(() => t.index === 4, 'text restored up to the reply\'s index');
  fake.broadcast(delta(4, 'd ')); // a duplicate
  fake.broadcast(delta(5, 'e'));
  fake.broadcast(ev(CH, 'chat.done', { turn_id: TURN, message_id: 'r', index: 5, status: 'complete', finish_reason: 'stop', usage: null }));
  const r = await t.done;
  assert.deepEqual(gaps, [3]);
  assert.equal(r.text, 'a b c d e');
  assert.equal(r.status, 'complete');
});
