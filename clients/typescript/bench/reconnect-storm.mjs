// Reconnect storm: N SDK clients in one Node process (a handful of users), each subscribed to
// a session with history. The server is killed (SIGKILL) and restarted on the same port and
// data dir; we measure how long until every client is connected, resubscribed and caught up
// (replica version = the server's version, which moved on while they were away).
//
//   npm run build:test && SWITCHYARD_BIN=<path> node bench/reconnect-storm.mjs [--clients 1000]
//     [--users 10] [--sessions-per-user 2] [--history 50] [--down-ms 0] [--base-ms 500] [--cap-ms 30000]
//
// The clients use the SDK's default backoff (0.5 s first window, 30 s cap, full jitter) unless
// --base-ms/--cap-ms say otherwise; a small base shows what the server and the catch-up cost
// apart from the jittered wait.
//
// Bounded: one kill, one restart, a 120 s guard; everything on 127.0.0.1.
import { TestServer, registerUser, api, createSession } from '../build/test/harness/server.js';
import { client } from '../build/test/harness/client.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('clients', 1000);
const USERS = arg('users', 10);
const PER_USER = arg('sessions-per-user', 2);
const HISTORY = arg('history', 50);
const DOWN_MS = arg('down-ms', 0);
const BACKOFF = { baseMs: arg('base-ms', 500), capMs: arg('cap-ms', 30_000) };
const GUARD_MS = 120_000;

const now = () => performance.now();
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;

const server = await TestServer.start({ env: { SWITCHYARD_WS_MAX_CONNECTIONS_PER_USER: '100000', SWITCHYARD_LOG_LEVEL: 'error' } });
console.log(`server on ${server.url} (data ${server.dataDir})`);
try {
  const users = await Promise.all(Array.from({ length: USERS }, () => registerUser(server.url)));
  const sessions = [];
  for (const u of users) {
    for (let k = 0; k < PER_USER; k++) {
      const id = await createSession(server.url, u.access, `storm ${k}`);
      const muts = Array.from({ length: HISTORY }, (_, i) => ({
        client_id: `seed-${sessions.length}`,
        mutation_id: i + 1,
        hlc: `${Date.now() + i}:0`,
        ops: [{ op: 'append_message', message_id: `seed-${i}`, role: 'user', content: `history ${i} `.repeat(5) }],
      }));
      for (let i = 0; i < muts.length; i += 100) {
        const r = await api(server.url, u.access, 'POST', `/v1/sessions/${id}/mutations`, { mutations: muts.slice(i, i + 100) });
        if (r.results.some((x) => x.status !== 'applied')) throw new Error(`seeding refused: ${JSON.stringify(r.results[0])}`);
      }
      sessions.push({ id, user: u, n: sessions.length });
    }
  }
  console.log(`${USERS} users, ${sessions.length} sessions with ${HISTORY} changes each`);

  const t0 = now();
  const clients = Array.from({ length: N }, (_, i) => {
    const { id, user } = sessions[i % sessions.length];
    const c = client(server.url, user, { backoff: BACKOFF, requestTimeoutMs: 60_000 });
    return { c, s: c.session(id), sid: id, user };
  });
  await Promise.all(clients.map((x) => x.s.ready()));
  console.log(`${N} clients connected and subscribed in ${fmt(now() - t0)}`);

  const serverVersion = new Map();
  const caughtUp = () => clients.every((x) => x.c.state === 'connected' && x.s.channel.live && x.s.version === serverVersion.get(x.sid));
  for (const { id, user } of sessions) serverVersion.set(id, (await api(server.url, user.access, 'GET', `/v1/sessions/${id}`)).version);
  if (!caughtUp()) throw new Error('clients not caught up before the kill');

  // Per client: when it was back (connected, resubscribed, at the server's version).
  let kill = 0;
  const backAt = new Array(N).fill(0);
  clients.forEach((x, i) => {
    const check = () => {
      if (backAt[i] === 0 && kill !== 0 && x.c.state === 'connected' && x.s.channel.live && x.s.version === serverVersion.get(x.sid)) backAt[i] = now();
    };
    x.s.on('synced', check);
    x.s.on('change', check);
  });
  const killAt = now();
  kill = killAt;
  await server.kill('SIGKILL');
  if (DOWN_MS > 0) await new Promise((r) => setTimeout(r, DOWN_MS));
  const restartAt = now();
  await server.launch();
  const readyAt = now();
  // The sessions move on while the clients are away: one more change each.
  for (const { id, user, n } of sessions) {
    const r = await api(server.url, user.access, 'POST', `/v1/sessions/${id}/mutations`, {
      mutations: [{ client_id: `writer-${n}`, mutation_id: 1, hlc: `${Date.now()}:0`, ops: [{ op: 'set_field', field: 'title', value: 'after the restart' }] }],
    });
    serverVersion.set(id, r.version);
  }
  clients.forEach((x, i) => {
    if (backAt[i] === 0 && x.c.state === 'connected' && x.s.channel.live && x.s.version === serverVersion.get(x.sid)) backAt[i] = now();
  });
  while (!caughtUp()) {
    if (now() - killAt > GUARD_MS) throw new Error(`not every client was back within ${GUARD_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const allBack = now();
  const fromKill = backAt.map((t) => (t || allBack) - killAt);
  console.log('');
  console.log(`clients: ${N}, users: ${USERS}, sessions: ${sessions.length}, history: ${HISTORY} changes each, backoff ${BACKOFF.baseMs}..${BACKOFF.capMs} ms`);
  console.log(`server restart (spawn to /health ok): ${fmt(readyAt - restartAt)}`);
  console.log(`kill -> every client resubscribed and caught up: ${fmt(allBack - killAt)}`);
  console.log(`restart -> every client resubscribed and caught up: ${fmt(allBack - restartAt)}`);
  console.log(`healthy -> every client resubscribed and caught up: ${fmt(allBack - readyAt)}`);
  console.log(`per client, from the kill: p50 ${fmt(pct(fromKill, 50))}, p95 ${fmt(pct(fromKill, 95))}, max ${fmt(Math.max(...fromKill))}`);
  await Promise.all(clients.map((x) => x.c.close()));
} finally {
  await server.stop();
}
