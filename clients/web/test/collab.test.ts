// Two people in two browser profiles work on one shared session: each sees the other arrive,
// edit the title and tags, type, and the same streamed answer, exactly once.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, newPage, openSession, PASSWORD, registerUser, shot, signIn, TestServer, until, newEmail, withLog } from './harness.js';

let server: TestServer;
let browser: Browser;

before(async () => {
  server = await TestServer.start();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const LONG = Array.from({ length: 60 }, (_, i) => `word${i + 1}`).join(' ');

test('two users share a session: presence, edits, typing and one streamed turn in both', { timeout: 180_000 }, () =>
  withLog(server, async () => {
    const a = await newPage(browser);
    const b = await newPage(browser);
    const pa = a.page;
    const pb = b.page;

    // Alice creates her account in the app.
    const alice = { email: newEmail('alice'), password: PASSWORD };
    await pa.goto(`${server.url}/`);
    await pa.getByRole('heading', { name: 'switchyard' }).waitFor();
    await shot(pa, 'sign-in');
    await pa.getByLabel('E-mail').fill(alice.email);
    await pa.getByLabel('Password').fill(alice.password);
    await pa.getByRole('button', { name: 'Create account' }).click();
    await pa.getByRole('navigation', { name: 'Sessions' }).waitFor();
    await pa.getByText('No sessions yet').waitFor();

    // Bob has an account already and signs in with the keyboard.
    const bob = await registerUser(server, 'bob');
    await signIn(pb, server, bob);

    // Alice creates a session and shares it with Bob as an editor.
    await pa.getByLabel('Title of the new session').fill('Parser refactor');
    await pa.getByRole('button', { name: 'New session' }).click();
    await until(async () => (await pa.getByLabel('Session title').inputValue()) === 'Parser refactor', 'Alice sees her new session open');
    const id = await until(() => /#\/s\/([0-9a-f-]{36})$/.exec(pa.url())?.[1], 'a session route');
    await pa.getByText('Share this session').click();
    await pa.getByLabel('E-mail of the person').fill(bob.email);
    await pa.getByLabel('Access').selectOption('editor');
    await pa.getByRole('button', { name: 'Share', exact: true }).click();
    await pa.getByText(`Shared with ${bob.email} as editor.`).waitFor();

    // Bob's list shows it without a reload (session.list_changed), marked as shared.
    const bobLink = pb.locator(`a[data-session-id="${id}"]`);
    await bobLink.waitFor();
    assert.match(await bobLink.innerText(), /Parser refactor[\s\S]*shared · editor/);
    await shot(pb, 'session-list');
    await openSession(pb, id);

    // Presence: each sees the other by e-mail.
    const people = (p: typeof pa) => p.getByRole('list', { name: 'People here' });
    await people(pa).getByText(bob.email).waitFor();
    await people(pb).getByText(alice.email).waitFor();
    assert.match(await people(pb).innerText(), new RegExp(`${alice.email.replace(/[.+]/g, '\\$&')}`));
    assert.match(await people(pa).innerText(), /\(you\)/);

    // Title and tag edits, both ways.
    await pa.getByLabel('Session title').fill('Parser refactor, phase 2');
    await pa.getByLabel('Session title').press('Enter');
    await until(async () => (await pb.getByLabel('Session title').inputValue()) === 'Parser refactor, phase 2', "Bob sees Alice's title");
    await until(async () => (await pb.locator(`a[data-session-id="${id}"] .session-title`).innerText()) === 'Parser refactor, phase 2', "Bob's list shows the new title");
    await pb.getByLabel('New tag').fill('urgent');
    await pb.getByLabel('New tag').press('Enter');
    await pa.locator('.tags .tag-text', { hasText: 'urgent' }).waitFor();
    await pa.getByLabel('New tag').fill('parser');
    await pa.getByRole('button', { name: 'Add tag' }).click();
    await pb.locator('.tags .tag-text', { hasText: 'parser' }).waitFor();
    await pb.getByRole('button', { name: 'Remove tag urgent' }).click();
    await until(async () => (await pa.locator('.tags .tag-text').allTextContents()).join(',') === 'parser', "Alice sees Bob's tag removal");
    await pb.getByLabel('Session title').fill('Parser: phase 2');
    await pb.getByLabel('Session title').press('Tab');
    await until(async () => (await pa.getByLabel('Session title').inputValue()) === 'Parser: phase 2', "Alice sees Bob's title");

    // Typing: Bob types, Alice sees it; Bob clears the box, it goes away.
    await pb.getByLabel('Message').pressSequentially('hello Al');
    await pa.locator('.typing', { hasText: `${bob.email} is typing…` }).waitFor();
    await pb.getByLabel('Message').fill('');
    await pb.getByLabel('Message').press('Backspace');
    await until(async () => (await pa.locator('.typing').innerText()) === '', "Alice sees Bob's typing stop");

    // A turn: Alice asks, both watch the echo stream in, and both end with the text once.
    await pa.getByLabel('Message').fill(LONG);
    await pa.getByLabel('Message').press('Enter');
    const streaming = (p: typeof pa) => p.locator('.msg.role-assistant.streaming .content');
    await until(async () => {
      const t = await streaming(pb).first().innerText({ timeout: 100 });
      return t.length > 0 && t.length < LONG.length;
    }, "Bob sees Alice's answer mid-stream");
    await until(async () => (await streaming(pa).count()) === 1, 'Alice sees it streaming too');
    await shot(pb, 'session-mid-stream');
    for (const [who, p] of [['Alice', pa], ['Bob', pb]] as const) {
      await until(async () => (await p.locator('.msg.role-assistant.streaming').count()) === 0 && (await p.locator('.msg.role-assistant .content').allTextContents()).length === 1, `${who}'s answer finishes`);
      assert.deepEqual(await p.locator('.msg.role-assistant .content').allTextContents(), [LONG], `${who} sees the echoed text exactly once`);
      assert.deepEqual(await p.locator('.msg.role-user .content').allTextContents(), [LONG], `${who} sees the question once`);
    }

    // Cancel: Bob asks, Alice cancels; both see it stop.
    await pb.getByLabel('Message').fill(`${LONG} ${LONG} ${LONG}`);
    await pb.getByRole('button', { name: 'Send' }).click();
    await until(async () => (await streaming(pa).count()) === 1 && (await streaming(pa).innerText()).length > 0, "Alice sees Bob's turn stream");
    await pa.getByRole('button', { name: 'Cancel reply' }).click();
    for (const p of [pa, pb]) await p.locator('.msg.role-assistant .status', { hasText: 'Cancelled' }).waitFor();
    const cut = await pa.locator('.msg.role-assistant .content').nth(1).innerText();
    assert.ok(cut.length < 3 * LONG.length, 'the cancelled answer stopped early');
    assert.equal(await pb.locator('.msg.role-assistant .content').nth(1).innerText(), cut, 'both show the same cancelled text');

    for (const x of [a, b]) assert.deepEqual(x.errors, [], 'no script errors on the page');
    await a.context.close();
    await b.context.close();
  }));

test('a viewer follows the session live but cannot change it', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const owner = await registerUser(server, 'olga');
    const viewer = await registerUser(server, 'vic');
    const { id } = await server.api<{ id: string }>(owner.access, 'POST', '/v1/sessions', { title: 'Read only for Vic' });
    const o = await newPage(browser);
    const v = await newPage(browser);
    await signIn(o.page, server, owner);
    await signIn(v.page, server, viewer);
    await openSession(o.page, id);

    // Shared while Vic is looking at his (empty) list: it appears, marked viewer.
    await o.page.getByText('Share this session').click();
    await o.page.getByLabel('E-mail of the person').fill(viewer.email);
    await o.page.getByLabel('Access').selectOption('viewer');
    await o.page.getByRole('button', { name: 'Share', exact: true }).click();
    const link = v.page.locator(`a[data-session-id="${id}"]`);
    await link.waitFor();
    assert.match(await link.innerText(), /shared · viewer/);
    await openSession(v.page, id);

    const vp = v.page;
    assert.equal(await vp.getByLabel('Session title').getAttribute('readonly'), '', 'the title cannot be edited');
    assert.equal(await vp.getByLabel('New tag').isVisible(), false, 'no tag form');
    assert.equal(await vp.getByLabel('Message').isDisabled(), true, 'no composer');
    assert.equal(await vp.getByText('Share this session').isVisible(), false, 'only the owner shares');
    await vp.getByText('You can read this session (viewer access).').waitFor();

    await o.page.getByLabel('Message').fill('the viewer reads along');
    await o.page.getByLabel('Message').press('Enter');
    await until(async () => (await vp.locator('.msg.role-assistant:not(.streaming) .content').allTextContents()).join() === 'the viewer reads along', 'the viewer sees the answer');
    // Opened straight from its address (a reload), the session is read-only as well.
    await vp.reload();
    await vp.getByText('You can read this session (viewer access).').waitFor();
    assert.equal(await vp.getByLabel('Message').isDisabled(), true, 'no composer after a reload');
    assert.equal(await vp.getByText('Share this session').isVisible(), false, 'no sharing after a reload');
    for (const x of [o, v]) assert.deepEqual(x.errors, []);
    await o.context.close();
    await v.context.close();
  }));
