import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HybridClock, compareHlc, formatHlc, parseHlc } from '../../src/index.js';

test('now() is strictly increasing even when the wall clock stands still or goes back', () => {
  let wall = 1000;
  const c = new HybridClock(() => wall);
  const a = c.now();
  const b = c.now();
  wall = 900;
  const d = c.now();
  wall = 2000;
  const e = c.now();
  assert.deepEqual([a, b, d, e], [{ ms: 1000, counter: 0 }, { ms: 1000, counter: 1 }, { ms: 1000, counter: 2 }, { ms: 2000, counter: 0 }]);
});

test('observe() moves the clock past the server clock (as src/sync/hlc.rs)', () => {
  const c = new HybridClock(() => 1000);
  c.observe({ ms: 5000, counter: 3 });
  assert.deepEqual(c.now(), { ms: 5000, counter: 4 });
  c.observe({ ms: 10, counter: 0 });
  assert.deepEqual(c.now(), { ms: 5000, counter: 5 }, 'an older clock changes nothing');
});

test('a counter at the server\'s limit moves to the next millisecond', () => {
  const c = new HybridClock(() => 10);
  c.observe({ ms: 50, counter: 1_000_000 });
  assert.deepEqual(c.now(), { ms: 51, counter: 0 });
});

test('a device clock far ahead of the server is corrected; one behind is left alone', () => {
  const c = new HybridClock(() => 1_000_000);
  c.calibrate(1_000_000 - 120_000);
  assert.equal(c.now().ms, 880_000);
  const d = new HybridClock(() => 1_000_000);
  d.calibrate(1_000_000 + 120_000);
  assert.equal(d.now().ms, 1_000_000);
});

test('wire format "<ms>:<counter>" round-trips; junk is refused', () => {
  assert.deepEqual(parseHlc('1795000000123:7'), { ms: 1795000000123, counter: 7 });
  assert.equal(formatHlc({ ms: 12, counter: 3 }), '12:3');
  for (const bad of ['12', '12:', ':3', '1.5:2', '-1:0', '12:3:4', '99999999999999999999:0']) assert.equal(parseHlc(bad), null, bad);
  assert.ok(compareHlc({ ms: 9, counter: 9 }, { ms: 10, counter: 0 }) < 0);
  assert.ok(compareHlc({ ms: 10, counter: 1 }, { ms: 10, counter: 0 }) > 0);
});
