// A phone-sized screen (375 x 812): one pane at a time, nothing wider than the screen, the
// controls that matter on screen; and the app works from the keyboard with a visible focus.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchBrowser, newPage, registerUser, shot, signIn, TestServer, until, withLog } from './harness.js';

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

const WIDTH = 375;
const HEIGHT = 812;

async function noHorizontalScroll(page: Page, where: string): Promise<void> {
  const m = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, inner: window.innerWidth }));
  assert.ok(m.doc <= m.inner && m.body <= m.inner, `${where}: the page is wider than the screen (${JSON.stringify(m)})`);
}

/** Visible and entirely inside the screen. */
async function onScreen(l: Locator, what: string): Promise<void> {
  await l.waitFor({ state: 'visible' });
  const box = await l.boundingBox();
  assert.ok(box, `${what} has a box`);
  assert.ok(box.x >= 0 && box.x + box.width <= WIDTH + 0.5 && box.y >= 0 && box.y + box.height <= HEIGHT + 0.5, `${what} is inside the ${WIDTH}x${HEIGHT} screen: ${JSON.stringify(box)}`);
  assert.ok(box.width >= 24 && box.height >= 24, `${what} is big enough to tap: ${JSON.stringify(box)}`);
}

test('a 375 px phone screen shows the session view usably', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const user = await registerUser(server, 'dana');
    const { context, page, errors } = await newPage(browser, { viewport: { width: WIDTH, height: HEIGHT }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    await page.goto(`${server.url}/`);
    await noHorizontalScroll(page, 'sign-in');
    await signIn(page, server, user);

    // The list is the whole screen until a session is open.
    await onScreen(page.getByRole('button', { name: 'New session' }), 'the New session button');
    await noHorizontalScroll(page, 'session list');
    await page.getByLabel('Title of the new session').fill('A rather long session title that will not fit on one line of a phone');
    await page.getByRole('button', { name: 'New session' }).click();
    await page.locator('.session').waitFor();
    assert.equal(await page.getByRole('navigation', { name: 'Sessions' }).isVisible(), false, 'the list makes room for the open session');

    await page.getByLabel('New tag').fill('mobile');
    await page.getByLabel('New tag').press('Enter');
    await page.locator('.tags .tag-text', { hasText: 'mobile' }).waitFor();
    const text = 'Explain the difference between optimistic and pessimistic locking, briefly please, with an example of each and when to pick which one';
    await page.getByLabel('Message').fill(text);
    await page.getByRole('button', { name: 'Send' }).click();
    await page.locator('.msg.role-assistant .content').first().waitFor();
    await until(async () => (await page.locator('.msg.role-assistant:not(.streaming) .content').allTextContents()).join() === text, 'the answer to finish');

    for (const [l, what] of [
      [page.getByRole('link', { name: 'Sessions' }), 'the back link'],
      [page.getByLabel('Session title'), 'the title field'],
      [page.getByLabel('New tag'), 'the tag field'],
      [page.getByRole('button', { name: 'Add tag' }), 'the Add tag button'],
      [page.getByText('Share this session'), 'Share'],
      [page.getByLabel('Message'), 'the message box'],
      [page.getByRole('button', { name: 'Send' }), 'the Send button'],
      [page.locator('.msg.role-assistant'), 'the answer'],
    ] as const) {
      await onScreen(l, what);
    }
    await noHorizontalScroll(page, 'session view');
    await shot(page, 'phone-session');

    // The share form fits too.
    await page.getByText('Share this session').click();
    await onScreen(page.getByLabel('E-mail of the person'), 'the share e-mail field');
    await onScreen(page.getByRole('button', { name: 'Share', exact: true }), 'the Share button');
    await noHorizontalScroll(page, 'share form');
    await shot(page, 'phone-share');

    // Back to the list, which shows the session with its title.
    await page.getByRole('link', { name: 'Sessions' }).click();
    await page.getByRole('navigation', { name: 'Sessions' }).waitFor();
    await onScreen(page.locator('.session-link').first(), 'the session in the list');
    await noHorizontalScroll(page, 'list after');
    await shot(page, 'phone-list');
    assert.deepEqual(errors, []);
    await context.close();
  }));

test('keyboard only: sign in (a wrong password first), open a session, send, with a visible focus ring; a reload keeps the tab signed in, sign out ends it', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const user = await registerUser(server, 'erin');
    const { id } = await server.api<{ id: string }>(user.access, 'POST', '/v1/sessions', { title: 'Keyboard' });
    const { context, page, errors } = await newPage(browser);
    await page.goto(`${server.url}/`);
    // The e-mail field has the focus on arrival.
    await until(() => page.evaluate(() => document.activeElement?.getAttribute('type') === 'email'), 'focus on the e-mail field');
    await page.keyboard.type(user.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type('not the password');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').getByText('Wrong e-mail or password.').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('type')), 'password', 'the password field has the focus again');
    await page.keyboard.press('Control+A');
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');
    await page.locator(`a[data-session-id="${id}"]`).waitFor();

    // Tab to the session link; the focused element shows an outline.
    const focusedIs = (sel: string) => page.evaluate((s) => document.activeElement?.matches(s) ?? false, sel);
    for (let i = 0; i < 20 && !(await focusedIs(`a[data-session-id="${id}"]`)); i++) await page.keyboard.press('Tab');
    assert.ok(await focusedIs(`a[data-session-id="${id}"]`), 'the session link is reachable with Tab');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement as Element).outlineStyle);
    assert.notEqual(outline, 'none', 'the focused link shows a focus ring');
    await page.keyboard.press('Enter');
    await page.locator('.session').waitFor();
    await until(async () => (await page.getByLabel('Session title').inputValue()) === 'Keyboard', 'the session opens');

    // Into the message box and send with Enter.
    for (let i = 0; i < 30 && !(await focusedIs('textarea')); i++) await page.keyboard.press('Tab');
    assert.ok(await focusedIs('textarea'), 'the message box is reachable with Tab');
    await page.keyboard.type('typed without a mouse');
    await page.keyboard.press('Enter');
    await until(async () => (await page.locator('.msg.role-assistant:not(.streaming) .content').allTextContents()).join() === 'typed without a mouse', 'the answer');

    // A reload keeps the tab signed in; signing out ends it, and a reload then asks again.
    await page.reload();
    await page.locator('.conn', { hasText: 'Online' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'switchyard' }).waitFor();
    await page.getByLabel('E-mail').waitFor();
    await page.reload();
    await page.getByLabel('E-mail').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).count(), 0, 'signed out for good');
    assert.deepEqual(errors.filter((e) => !/401/.test(e)), [], 'no script errors (the refused sign-in is a 401 the browser reports)');
    await context.close();
  }));
