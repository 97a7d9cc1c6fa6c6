// The mutation queue against a fake server that keeps the server's exactly-once bookkeeping.
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeServer } from '../harness/fake-server.js';
import { client } from '../harness/client.js';
import { MemoryQueueStore, type Switchyard, type RefusedMutation } from '../../src/index.js';
import { eventually } from '../harness/server.js';

const S1 = '11111111-1111-4111-8111-111111111111';
const S2 = '22222222-2222-4222-8222-222222222222';
let fake: FakeServer;
let c: Switchyard | null = null;
afterEach(async () => {
  await c?.close();
  c = null;
  await fake?.stop();
});

type Pushed = { session_id: string; mutations: Array<{ client_id: string; mutation_id: number; hlc: string }> };

test('ids are contiguous across sessions and pushes keep queue order, one session per batch', async () => {
  fake = await FakeServer.start();
  c = client(fake.url, { access: 't' }, { autoConnect: false, maxBatch: 3 });
  const a = c.session(S1);
  const b = c.session(S2);
  const all = [a.setTitle('1'), a.setTitle('2'), b.setTitle('3'), a.setTitle('4'), a.setTitle('5'), a.setTitle('6'), a.setTitle('7'), b.setTitle('8')];
  await c.queue.ready;
  c.connect();
  await Promise.all(all.map((m) => m.confirmed));
  const ids = all.map((m) => m.mutation.mutation_id);
  assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7, 8]);
  const batches = (fake.pushes as unknown as Pushed[]).map((p) => [p.session_id === S1 ? 'a' : 'b', p.mutations.map((m) => m.mutation_id)]);
  assert.deepEqual(batches, [['a', [1, 2]], ['b', [3]], ['a', [4, 5, 6]], ['a', [7]], ['b', [8]]]);
  const hlcs = all.map((m) => m.mutation.hlc);
  const parsed = hlcs.map((h) => h.split(':').map(Number) as [number, number]);
  for (let i = 1; i < parsed.length; i++) {
    const [pm, pc] = parsed[i - 1]!;
    const [m, cn] = parsed[i]!;
    assert.ok(m > pm || (m === pm && cn > pc), `hlc ${hlcs[i]} after ${hlcs[i - 1]}`);
  }
});

test('a retry of an already applied id is answered, not applied twice; the store is emptied', async () => {
  fake = await FakeServer.start();
  const store = new MemoryQueueStore();
  // First run: the server applies, but the reply is lost (the socket drops before it).
  let drop = true;
  fake.handlers.set('session.push', (f, ws) => {
    const r = fake.push(f);
    if (drop) {
      drop = false;
      ws.terminate();
      return undefined;
    }
    return r;
  });
  c = client(fake.url, { access: 't' }, { store });
  const s = c.session(S1);
  const m = s.setContext('k', 1);
  const { version } = await m.confirmed;
  assert.equal(fake.version, 1, 'applied once on the server');
  assert.equal(fake.pushes.length, 2, 'pushed again after the reconnect');
  assert.equal(version, 0, 'the retry got the stored answer');
  await c.synced();
  assert.equal((await store.load())?.mutations.length, 0);
});

test('client_id_taken moves the queue to a new client id, renumbered from 1', async () => {
  fake = await FakeServer.start();
  let taken = true;
  fake.pushResult = (m) => (taken && m.client_id === 'stolen' && m.mutation_id === 1 ? { status: 'refused', client_id: m.client_id, mutation_id: 1, error: 'client_id is in use by another account; pick a new one', code: 'client_id_taken' } : null);
  c = client(fake.url, { access: 't' }, { clientId: 'stolen' });
  const rotated: string[] = [];
  c.queue.on('rotated', (r) => rotated.push(`${r.previous}->${r.clientId}`));
  const s = c.session(S1);
  const m1 = s.setTitle('a');
  const m2 = s.setTitle('b');
  await eventually(() => rotated.length === 1, 'rotated');
  taken = false;
  await Promise.all([m1.confirmed, m2.confirmed]);
  assert.ok(c.clientId !== 'stolen');
  assert.deepEqual([m1.mutation.mutation_id, m2.mutation.mutation_id], [1, 2]);
  assert.equal(m1.mutation.client_id, c.clientId);
});

test('a refused mutation is dropped and reported; the ones after it still land', async () => {
  fake = await FakeServer.start();
  fake.pushResult = (m) => (m.mutation_id === 2 ? { status: 'refused', client_id: m.client_id, mutation_id: 2, error: 'clock too far ahead', code: 'clock_ahead' } : null);
  c = client(fake.url, { access: 't' });
  const refused: RefusedMutation[] = [];
  c.on('refused', (r) => refused.push(r));
  const s = c.session(S1);
  const [m1, m2, m3] = [s.setTitle('1'), s.setTitle('2'), s.setTitle('3')];
  await m1.confirmed;
  await assert.rejects(m2.confirmed, (e: { code: string; param?: string }) => e.code === 'refused' && e.param === 'clock_ahead');
  await m3.confirmed;
  assert.deepEqual(refused.map((r) => [r.mutation.mutation_id, r.code]), [[2, 'clock_ahead']]);
  assert.equal(c.queue.size, 0);
});

test('a session that refuses the whole push drops only its mutations; the rest move to a new client id', async () => {
  fake = await FakeServer.start();
  fake.handlers.set('session.push', (f, ws) => {
    if (f.session_id === S1) {
      ws.send(JSON.stringify({ type: 'error', id: f.id, code: 'forbidden', message: 'viewers cannot change this session' }));
      return undefined;
    }
    return fake.push(f);
  });
  c = client(fake.url, { access: 't' });
  const a = c.session(S1);
  const b = c.session(S2);
  const first = c.clientId;
  const ma = a.setTitle('no');
  const mb = b.setTitle('yes');
  await assert.rejects(ma.confirmed);
  const { version } = await mb.confirmed;
  assert.equal(version, 1);
  assert.notEqual(mb.mutation.client_id, first);
  assert.equal(mb.mutation.mutation_id, 1, 'renumbered under the new id');
});

test('out_of_order for ids the queue no longer has (the server lost them) moves the queue to a new client id', async () => {
  fake = await FakeServer.start();
  c = client(fake.url, { access: 't' }, { clientId: 'oo', autoConnect: false });
  const s = c.session(S1);
  await c.queue.ready;
  const ms = [s.setTitle('a'), s.setTitle('b')];
  c.connect();
  await Promise.all(ms.map((m) => m.confirmed));
  // Now the server forgets (a restored backup): it expects 1 again while the queue is at 3.
  fake.lastIds.set('oo', 0);
  const later = s.setTitle('c');
  await later.confirmed;
  assert.notEqual(later.mutation.client_id, 'oo', 'a new client id, since ids 1-2 are gone');
  assert.equal(later.mutation.mutation_id, 1);
});
