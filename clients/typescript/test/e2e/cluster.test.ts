// Two server instances sharing PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL): two
// clients, one on each, converge; ephemeral events and presence cross instances. Skipped, with
// the reason printed, when the services are not given.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestServer, api, baseEnv, binaryPath, createSession, eventually, registerUser } from '../harness/server.js';
import { client } from '../harness/client.js';
import type { Snapshot, Switchyard, Turn } from '../../src/index.js';

const pg = process.env.TEST_DATABASE_URL;
const redis = process.env.TEST_REDIS_URL;
const skip = pg && redis ? false : 'needs TEST_DATABASE_URL and TEST_REDIS_URL (PostgreSQL and Redis shared by two instances)';
if (skip) console.log(`# cluster.test: skipped: ${skip}`);

/** A fresh database on the TEST_DATABASE_URL server (named like the Rust tests', so CI drops it). */
function freshDatabase(base: string): string {
  const name = `sy_test_ts_${process.pid}_${Date.now()}`;
  execFileSync('psql', [base, '-qc', `CREATE DATABASE ${name}`], { stdio: 'inherit' });
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

const cleanup: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test('two clients on two instances sharing PostgreSQL and Redis converge, and one joins the other\'s turn', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-ts-cluster-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'shared-key.pem');
  execFileSync(binaryPath(), ['keygen', '--out', keyFile], { stdio: 'ignore', env: baseEnv() });
  const databaseUrl = freshDatabase(pg as string);
  const dbName = new URL(databaseUrl).pathname.slice(1);
  // Runs after the servers stopped (cleanups run in reverse).
  cleanup.push(() => {
    execFileSync('psql', [pg as string, '-qc', `DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`], { stdio: 'inherit' });
  });
  const shared = { databaseUrl, redisUrl: redis as string, redisPrefix: `ts-cluster-${process.pid}-${Date.now()}:`, env: { SWITCHYARD_AUTH_KEY_FILES: keyFile, SWITCHYARD_LLM_ECHO_CHUNK_DELAY_MS: '20' } };
  const a = await TestServer.start({ ...shared, dataDir: join(dir, 'a') });
  cleanup.push(() => a.stop());
  const b = await TestServer.start({ ...shared, dataDir: join(dir, 'b') });
  cleanup.push(() => b.stop());
  const user = await registerUser(a.url);
  const sid = await createSession(a.url, user.access, 'shared');
  const onA = client(a.url, user, { device: 'on-a' });
  const onB = client(b.url, user, { device: 'on-b' });
  const clients: Switchyard[] = [onA, onB];
  cleanup.push(() => Promise.all(clients.map((c) => c.close())).then(() => undefined));
  const sa = onA.session(sid);
  const sb = onB.session(sid);
  await Promise.all([sa.ready(), sb.ready()]);
  await eventually(() => sa.presence.length === 2 && sb.presence.length === 2, 'presence crosses instances');
  const heard: string[] = [];
  sb.on('broadcast', (e) => heard.push(e.event));
  await sa.publish('cursor', { line: 3 });
  await eventually(() => heard.includes('cursor'), 'an ephemeral event crosses instances');
  for (let i = 0; i < 25; i++) {
    sa.setContext('k', `a${i}`);
    sb.setContext('k', `b${i}`);
    sa.appendMessage(`from a ${i}`);
    sb.appendMessage(`from b ${i}`);
    if (i % 5 === 0) (i % 2 ? sa : sb).addTag(`t${i}`);
  }
  await Promise.all([onA.synced(), onB.synced()]);
  const rest = await api<Snapshot>(b.url, user.access, 'GET', `/v1/sessions/${sid}`);
  await eventually(() => sa.version === rest.version && sb.version === rest.version, 'both replicas at the server version');
  assert.equal(rest.messages.length, 50);
  for (const s of [sa, sb]) {
    assert.deepEqual(s.state.context, rest.context);
    assert.deepEqual(s.state.tags, [...rest.tags].sort());
    assert.deepEqual(s.state.fields, rest.fields);
    assert.deepEqual(s.state.messages.map((m) => m.id), rest.messages.map((m) => m.id));
  }

  // A turn started on A, joined from a fresh client on B while it streams.
  const text = Array.from({ length: 50 }, (_, i) => `w${i}`).join(' ');
  const turn = sa.send(text, { model: 'echo' });
  await eventually(() => turn.index >= 8, 'the turn is under way on A');
  const late = client(b.url, user, { device: 'late-on-b' });
  clients.push(late);
  const sl = late.session(sid);
  const joined = await new Promise<Turn>((res) => sl.on('turn', res));
  const before = joined.text;
  const after: string[] = [];
  joined.on('delta', (d) => after.push(d.text));
  const r = await joined.done;
  assert.equal(r.status, 'complete');
  assert.equal(before + after.join(''), text, 'the text so far plus the later deltas, across instances, nothing twice');
  assert.equal((await turn.done).text, text);
});
