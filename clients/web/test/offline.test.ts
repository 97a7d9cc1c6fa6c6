// One person goes offline mid-session, keeps editing (title, tags, a message), sees the banner
// count the queued changes, and comes back: both pages end exactly where the server is.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, newPage, openSession, pageView, registerUser, sameView, serverView, shot, signIn, TestServer, until, withLog } from './harness.js';

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

test('offline edits are queued, counted in the banner, and land on reconnect; both pages match the server', { timeout: 180_000 }, () =>
  withLog(server, async () => {
    const alice = await registerUser(server, 'alice');
    const bob = await registerUser(server, 'bob');
    const { id } = await server.api<{ id: string }>(alice.access, 'POST', '/v1/sessions', { title: 'Release notes' });
    await server.api(alice.access, 'POST', `/v1/sessions/${id}/members`, { email: bob.email, role: 'editor' });

    const a = await newPage(browser);
    const b = await newPage(browser);
    const pa = a.page;
    const pb = b.page;
    await signIn(pa, server, alice);
    await signIn(pb, server, bob);
    await openSession(pa, id);
    await openSession(pb, id);
    await pa.getByRole('list', { name: 'People here' }).getByText(bob.email).waitFor();

    // A first turn while everyone is online, so the transcript has history.
    await pb.getByLabel('Message').fill('first, while online');
    await pb.getByLabel('Message').press('Enter');
    for (const p of [pa, pb]) await until(async () => (await p.locator('.msg.role-assistant:not(.streaming) .content').allTextContents()).join() === 'first, while online', 'the first answer in both pages');

    // Alice loses the network.
    await a.context.setOffline(true);
    const banner = pa.locator('.banner.offline');
    await banner.getByText('You are offline.').waitFor();
    assert.equal(await pa.locator('.conn').innerText(), 'Offline');

    await pa.getByLabel('Session title').fill('Release notes (draft by Alice)');
    await pa.getByLabel('Session title').press('Enter');
    await pa.getByLabel('New tag').fill('v2');
    await pa.getByLabel('New tag').press('Enter');
    await pa.getByLabel('New tag').fill('docs');
    await pa.getByLabel('New tag').press('Enter');
    await pa.getByLabel('Message').fill('written in a tunnel');
    await pa.getByRole('button', { name: 'Queue message' }).click();

    // She sees her changes at once, marked as waiting, and the banner counts them.
    await banner.getByText('4 changes waiting').waitFor();
    assert.equal(await pa.getByLabel('Session title').inputValue(), 'Release notes (draft by Alice)');
    assert.deepEqual((await pa.locator('.tags .tag-text').allTextContents()).sort(), ['docs', 'v2']);
    const queuedMsg = pa.locator('.msg.pending', { hasText: 'written in a tunnel' });
    await queuedMsg.locator('.status', { hasText: 'Queued' }).waitFor();
    await shot(pa, 'offline-banner');

    // Bob, online, sees none of it yet, and edits too: his title is the later write, so it wins.
    assert.equal(await pb.getByLabel('Session title').inputValue(), 'Release notes');
    await pb.getByLabel('Session title').fill('Release notes v2');
    await pb.getByLabel('Session title').press('Enter');
    await pb.getByLabel('New tag').fill('bob');
    await pb.getByLabel('New tag').press('Enter');
    await until(async () => (await serverView(server, bob.access, id)).title === 'Release notes v2', "the server has Bob's title");

    // Alice is back: the queue flushes, the banner goes away.
    await a.context.setOffline(false);
    await until(async () => (await banner.innerText()) === '', 'the offline banner to go once the queue is sent');
    await until(async () => (await pa.locator('.conn').innerText()) === 'Online', 'Alice back online');

    const expected = await until(async () => {
      const s = await serverView(server, alice.access, id);
      return s.transcript.includes('written in a tunnel') && s.tags.includes('v2') ? s : null;
    }, "the server has Alice's queued changes");
    assert.equal(expected.title, 'Release notes v2', 'the later title write wins wherever it arrived from');
    assert.deepEqual(expected.tags, ['bob', 'docs', 'v2']);
    assert.deepEqual(expected.transcript, ['first, while online', 'first, while online', 'written in a tunnel']);
    for (const [who, p] of [['Alice', pa], ['Bob', pb]] as const) {
      await until(async () => sameView(await pageView(p), expected), `${who}'s page to match GET /v1/sessions/${id}`);
    }
    assert.equal(await pa.locator('.msg.pending').count(), 0, 'nothing is left marked as queued');
    for (const x of [a, b]) assert.deepEqual(x.errors.filter((e) => !/ERR_INTERNET_DISCONNECTED/.test(e)), [], 'no script errors on the page');
    await a.context.close();
    await b.context.close();
  }));
