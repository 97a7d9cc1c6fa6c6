import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeAction, upgradeRefusalAction, CloseCodes } from '../../src/index.js';

test('every documented close code maps to the documented action', () => {
  const table: Array<[number, string]> = [
    [CloseCodes.NORMAL, 'reconnect'],
    [CloseCodes.TOO_BIG, 'reconnect'],
    [CloseCodes.RESTART, 'reconnect'],
    [CloseCodes.TRY_AGAIN_LATER, 'reconnect'],
    [CloseCodes.PROTOCOL_ERROR, 'stop'],
    [CloseCodes.AUTH_FAILED, 'reauth'],
    [CloseCodes.AUTH_TIMEOUT, 'reconnect'],
    [CloseCodes.TOKEN_EXPIRED, 'reauth'],
    [CloseCodes.SLOW_CONSUMER, 'reconnect'],
    [CloseCodes.RATE_LIMITED, 'reconnect'],
    [CloseCodes.TOO_MANY_CONNECTIONS, 'stop'],
    [CloseCodes.IDLE_TIMEOUT, 'reconnect'],
    [CloseCodes.ABNORMAL, 'reconnect'],
    [4999, 'reconnect'],
  ];
  for (const [code, kind] of table) assert.equal(closeAction(code).kind, kind, `close ${code}`);
});

test('an expired token is replaced at once; a refused one after a backoff', () => {
  const expired = closeAction(4003);
  const refused = closeAction(4001);
  assert.ok(expired.kind === 'reauth' && expired.immediate);
  assert.ok(refused.kind === 'reauth' && !refused.immediate);
});

test('rate limiting and slow consumers wait at least a while before coming back', () => {
  const rl = closeAction(4029);
  const slow = closeAction(4008);
  assert.ok(rl.kind === 'reconnect' && rl.floorMs >= 1000);
  assert.ok(slow.kind === 'reconnect' && slow.floorMs >= 1000);
  const restart = closeAction(1012);
  assert.ok(restart.kind === 'reconnect' && restart.floorMs === 0, 'a restarting server is left at once');
});

test('HTTP refusals at the upgrade: 401 re-authenticates, 403 stops, 503 retries', () => {
  assert.equal(upgradeRefusalAction(401).kind, 'reauth');
  assert.equal(upgradeRefusalAction(403).kind, 'stop');
  assert.equal(upgradeRefusalAction(503).kind, 'reconnect');
  assert.equal(upgradeRefusalAction(429).kind, 'reconnect');
});
