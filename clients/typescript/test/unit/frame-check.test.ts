import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalChannel, canonicalUuid, encodeChecked, jsonDepth, utf8Length, SwitchyardError } from '../../src/index.js';

test('depth counts the frame object itself', () => {
  assert.equal(jsonDepth(1), 0);
  assert.equal(jsonDepth({}), 1);
  assert.equal(jsonDepth({ a: [1, { b: 2 }] }), 3);
  let deep: unknown = 0;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  assert.equal(jsonDepth(deep, 40), 41, 'stops early, no stack overflow');
});

test('frames over the byte limit or too deep are refused with typed errors', () => {
  const limits = { maxFrameBytes: 100, maxJsonDepth: 4 };
  assert.equal(encodeChecked({ type: 'ping', id: '1' }, limits), '{"type":"ping","id":"1"}');
  assert.throws(() => encodeChecked({ type: 'x', pad: 'é'.repeat(50) }, limits), (e: SwitchyardError) => e.code === 'frame_too_large');
  assert.throws(() => encodeChecked({ a: { b: { c: { d: {} } } } }, limits), (e: SwitchyardError) => e.code === 'too_deep');
  assert.equal(utf8Length('é€😀'), 2 + 3 + 4);
});

test('channel names are canonicalized before sending', () => {
  const id = '0193A4C2-8F1E-7C3A-9D1B-2E4F5A6B7C8D';
  assert.equal(canonicalChannel(`session:${id}`), 'session:0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d');
  assert.equal(canonicalChannel('SESSION:0193a4c28f1e7c3a9d1b2e4f5a6b7c8d'), 'session:0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d');
  assert.equal(canonicalUuid(`{${id}}`), '0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d');
  assert.equal(canonicalUuid(`urn:uuid:${id}`), '0193a4c2-8f1e-7c3a-9d1b-2e4f5a6b7c8d');
  assert.throws(() => canonicalChannel('session:nope'), (e: SwitchyardError) => e.code === 'bad_channel');
  assert.throws(() => canonicalChannel(`room:${id}`), (e: SwitchyardError) => e.code === 'bad_channel');
});
