import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../src/index.js';

test('the window doubles from the base and stops at the cap', () => {
  const b = new Backoff({ baseMs: 100, capMs: 1000 });
  assert.deepEqual([0, 1, 2, 3, 4, 5, 60].map((n) => b.windowFor(n)), [100, 200, 400, 800, 1000, 1000, 1000]);
});

test('full jitter: every delay is within [0, window], and spans the window', () => {
  let r = 0;
  const values = [0, 0.5, 0.999999];
  const b = new Backoff({ baseMs: 100, capMs: 10_000, random: () => values[r++ % values.length] as number });
  const got = Array.from({ length: 9 }, () => b.next());
  // attempts 0..8 -> windows 100, 200, 400, ... ; random 0, .5, ~1 in turn
  assert.deepEqual(got, [0, 100, 399, 0, 800, 3199, 0, 5000, 9999]);
  const real = new Backoff({ baseMs: 50, capMs: 400 });
  for (let i = 0; i < 200; i++) {
    const w = real.windowFor(real.attempt);
    const d = real.next();
    assert.ok(d >= 0 && d <= w, `${d} within [0, ${w}]`);
  }
});

test('a floor raises short delays; reset starts over', () => {
  const b = new Backoff({ baseMs: 100, capMs: 1000, random: () => 0 });
  assert.equal(b.next(2000), 2000);
  assert.equal(b.attempt, 1);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.windowFor(b.attempt), 100);
});
