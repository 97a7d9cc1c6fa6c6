// A synced session against a scripted server: duplicates and gaps in sync.change, snapshots
// with stamps (tombstones), the optimistic overlay rebased on server changes, and `ahead`.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer, type Frame } from '../harness/fake-server.js';
import { client } from '../harness/client.js';
import { eventually } from '../harness/server.js';
import type { Change, Snapshot, SnapshotReason, Switchyard } from '../../src/index.js';

const SID = '44444444-4444-4444-8444-444444444444';
const CH = `session:${SID}`;
let fake: FakeServer;
let c: Switchyard | null = null;
afterEach(async () => {
  await c?.close();
  c = null;
  await fake?.stop();
});

const change = (version: number, hlc: string, ops: Change['ops'], client_id = 'other'): Change => ({ version, client_id, mutation_id: version, hlc, ops });
const event = (data: object, name = 'sync.change'): string => JSON.stringify({ type: 'event', channel: CH, event: name, data, ts: 1 });
const snapshot = (over: Partial<Snapshot> = {}): Snapshot => ({ version: 0, fields: {}, context: {}, tags: [], messages: [], ...over });

async function setup(replies: Array<(f: Frame) => object>): Promise<{ subs: Frame[] }> {
  fake = await FakeServer.start();
  const subs: Frame[] = [];
  fake.handlers.set('subscribe', (f) => {
    subs.push(f);
    const r = replies[Math.min(subs.length - 1, replies.length - 1)] as (f: Frame) => object;
    return { channel: CH, presence: [], ...r(f) };
  });
  fake.handlers.set('session.push', () => undefined); // mutations stay pending
  c = client(fake.url, { access: 't' });
  return { subs };
}

test('duplicates are dropped; a gap is healed by subscribing again with since', async () => {
  const log = [
    change(1, '10:0', [{ op: 'add_tag', tag: 'one' }]),
    change(2, '20:0', [{ op: 'add_tag', tag: 'two' }]),
    change(3, '30:0', [{ op: 'add_tag', tag: 'three' }]),
    change(4, '40:0', [{ op: 'add_tag', tag: 'four' }]),
  ];
  const { subs } = await setup([
    () => ({ version: 0, snapshot: snapshot() }),
    (f) => ({ version: 4, changes: log.filter((x) => x.version > (f.since as number)) }),
  ]);
  const s = c!.session(SID);
  await s.ready();
  fake.broadcast(event(log[0]!));
  fake.broadcast(event(change(1, '10:0', [{ op: 'remove_tag', tag: 'one' }]))); // a duplicate version
  await eventually(() => s.version === 1, 'v1');
  fake.broadcast(event(log[2]!)); // v2 missing
  fake.broadcast(event(log[3]!));
  await eventually(() => s.version === 4, 'the gap healed and the held change applied');
  assert.equal(subs[1]?.since, 1, 'resubscribed from the last applied version');
  assert.deepEqual(s.state.tags, ['four', 'one', 'three', 'two']);
});

test('snapshot stamps: a tombstone beats an older write, a newer one wins', async () => {
  await setup([() => ({ version: 5, snapshot: snapshot({ version: 5, context: { live: 1 }, stamps: { 'c:gone': { hlc: '50:0', client_id: 'a' }, 'c:live': { hlc: '50:0', client_id: 'a' } } }) })]);
  const s = c!.session(SID);
  await s.ready();
  fake.broadcast(event(change(6, '40:0', [{ op: 'set_context', key: 'gone', value: 'stale' }, { op: 'set_context', key: 'live', value: 'stale' }])));
  await eventually(() => s.version === 6, 'v6');
  assert.deepEqual(s.state.context, { live: 1 }, 'older writes lose to the stamps');
  fake.broadcast(event(change(7, '60:0', [{ op: 'set_context', key: 'gone', value: 'back' }])));
  await eventually(() => s.version === 7, 'v7');
  assert.deepEqual(s.state.context, { live: 1, gone: 'back' });
});

test('the optimistic view is the replica plus pending mutations, rebased on every server change', async () => {
  await setup([() => ({ version: 0, snapshot: snapshot() })]);
  const s = c!.session(SID);
  await s.ready();
  const local = s.setTitle('mine');
  s.appendMessage('draft', { id: 'local-1' });
  assert.equal(s.state.fields.title, 'mine');
  assert.deepEqual(s.state.messages.map((m) => [m.id, m.pending]), [['local-1', true]]);
  const [ms] = local.mutation.hlc.split(':').map(Number) as [number];
  // A remote title with an older clock: the pending local one still wins, as it will on the server.
  fake.broadcast(event(change(1, `${ms - 1000}:0`, [{ op: 'set_field', field: 'title', value: 'older' }, { op: 'append_message', message_id: 'r1', role: 'user', content: 'remote' }])));
  await eventually(() => s.version === 1, 'v1');
  assert.equal(s.state.fields.title, 'mine');
  assert.deepEqual(s.state.messages.map((m) => m.id), ['r1', 'local-1'], 'pending messages after the confirmed ones');
  // A newer remote title beats the pending one: the view shows what the server will keep.
  fake.broadcast(event(change(2, `${ms + 1000}:0`, [{ op: 'set_field', field: 'title', value: 'newer' }])));
  await eventually(() => s.version === 2, 'v2');
  assert.equal(s.state.fields.title, 'newer');
  assert.equal(s.replica.doc.registers.get('f:title')?.value, 'newer');
  assert.equal(s.state.pendingCount, 2);
});

test('a snapshot answering `ahead` drops the replica, tells the app, keeps the pending mutations', async () => {
  await setup([
    () => ({ version: 0, snapshot: snapshot() }),
    () => ({ version: 1, reason: 'ahead', snapshot: snapshot({ version: 1, fields: { title: 'server' } }) }),
  ]);
  const s = c!.session(SID);
  await s.ready();
  for (let v = 1; v <= 3; v++) fake.broadcast(event(change(v, `${v}:0`, [{ op: 'add_tag', tag: `t${v}` }])));
  await eventually(() => s.version === 3, 'v3');
  s.addTag('pending');
  const resets: SnapshotReason[] = [];
  s.on('reset', (r) => resets.push(r.reason));
  fake.closeAll(1012);
  await eventually(() => resets.length === 1, 'reset');
  assert.deepEqual(resets, ['ahead']);
  assert.equal(s.version, 1);
  assert.deepEqual(s.state.tags, ['pending'], 'the future state is gone; the pending tag is still there');
  assert.equal(c!.queue.size, 1);
});

test('presence is rebuilt from the subscribe reply and kept by presence events; broadcasts arrive with their sender', async () => {
  const member = (n: number) => ({ user_id: '00000000-0000-4000-8000-0000000000aa', conn_id: `00000000-0000-4000-8000-00000000000${n}`, device: null, connected_since: n });
  await setup([() => ({ version: 0, snapshot: snapshot(), presence: [member(1), member(2)] })]);
  const s = c!.session(SID);
  await s.ready();
  assert.equal(s.presence.length, 2);
  const seen: Array<{ count: number; joined: number; left: number }> = [];
  s.channel.on('presence', (p) => seen.push({ count: p.count, joined: p.joined.length, left: p.left.length }));
  fake.broadcast(event({ joins: [member(3)], leaves: [member(1)], joined: 1, left: 1, truncated: false, count: 2 }, 'presence.diff'));
  await eventually(() => s.presence.length === 2 && s.presence.some((m) => m.conn_id.endsWith('3')) && !s.presence.some((m) => m.conn_id.endsWith('1')), 'presence updated');
  assert.deepEqual(seen, [{ count: 2, joined: 1, left: 1 }]);
  // A truncated diff lists nobody: the SDK reads the list again (the channel is small).
  let asked = 0;
  fake.handlers.set('presence', () => { asked += 1; return { channel: CH, members: [member(2), member(3), member(4)], count: 3 }; });
  fake.broadcast(event({ joins: [], leaves: [], joined: 30, left: 29, truncated: true, count: 3 }, 'presence.diff'));
  await eventually(() => s.presence.length === 3 && s.channel.presenceCount === 3, 'presence read again after a truncated diff', 3000);
  assert.equal(asked, 1);
  const got: string[] = [];
  s.on('broadcast', (b) => got.push(`${b.event}:${b.from.conn_id.slice(-1)}`));
  fake.broadcast(JSON.stringify({ type: 'broadcast', channel: CH, event: 'cursor', data: { line: 1 }, from: { user_id: member(2).user_id, conn_id: member(2).conn_id }, ts: 1 }));
  fake.broadcast(JSON.stringify({ type: 'event', channel: CH, event: 'typing', data: {}, from: { user_id: member(3).user_id, conn_id: member(3).conn_id }, ts: 1 }));
  await eventually(() => got.length === 2, 'two broadcasts');
  assert.deepEqual(got, ['cursor:2', 'typing:3'], 'the new broadcast frame and the old event-with-from shape');
  await assert.rejects(s.publish('chat.delta', {}), (e: { code: string }) => e.code === 'reserved_event');
});
