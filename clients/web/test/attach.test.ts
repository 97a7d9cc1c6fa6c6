// Attaching files from the browser: a picked text file and an image upload at once and show as
// chips, a file the server refuses says why, and the message sent with them reaches the model
// (a fake OpenAI-compatible upstream) with the text as context and the image as an image part;
// the transcript shows the message's files.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, newPage, openSession, registerUser, shot, signIn, TestServer, until, withLog } from './harness.js';

let server: TestServer;
let browser: Browser;
let upstream: Server;
const NOTES = '# Plan\nShip the parser.\n';
const bodies: Array<{ messages: Array<{ role: string; content: unknown }> }> = [];

const PNG = Buffer.from('89504e470d0a1a0a0000000d4948445200000001000000010806000000' + '1f15c4890000000d49444154789c63f8cfc0f01f000500' + '01ff89993d1d0000000049454e44ae426082', 'hex');

function fakeUpstream(): Server {
  return createServer((req, res) => {
    let body = '';
    req.on('data', (b: Buffer) => (body += b.toString()));
    req.on('end', () => {
      const parsed = JSON.parse(body) as { model: string; messages: Array<{ role: string; content: unknown }> };
      bodies.push(parsed);
      const chunk = (delta: object, finish: string | null = null): string =>
        `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: parsed.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.end(chunk({ role: 'assistant', content: 'I read ' }) + chunk({ content: 'both files.' }) + chunk({}, 'stop') + 'data: [DONE]\n\n');
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
    SWITCHYARD_LLM_MODELS: 'vision=openai:vision',
    SWITCHYARD_CHAT_DEFAULT_MODEL: 'vision',
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await new Promise((r) => upstream?.close(r));
});

test('files picked in the composer go with the message to the model', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const me = await registerUser(server, 'attach');
    const { page } = await newPage(browser);
    await signIn(page, server, me);
    await page.getByLabel('Title of the new session').fill('With files');
    await page.getByRole('button', { name: 'New session' }).click();
    const id = await until(() => /#\/s\/([0-9a-f-]{36})$/.exec(page.url())?.[1], 'a session route');
    await openSession(page, id);

    const picker = page.getByLabel('Choose files to attach');
    await picker.setInputFiles([
      { name: 'notes.md', mimeType: 'text/markdown', buffer: Buffer.from(NOTES) },
      { name: 'shot.png', mimeType: 'image/png', buffer: PNG },
    ]);
    const tray = page.getByRole('list', { name: 'Files to send' });
    await tray.getByText(`notes.md (${NOTES.length} B)`).waitFor();
    await tray.getByText(`shot.png (${PNG.length} B)`).waitFor();
    // A file the server refuses is named with the reason, and not attached.
    await picker.setInputFiles([{ name: 'fake.png', mimeType: 'image/png', buffer: Buffer.from('not an image') }]);
    await page.getByText(/fake\.png was not attached: .*must be image\/png/).waitFor();
    assert.equal(await tray.getByRole('listitem').count(), 2);
    await shot(page, 'attach-tray');

    await page.getByLabel('Message', { exact: true }).fill('What do these say?');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText('I read both files.').waitFor();
    const sent = page.locator('li.msg.role-user').filter({ hasText: 'What do these say?' });
    await sent.getByRole('list', { name: 'Attached files' }).getByText(`notes.md (${NOTES.length} B)`).waitFor();
    assert.equal(await tray.isHidden(), true, 'the tray empties once sent');
    await shot(page, 'attach-sent');

    const last = bodies.at(-1)?.messages.at(-1);
    assert.equal(last?.role, 'user');
    const parts = last?.content as Array<{ type: string; text?: string; image_url?: { url: string } }>;
    assert.equal(parts[0]?.type, 'text');
    assert.equal(
      parts[0]?.text,
      `What do these say?\n\n<attachment filename="notes.md" content_type="text/markdown">\n${NOTES}\n</attachment>`,
    );
    assert.deepEqual(parts[1], { type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } });

    // After a reload the message still shows its files (from its metadata).
    await page.reload();
    await openSession(page, id);
    await page.locator('li.msg.role-user').getByRole('list', { name: 'Attached files' }).getByText(`shot.png (${PNG.length} B)`).waitFor();
  }),
);
