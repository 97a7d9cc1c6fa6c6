// An MCP server's question to the user, through the SDK: a real FastMCP server
// (tests/mcp/elicit_server.py, run with the Python that has the `mcp` package) asks during a
// turn's tool call; one client sees it in `mcp.elicitations`, the turn on another emits
// `tool.waiting`, the answer goes back with the form's defaults, and the question ends
// everywhere.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestServer, api, createSession, eventually, registerUser, type TestUser } from '../harness/server.js';
import { client } from '../harness/client.js';
import { FakeUpstream } from '../harness/upstream.js';
import type { Elicitation, ElicitationEnded, SwitchyardError, ToolWaitingEvent } from '../../src/index.js';

// build/test/e2e -> the repository
const repo = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..', '..');
const python = process.env.TEST_PYTHON ?? resolve(repo, 'target', 'test-venv', 'bin', 'python');

let server: TestServer;
let upstream: FakeUpstream;
let alice: TestUser;

before(async () => {
  assert.ok(existsSync(python), `no Python with the mcp package at ${python}: set TEST_PYTHON (cargo test makes target/test-venv)`);
  upstream = await new FakeUpstream().start();
  server = await TestServer.start({
    env: {
      SWITCHYARD_LLM_OPENAI_BASE_URL: upstream.baseUrl,
      SWITCHYARD_LLM_MODELS: 'asker=openai:call:ask__ask',
      SWITCHYARD_MCP_STDIO_ALLOWLIST: `ask=${python} ${resolve(repo, 'tests', 'mcp', 'elicit_server.py')}`,
    },
  });
  alice = await registerUser(server.url);
});
after(async () => {
  await server?.stop();
  await upstream?.stop();
});

test('a server question reaches another connection, and its answer gets the form defaults', async () => {
  const sid = await createSession(server.url, alice.access);
  const laptop = client(server.url, alice);
  const phone = client(server.url, alice);
  try {
    await api(server.url, alice.access, 'POST', '/v1/mcp/servers', { name: 'ask', transport: 'stdio', command: 'ask' });
    await eventually(() => laptop.mcp.servers.some((s) => s.name === 'ask' && s.state === 'ready'), 'the server is ready');
    const asked: Elicitation[] = [];
    const ended: ElicitationEnded[] = [];
    phone.mcp.on('elicitation', (q) => asked.push(q));
    laptop.mcp.on('elicitation.ended', (e) => ended.push(e));

    const s = laptop.session(sid);
    await s.ready();
    const turn = s.send('sign me up', { model: 'asker' });
    const waiting: ToolWaitingEvent[] = [];
    turn.on('tool.waiting', (w) => waiting.push(w));
    await eventually(() => asked.length === 1, 'the phone is asked');
    const q = asked[0]!;
    assert.equal(q.message, 'which');
    assert.equal(q.server, 'ask');
    assert.deepEqual(phone.mcp.elicitations.map((e) => e.elicitation_id), [q.elicitation_id]);

    await phone.answerElicitation(q.elicitation_id, 'accept', { email: 'a@b.c' });
    await assert.rejects(laptop.answerElicitation(q.elicitation_id, 'decline'), (e: SwitchyardError) => e.code === 'not_found');
    const r = await turn.done;
    assert.equal(r.status, 'complete');
    assert.equal(r.text, 'Checking. The tool said: {"age": 36, "email": "a@b.c", "name": "Ada", "news": false}');
    assert.equal(waiting[0]?.elicitation_id, q.elicitation_id);
    await eventually(() => ended.length === 1 && phone.mcp.elicitations.length === 0, 'the question ended on every connection');
    assert.deepEqual(ended[0], { elicitation_id: q.elicitation_id, action: 'accept', timed_out: false });
  } finally {
    await laptop.close();
    await phone.close();
  }
});
