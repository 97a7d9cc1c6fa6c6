// The official `openai` npm SDK in a browser page on another origin: with that origin in
// SWITCHYARD_SERVER_CORS_ORIGINS, `new OpenAI({ baseURL: <server>/v1, dangerouslyAllowBrowser })`
// lists the models and gets the echo model's answer, whole and streamed; the same page served
// from an origin outside the list gets nothing (the browser refuses the CORS answer).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import type OpenAI from 'openai';
import type { Browser } from 'playwright-core';
import { freePort, launchBrowser, newPage, registerUser, shot, TestServer, webRoot, withLog } from './harness.js';

let server: TestServer;
let browser: Browser;
let allowed: Server;
let allowedOrigin: string;
let other: Server;
let otherOrigin: string;
let apiKey: string;

/** The page: the SDK bundle loaded as a module and left on `window.OpenAI`, and where its answers show. */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SDK page</title><link rel="icon" href="data:,">
<script type="module">import OpenAI from '/openai.js'; window.OpenAI = OpenAI; document.documentElement.dataset.sdk = 'ready';</script>
</head><body>
<h2>Models</h2><ul aria-label="Models"></ul>
<h2>Answer</h2><p id="answer"></p>
<h2>Streamed answer</h2><p id="streamed"></p>
<p id="error" role="alert"></p>
</body></html>`;

/** A static server on a free port with the page at / and the SDK at /openai.js; its origin. */
async function pageServer(sdk: Uint8Array): Promise<[Server, string]> {
  const port = await freePort();
  const s = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (path === '/openai.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  return [s, `http://127.0.0.1:${port}`];
}

/** The `Access-Control-Allow-Origin` of the server's answer to a preflight of a chat completion from `origin`. */
async function preflightAllowOrigin(origin: string): Promise<string | null> {
  const r = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-stainless-lang' },
  });
  await r.arrayBuffer();
  return r.headers.get('access-control-allow-origin');
}

before(async () => {
  // The SDK as the browser gets it: its ESM build bundled into one module (no internet needed).
  const bundle = await build({
    absWorkingDir: webRoot,
    stdin: { contents: "export { default } from 'openai';", resolveDir: webRoot, loader: 'js' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'chrome110',
    write: false,
    logLevel: 'warning',
  });
  const sdk = bundle.outputFiles[0]?.contents;
  assert.ok(sdk && sdk.length > 0, 'esbuild bundled the openai SDK');
  [allowed, allowedOrigin] = await pageServer(sdk);
  [other, otherOrigin] = await pageServer(sdk);
  server = await TestServer.start({ SWITCHYARD_SERVER_CORS_ORIGINS: allowedOrigin });
  browser = await launchBrowser();
  // A user and an API key of theirs: what an SDK user pastes as `apiKey`.
  const user = await registerUser(server, 'sdk');
  apiKey = (await server.api<{ secret: string }>(user.access, 'POST', '/v1/api-keys', { name: 'browser sdk' })).secret;
});

after(async () => {
  await new Promise((r) => allowed?.close(r));
  await new Promise((r) => other?.close(r));
  await browser?.close();
  await server?.stop();
});

type Sdk = typeof OpenAI;

test('the openai SDK in a page on an allowed origin lists models and gets answers, whole and streamed', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    assert.equal(await preflightAllowOrigin(allowedOrigin), allowedOrigin, 'the server allows the page\'s origin');
    const { context, page, errors } = await newPage(browser);
    await page.goto(`${allowedOrigin}/`);
    await page.locator('html[data-sdk="ready"]').waitFor({ state: 'attached' });

    const question = 'Hello from a page on another origin';
    const streamQuestion = 'Stream these five words back';
    const run = await page.evaluate(
      async ({ baseURL, apiKey, question, streamQuestion }) => {
        const Ctor = (window as unknown as { OpenAI: Sdk }).OpenAI;
        const client = new Ctor({ apiKey, baseURL, dangerouslyAllowBrowser: true });
        const el = (sel: string): HTMLElement => {
          const e = document.querySelector<HTMLElement>(sel);
          if (!e) throw new Error(`no ${sel}`);
          return e;
        };

        const models: string[] = [];
        for await (const m of client.models.list()) {
          models.push(m.id);
          const li = document.createElement('li');
          li.textContent = m.id;
          el('ul').append(li);
        }

        const whole = await client.chat.completions.create({
          model: 'echo',
          messages: [
            { role: 'system', content: 'Repeat what you are told.' },
            { role: 'user', content: question },
          ],
        });
        const answer = whole.choices[0]?.message.content ?? '';
        el('#answer').textContent = answer;

        const stream = await client.chat.completions.create({
          model: 'echo',
          messages: [{ role: 'user', content: streamQuestion }],
          stream: true,
          stream_options: { include_usage: true },
        });
        const chunks: string[] = [];
        const shown: string[] = [];
        let finish: string | null = null;
        let completionTokens: number | null = null;
        for await (const chunk of stream) {
          const choice = chunk.choices[0];
          const piece = choice?.delta.content;
          if (piece) {
            chunks.push(piece);
            el('#streamed').textContent += piece;
            shown.push(el('#streamed').textContent ?? '');
          }
          if (choice?.finish_reason) finish = choice.finish_reason;
          if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
        }
        return { models, answer, wholeModel: whole.model, wholeFinish: whole.choices[0]?.finish_reason ?? null, chunks, shown, finish, completionTokens };
      },
      { baseURL: `${server.url}/v1`, apiKey, question, streamQuestion },
    );

    // What the user sees on the page.
    const listed = await page.getByRole('list', { name: 'Models' }).getByRole('listitem').allTextContents();
    assert.ok(listed.includes('echo'), `the models list shows echo (${listed.join(', ')})`);
    assert.deepEqual(listed, run.models);
    assert.equal(await page.locator('#answer').innerText(), question, 'the echo model answers with what it was told');
    assert.equal(await page.locator('#streamed').innerText(), streamQuestion, 'the streamed answer reads as what it was told');

    // And how it got there: a chat completion, and a stream of several chunks, each one
    // adding to what the page showed before.
    assert.equal(run.wholeModel, 'echo');
    assert.equal(run.wholeFinish, 'stop');
    assert.deepEqual(run.chunks, ['Stream ', 'these ', 'five ', 'words ', 'back']);
    assert.deepEqual(run.shown, ['Stream ', 'Stream these ', 'Stream these five ', 'Stream these five words ', 'Stream these five words back']);
    assert.equal(run.finish, 'stop');
    assert.equal(run.completionTokens, 5);
    assert.deepEqual(errors, [], 'no errors in the page');
    await shot(page, 'openai-sdk-allowed');
    await context.close();
  }));

test('the openai SDK in a page on an origin outside the list is refused by CORS', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    assert.equal(await preflightAllowOrigin(otherOrigin), null, 'the server does not allow the other origin');
    const { context, page } = await newPage(browser);
    const blocked: string[] = [];
    page.on('console', (m) => {
      if (/blocked by CORS policy/.test(m.text())) blocked.push(m.text());
    });
    await page.goto(`${otherOrigin}/`);
    await page.locator('html[data-sdk="ready"]').waitFor({ state: 'attached' });

    const run = await page.evaluate(
      async ({ baseURL, apiKey }) => {
        const Ctor = (window as unknown as { OpenAI: Sdk }).OpenAI;
        const client = new Ctor({ apiKey, baseURL, dangerouslyAllowBrowser: true, maxRetries: 0 });
        const failure = async (call: () => Promise<unknown>): Promise<{ connection: boolean; message: string } | null> => {
          try {
            await call();
            return null;
          } catch (e) {
            return { connection: e instanceof Ctor.APIConnectionError, message: e instanceof Error ? e.message : String(e) };
          }
        };
        const models = await failure(() => client.models.list());
        const completion = await failure(() => client.chat.completions.create({ model: 'echo', messages: [{ role: 'user', content: 'anyone there?' }] }));
        const alert = document.querySelector('#error');
        if (alert) alert.textContent = completion?.message ?? models?.message ?? '';
        return { models, completion };
      },
      { baseURL: `${server.url}/v1`, apiKey },
    );

    assert.ok(run.models, 'models.list() fails');
    assert.ok(run.completion, 'chat.completions.create() fails');
    // The SDK sees no HTTP answer at all (the browser withholds it): a connection error.
    assert.equal(run.models.connection, true, `models.list() fails with APIConnectionError (${run.models.message})`);
    assert.equal(run.completion.connection, true, `chat.completions.create() fails with APIConnectionError (${run.completion.message})`);
    assert.equal(await page.getByRole('alert').innerText(), 'Connection error.');
    // Chromium tells the page's console why: the CORS policy.
    assert.ok(
      blocked.some((t) => t.includes(`${server.url}/v1/models`) && t.includes(`from origin '${otherOrigin}'`)),
      `the browser reports the models request blocked by CORS (${blocked.join(' | ')})`,
    );
    assert.ok(blocked.some((t) => t.includes(`${server.url}/v1/chat/completions`)), `the browser reports the completion blocked by CORS (${blocked.join(' | ')})`);
    await shot(page, 'openai-sdk-refused');
    await context.close();
  }));
