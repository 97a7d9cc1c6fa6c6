// Crashes on both sides: the server SIGKILLed mid-stream and restarted on the same port and
// data dir; a client process SIGKILLed with a queue on disk and started again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer, createSession, eventually, registerUser, api, type TestUser } from '../harness/server.js';
import { client, waitState } from '../harness/client.js';
import { JsonFileQueueStore, type Snapshot } from '../../src/node.js';

let server: TestServer;
let alice: TestUser;
const dir = mkdtempSync(join(tmpdir(), 'switchyard-ts-queue-'));

before(async () => {
  server = await TestServer.start();
  alice = await registerUser(server.url);
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a server killed with SIGKILL mid-stream and restarted loses and doubles nothing', async () => {
  const sid = await createSession(server.url, alice.access);
  const c = client(server.url, alice);
  const states: string[] = [];
  c.on('state', (s) => states.push(s.state));
  try {
    const s = c.session(sid);
    await s.ready();
    const all = [];
    for (let i = 0; i < 150; i++) all.push(s.appendMessage(`m${i}`, { id: `m-${i}` }));
    // Kill once some, not all, are confirmed.
    await all[20]!.confirmed;
    await server.kill('SIGKILL');
    for (let i = 150; i < 300; i++) all.push(s.appendMessage(`m${i}`, { id: `m-${i}` }));
    await waitState(c, 'disconnected');
    await server.launch();
    const versions = (await Promise.all(all.map((m) => m.confirmed))).map((r) => r.version);
    assert.equal(new Set(versions).size, 300, 'every mutation applied once, at its own version');
    const rest = await api<Snapshot>(server.url, alice.access, 'GET', `/v1/sessions/${sid}`);
    assert.equal(rest.version, 300);
    assert.deepEqual(rest.messages.map((m) => m.content), all.map((_, i) => `m${i}`));
    await eventually(() => s.version === 300, 'the replica caught up after the restart');
    assert.deepEqual(s.state.messages.map((m) => m.id), rest.messages.map((m) => m.id));
    assert.ok(states.includes('disconnected') && states.lastIndexOf('connected') > states.indexOf('disconnected'), `reconnected: ${states.join(',')}`);
  } finally {
    await c.close();
  }
});

const writer = fileURLToPath(new URL('./helpers/queue-writer.js', import.meta.url));

function runWriter(args: string[], until: (line: string) => boolean): Promise<{ kill: () => void; lines: string[] }> {
  const p = spawn(process.execPath, [writer, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    let buf = '';
    p.stdout.on('data', (b: Buffer) => {
      buf += b.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      for (const l of parts) {
        lines.push(l);
        if (until(l)) resolve({ kill: () => p.kill('SIGKILL'), lines });
      }
    });
    p.once('exit', (code) => reject(new Error(`writer exited (${code}) early: ${lines.join('|')}`)));
  });
}

test('a client process killed with a queue on disk resumes it with the same client id: exactly once', async () => {
  const sid = await createSession(server.url, alice.access);
  const file = join(dir, 'queue.json');
  // Queued offline, then killed: nothing reached the server.
  const first = await runWriter([server.url, alice.access, sid, file, '120', 'offline'], (l) => l.startsWith('persisted'));
  const clientId = first.lines[0]!.split(' ')[1]!;
  first.kill();
  const store = new JsonFileQueueStore(file);
  const saved = await store.load();
  assert.equal(saved?.clientId, clientId);
  assert.equal(saved?.mutations.length, 120, 'all 120 on disk before the kill');

  // Start it again with the same file, connected: killed after a few were applied.
  const second = await runWriter([server.url, alice.access, sid, file, '0', 'connect'], (l) => l === 'applied 10');
  second.kill();
  // A third run finishes the queue; the ids the second run got applied are retries now.
  const c = client(server.url, alice, { store: new JsonFileQueueStore(file) });
  try {
    await c.queue.ready;
    assert.equal(c.clientId, clientId, 'the same client id after the restart');
    await c.synced();
    const rest = await api<Snapshot>(server.url, alice.access, 'GET', `/v1/sessions/${sid}`);
    assert.deepEqual(rest.messages.map((m) => m.content), Array.from({ length: 120 }, (_, i) => `crash ${i}`));
    assert.equal(rest.version, 120, 'no mutation applied twice');
    assert.equal(c.queue.size, 0);
    assert.equal((await new JsonFileQueueStore(file).load())?.mutations.length, 0, 'the store is empty');
  } finally {
    await c.close();
  }
});
