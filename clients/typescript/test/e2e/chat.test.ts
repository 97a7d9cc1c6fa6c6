// Chat turns against a real server: streaming in index order, joining a running turn from a
// second client, turn_active, cancel, and a client-side tool answered through a fake upstream.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestServer, createSession, eventually, registerUser, type TestUser } from '../harness/server.js';
import { client } from '../harness/client.js';
import { FakeUpstream } from '../harness/upstream.js';
import type { SwitchyardError, Turn, ToolCall, DeltaEvent } from '../../src/index.js';

let server: TestServer;
let upstream: FakeUpstream;
let alice: TestUser;

before(async () => {
  upstream = await new FakeUpstream().start();
  server = await TestServer.start({
    env: {
      SWITCHYARD_LLM_ECHO_CHUNK_DELAY_MS: '20',
      SWITCHYARD_LLM_OPENAI_BASE_URL: upstream.baseUrl,
      SWITCHYARD_LLM_MODELS: 'toolmodel=openai:toolmodel',
    },
  });
  alice = await registerUser(server.url);
});
after(async () => {
  await server?.stop();
  await upstream?.stop();
});

const words = (n: number): string => Array.from({ length: n }, (_, i) => `word${i}`).join(' ');

test('a turn streams deltas in index order and ends with the synced message', async () => {
  const sid = await createSession(server.url, alice.access);
  const c = client(server.url, alice);
  try {
    const s = c.session(sid);
    await s.ready();
    const text = words(15);
    const turn = s.send(text, { model: 'echo' });
    const seen: DeltaEvent[] = [];
    for await (const d of turn) seen.push(d);
    const r = await turn.done;
    assert.equal(r.status, 'complete');
    assert.equal(seen.map((d) => d.text).join(''), text);
    assert.deepEqual(seen.map((d) => d.index), seen.map((_, i) => i + 1), 'contiguous from 1');
    assert.equal(r.text, text);
    await eventually(() => s.state.messages.some((m) => m.id === turn.messageId && !m.streaming && m.content === text), 'the final message is synced');
    const user = s.state.messages.find((m) => m.id === turn.userMessageId);
    assert.equal(user?.content, text);
  } finally {
    await c.close();
  }
});

test('a second client joining mid-turn sees the full text exactly once', async () => {
  const sid = await createSession(server.url, alice.access);
  const a = client(server.url, alice);
  const b = client(server.url, alice);
  try {
    const sa = a.session(sid);
    await sa.ready();
    const text = words(60);
    const turn = sa.send(text, { model: 'echo' });
    await eventually(() => turn.index >= 10, 'the turn is under way');
    const sb = b.session(sid);
    const joined = new Promise<Turn>((res) => sb.on('turn', res));
    const t = await joined;
    const deltas: string[] = [];
    t.on('delta', (d) => deltas.push(d.text));
    const before = t.text;
    assert.ok(before.length > 0 && t.index >= 10, `joined with the text so far (index ${t.index})`);
    const r = await t.done;
    assert.equal(r.status, 'complete');
    assert.equal(before + deltas.join(''), text, 'text so far + later deltas = the whole answer, nothing twice');
    assert.equal(t.text, text);
    await eventually(() => sb.state.messages.find((m) => m.id === t.messageId)?.content === text, 'b shows the final message');
    assert.equal((await turn.done).text, text);
  } finally {
    await a.close();
    await b.close();
  }
});

test('a second send while a turn runs is refused with turn_active; cancel ends the turn', async () => {
  const sid = await createSession(server.url, alice.access);
  const c = client(server.url, alice);
  try {
    const s = c.session(sid);
    await s.ready();
    const first = s.send(words(80), { model: 'echo' });
    await first.started;
    const second = s.send('me too', { model: 'echo' });
    await assert.rejects(second.started, (e: SwitchyardError) => e.code === 'turn_active');
    assert.equal(second.status, 'refused');
    await eventually(() => first.index >= 2, 'streaming');
    await first.cancel();
    const r = await first.done;
    assert.equal(r.status, 'cancelled');
    assert.ok(r.text.length < words(80).length, 'stopped early');
  } finally {
    await c.close();
  }
});

test('a client tool is declared, called by the model and answered by its handler', async () => {
  const sid = await createSession(server.url, alice.access);
  const calls: ToolCall[] = [];
  const c = client(server.url, alice, {
    tools: {
      pick_file: {
        description: 'Ask the user to pick a file',
        parameters: { type: 'object', properties: { prompt: { type: 'string' } } },
        run: async (args, ctx) => {
          calls.push(ctx.call);
          return `src/main.rs (asked: ${String(args.prompt)})`;
        },
      },
    },
  });
  try {
    const s = c.session(sid);
    await s.ready();
    const turn = s.send('which file?', { model: 'toolmodel' });
    const results: unknown[] = [];
    turn.on('tool.result', (r) => results.push(r.result));
    const r = await turn.done;
    assert.equal(r.status, 'complete');
    assert.equal(calls.length, 1);
    assert.equal(calls[0]?.side, 'client');
    assert.deepEqual(calls[0]?.arguments, { prompt: 'which' });
    assert.deepEqual(results, ['src/main.rs (asked: which)']);
    assert.equal(r.text, 'Checking. The tool said: src/main.rs (asked: which)');
    const offered = upstream.requests[0]?.tools as Array<{ function: { name: string } }>;
    assert.ok(offered.some((t) => t.function.name === 'pick_file'), 'the tool was declared upstream');
  } finally {
    await c.close();
  }
});

test('a tool handler that throws answers with an error the model sees', async () => {
  const sid = await createSession(server.url, alice.access);
  const c = client(server.url, alice);
  try {
    const s = c.session(sid);
    await s.ready();
    const turn = s.send('which file?', {
      model: 'toolmodel',
      tools: { pick_file: { run: () => { throw new Error('the user dismissed the dialog'); } } },
    });
    const errors: string[] = [];
    turn.on('tool.error', (e) => errors.push(e.code));
    const r = await turn.done;
    assert.deepEqual(errors, ['tool_failed']);
    assert.equal(r.text, 'Checking. The tool said: error (tool_failed): the user dismissed the dialog');
  } finally {
    await c.close();
  }
});
