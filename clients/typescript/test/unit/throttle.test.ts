import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket, ThrottledQueue } from '../../src/index.js';


test('the bucket allows its capacity at once, then the rate', () => {
  let now = 0;
  const b = new TokenBucket(10, 10, () => now);
  let n = 0;
  while (b.tryTake()) n++;
  assert.equal(n, 10);
  assert.equal(b.waitMs(), 100, 'one token per 100 ms at 10/s');
  now += 350;
  n = 0;
  while (b.tryTake()) n++;
  assert.equal(n, 3);
  now += 60_000;
  n = 0;
  while (b.tryTake()) n++;
  assert.equal(n, 10, 'never more than the capacity');
});

test('the queue keeps order, drops nothing, and never sends faster than the bucket', () => {
  let now = 0;
  const sent: Array<[number, number]> = [];
  // A fake timer: the test fires it after moving the clock.
  let pending: { fn: () => void; at: number } | null = null;
  const timers = { set: (fn: () => void, ms: number) => (pending = { fn, at: now + ms }), clear: () => (pending = null) };
  const q = new ThrottledQueue<number>(new TokenBucket(5, 5, () => now), (i) => sent.push([now, i]), timers);
  for (let i = 0; i < 23; i++) q.push(i);
  assert.equal(sent.length, 5);
  for (let guard = 0; pending !== null && guard < 1000; guard++) {
    const p: { fn: () => void; at: number } = pending;
    now = p.at;
    pending = null;
    p.fn();
  }
  assert.deepEqual(sent.map(([, i]) => i), Array.from({ length: 23 }, (_, i) => i), 'all, in order');
  // In every 1 s window at most capacity + rate frames.
  for (const [t0] of sent) {
    const inWindow = sent.filter(([t]) => t >= t0 && t < t0 + 1000).length;
    assert.ok(inWindow <= 10, `${inWindow} frames within 1 s of ${t0}`);
  }
  q.clear();
});

test('new limits keep the tokens earned, up to the new capacity', () => {
  let now = 0;
  const b = new TokenBucket(100, 100, () => now);
  b.setRate(2, 2);
  let n = 0;
  while (b.tryTake()) n++;
  assert.equal(n, 2);
});
