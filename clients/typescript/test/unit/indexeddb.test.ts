// The IndexedDB queue store (fake-indexeddb): survives a reopen, one queue per tab, a closed
// tab's queue is taken over.
import 'fake-indexeddb/auto';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IndexedDbQueueStore, type StoredMutation } from '../../src/index.js';

/** Web Locks with `ifAvailable`, in one realm: what the store needs from navigator.locks. */
class Locks {
  held = new Set<string>();
  async request(name: string, _opts: { mode: 'exclusive'; ifAvailable: true }, fn: (lock: unknown) => Promise<void> | void): Promise<unknown> {
    if (this.held.has(name)) return fn(null);
    this.held.add(name);
    try {
      return await fn({ name });
    } finally {
      this.held.delete(name);
    }
  }
}

const m = (id: number, sessionId = 's1'): StoredMutation => ({
  sessionId,
  mutation: { client_id: 'c', mutation_id: id, hlc: `${id}:0`, ops: [{ op: 'add_tag', tag: `t${id}` }] },
});

test('a queue written, closed and reopened comes back whole and in order', async () => {
  const locks = new Locks();
  const name = `q-${Math.random()}`;
  const a = await IndexedDbQueueStore.open({ name, locks });
  assert.equal(await a.load(), null, 'first use');
  await a.replace({ clientId: 'c', nextMutationId: 1, hlc: '0:0', mutations: [] });
  await a.append({ clientId: 'c', nextMutationId: 4, hlc: '3:0' }, [m(1), m(2), m(3, 's2')]);
  await a.remove({ clientId: 'c', nextMutationId: 4, hlc: '3:0' }, [1]);
  await a.close();
  const b = await IndexedDbQueueStore.open({ name, locks });
  const state = await b.load();
  assert.equal(state?.clientId, 'c');
  assert.equal(state?.nextMutationId, 4);
  assert.deepEqual(state?.mutations.map((x) => [x.sessionId, x.mutation.mutation_id]), [['s1', 2], ['s2', 3]]);
  await b.close();
});

test('two tabs get two queues; a closed tab leaves its queue to the next one', async () => {
  const locks = new Locks();
  const name = `q-${Math.random()}`;
  const tab1 = await IndexedDbQueueStore.open({ name, locks });
  await tab1.replace({ clientId: 'tab1', nextMutationId: 2, hlc: '1:0', mutations: [m(1)] });
  const tab2 = await IndexedDbQueueStore.open({ name, locks });
  assert.equal(await tab2.load(), null, 'tab1 holds its queue: tab2 starts its own');
  await tab2.replace({ clientId: 'tab2', nextMutationId: 1, hlc: '0:0', mutations: [] });
  await tab1.close();
  const tab3 = await IndexedDbQueueStore.open({ name, locks });
  assert.equal((await tab3.load())?.clientId, 'tab1', 'the closed tab\'s queue is taken over');
  // A new client id (rotation) replaces the old queue, not adds to it.
  await tab3.replace({ clientId: 'tab1b', nextMutationId: 2, hlc: '1:0', mutations: [m(1)] });
  await tab3.close();
  await tab2.close();
  const x = await IndexedDbQueueStore.open({ name, locks });
  const y = await IndexedDbQueueStore.open({ name, locks });
  const z = await IndexedDbQueueStore.open({ name, locks });
  const ids = [(await x.load())?.clientId, (await y.load())?.clientId, (await z.load())?.clientId];
  await Promise.all([x.close(), y.close(), z.close()]);
  assert.deepEqual(ids.sort(), ['tab1b', 'tab2', undefined].sort(), 'tab1 was replaced by tab1b; a third tab starts fresh');
});
