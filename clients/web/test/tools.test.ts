// MCP status and tool calls as they happen: a stdio MCP server (test/fixtures/mcp-shout.mjs,
// allowlisted as `shout`) shows up in the sidebar as it connects; a model (a fake
// OpenAI-compatible upstream) calls its tool in a turn, and the transcript shows the call,
// its result and the answer, live and again after a reload (from the tool records).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, newPage, openSession, registerUser, shot, signIn, TestServer, until, webRoot, withLog } from './harness.js';

let server: TestServer;
let browser: Browser;
let upstream: Server;

/** Streams chat-completions SSE: first a call of shout__shout with the user's text, then what the tool said. */
function fakeUpstream(): Server {
  return createServer((req, res) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as { model: string; messages: Array<{ role: string; content?: unknown }> };
      const lastUser = parsed.messages.map((m) => m.role).lastIndexOf('user');
      const question = String(parsed.messages[lastUser]?.content ?? '');
      const results = parsed.messages.slice(lastUser + 1).filter((m) => m.role === 'tool').map((m) => String(m.content));
      const chunk = (delta: object, finish: string | null = null): string =>
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: parsed.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let out = chunk({ role: 'assistant', content: results.length === 0 ? 'Checking. ' : '' });
      if (results.length === 0) {
        // `askmodel` calls ask__ask (a server that asks the user) with the user's text.
        const [name, args] = parsed.model === 'askmodel' ? ['ask__ask', { question }] : ['shout__shout', { text: question }];
        out += chunk({ tool_calls: [{ index: 0, id: 'call_0', type: 'function', function: { name, arguments: JSON.stringify(args) } }] });
        out += chunk({}, 'tool_calls');
      } else {
        for (const w of `The tool said: ${results.join(' | ')}`.split(/(?<= )/)) out += chunk({ content: w });
        out += chunk({}, 'stop');
      }
      out += `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: parsed.model, choices: [], usage: { prompt_tokens: 10, completion_tokens: 4 } })}\n\ndata: [DONE]\n\n`;
      res.end(out);
    });
  });
}

before(async () => {
  upstream = fakeUpstream();
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  const a = upstream.address();
  const port = typeof a === 'object' && a ? a.port : 0;
  server = await TestServer.start({
    SWITCHYARD_LLM_OPENAI_BASE_URL: `http://127.0.0.1:${port}/v1`,
    SWITCHYARD_LLM_MODELS: 'toolmodel=openai:toolmodel,askmodel=openai:askmodel',
    SWITCHYARD_MCP_STDIO_ALLOWLIST: [
      `shout=${process.execPath} ${join(webRoot, 'test', 'fixtures', 'mcp-shout.mjs')}`,
      `ask=${process.execPath} ${join(webRoot, 'test', 'fixtures', 'mcp-ask.mjs')}`,
    ].join(','),
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => upstream?.close(r));
});

test('MCP status and a turn with a tool call show as they happen, and after a reload', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const user = await registerUser(server, 'fay');
    const { id } = await server.api<{ id: string }>(user.access, 'POST', '/v1/sessions', { title: 'Tools' });
    // The session's model is the one that calls tools (a sync change, as any client would make).
    await server.api(user.access, 'POST', `/v1/sessions/${id}/mutations`, {
      mutations: [{ client_id: 'test-setup', mutation_id: 1, hlc: `${Date.now()}:0`, ops: [{ op: 'set_field', field: 'model', value: 'toolmodel' }] }],
    });

    const { context, page, errors } = await newPage(browser);
    await signIn(page, server, user);
    const mcp = page.getByRole('region', { name: 'MCP servers' });
    await mcp.getByText('No MCP servers').waitFor();

    // The form refuses what the server refuses: an address inside the network (SSRF guard).
    await mcp.getByText('Add a server').click();
    await mcp.getByLabel('Name').fill('internal');
    await mcp.getByLabel('Streamable HTTP URL').fill('http://127.0.0.1:9/mcp');
    await mcp.getByRole('button', { name: 'Add server' }).click();
    await mcp.getByRole('status').getByText(/^Could not add the server: .*loopback, private or link-local/).waitFor();
    assert.equal(await mcp.locator('.mcp-server').count(), 0);

    // The user adds the operator's `shout` server; the sidebar follows its status live.
    await server.api(user.access, 'POST', '/v1/mcp/servers', { name: 'shout', transport: 'stdio', command: 'shout' });
    await mcp.locator('.mcp-server', { hasText: 'shout' }).getByText('ready · 1 tool').waitFor();
    assert.match(await mcp.locator('.mcp-server').innerText(), /shout/);

    await openSession(page, id);
    await page.getByLabel('Message').fill('make it loud');
    await page.getByLabel('Message').press('Enter');
    const answer = page.locator('.msg.role-assistant');
    const call = answer.locator('.tools .tool');
    await call.first().waitFor();
    assert.match(await call.locator('.tool-name').innerText(), /^shout__shout\(\{"text":"make it loud"\}\)$/);
    await answer.locator('.tools .tool.ok .tool-detail', { hasText: 'MAKE IT LOUD' }).waitFor();
    await until(async () => (await page.locator('.msg.role-assistant:not(.streaming) .content').allTextContents()).join() === 'Checking. The tool said: MAKE IT LOUD', 'the answer after the tool');
    await shot(page, 'session-tools');

    // After a reload the call is still shown (from the session's tool records).
    await page.reload();
    await page.locator('.session .msg.role-assistant .tools .tool.ok', { hasText: 'MAKE IT LOUD' }).waitFor();
    assert.deepEqual(errors, []);
    await context.close();
  }));

test('an MCP server asks during a tool call: the user answers in a form and the turn goes on', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const user = await registerUser(server, 'gil');
    const { id } = await server.api<{ id: string }>(user.access, 'POST', '/v1/sessions', { title: 'Questions' });
    await server.api(user.access, 'POST', `/v1/sessions/${id}/mutations`, {
      mutations: [{ client_id: 'test-setup', mutation_id: 1, hlc: `${Date.now()}:0`, ops: [{ op: 'set_field', field: 'model', value: 'askmodel' }] }],
    });
    const { context, page, errors } = await newPage(browser);
    await signIn(page, server, user);
    await server.api(user.access, 'POST', '/v1/mcp/servers', { name: 'ask', transport: 'stdio', command: 'ask' });
    const mcp = page.getByRole('region', { name: 'MCP servers' });
    await mcp.locator('.mcp-server', { hasText: 'ask' }).getByText('ready · 1 tool').waitFor();

    await openSession(page, id);
    await page.getByLabel('Message').fill('Sign up for updates?');
    await page.getByLabel('Message').press('Enter');
    const question = page.getByRole('form', { name: 'Question from ask' });
    await question.getByText('Sign up for updates?').waitFor();
    assert.equal(await question.getByLabel('Plan').inputValue(), 'pro', 'the default is preselected');
    await question.getByLabel('E-mail *').fill('gil@example.com');
    await question.getByLabel('Newsletter').check();
    await question.getByRole('button', { name: 'Send' }).click();
    await page.getByRole('status').getByText('Sent to ask.').waitFor();
    await question.waitFor({ state: 'detached' });
    const said = 'Checking. The tool said: {"action":"accept","content":{"email":"gil@example.com","news":true,"plan":"pro"}}';
    await until(async () => (await page.locator('.msg.role-assistant:not(.streaming) .content').allTextContents()).join() === said, 'the answer after the question');
    await shot(page, 'session-question');
    assert.deepEqual(errors, []);
    await context.close();
  }));
