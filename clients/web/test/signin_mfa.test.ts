// Signing in to an account with a second factor: the password alone brings up a code field, a
// wrong code is said plainly, the current code signs in; a recovery code works in its place.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchBrowser, newPage, registerUser, shot, TestServer, withLog } from './harness.js';

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

/** RFC 6238 TOTP (SHA-1, 30 s, six digits) of a base32 secret: what an authenticator shows. */
function totp(base32: string, step: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of base32) bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((b) => parseInt(b, 2)));
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', key).update(msg).digest();
  const at = (h[h.length - 1] ?? 0) & 0x0f;
  return String((h.readUInt32BE(at) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

test('a second factor: the code field appears, a wrong code is refused, the right one signs in', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    const me = await registerUser(server, 'mfa');
    const enrolled = await server.api<{ secret: string }>(me.access, 'POST', '/v1/auth/totp', { password: me.password });
    const step = Math.floor(Date.now() / 30_000);
    const codes = await server.api<{ recovery_codes: string[] }>(me.access, 'POST', '/v1/auth/totp/confirm', { code: totp(enrolled.secret, step) });

    const { page } = await newPage(browser);
    await page.goto(`${server.url}/`);
    const codeField = page.getByLabel('Authentication code');
    assert.equal(await codeField.isVisible(), false, 'no code field before the server asks');
    await page.getByLabel('E-mail').fill(me.email);
    await page.getByLabel('Password').fill(me.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Enter the 6-digit code from your authenticator app').waitFor();
    await codeField.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('autocomplete')), 'one-time-code', 'the code field has focus');
    await shot(page, 'mfa-code');

    await codeField.fill(totp(enrolled.secret, step));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That code is wrong or was already used').waitFor();

    await codeField.fill(totp(enrolled.secret, step + 1));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('navigation', { name: 'Sessions' }).waitFor();

    // Another browser signs in with a recovery code instead.
    const other = await newPage(browser);
    await other.page.goto(`${server.url}/`);
    await other.page.getByLabel('E-mail').fill(me.email);
    await other.page.getByLabel('Password').fill(me.password);
    await other.page.getByRole('button', { name: 'Sign in' }).click();
    await other.page.getByLabel('Authentication code').fill(codes.recovery_codes[0] as string);
    await other.page.getByRole('button', { name: 'Sign in' }).click();
    await other.page.getByRole('navigation', { name: 'Sessions' }).waitFor();
  }),
);
