// The app served from an origin the server does not allow: its socket upgrade is refused
// (403) and the page says it cannot connect, and why that may be.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { distDir, freePort, launchBrowser, newPage, registerUser, shot, TestServer, until, withLog } from './harness.js';

let server: TestServer;
let browser: Browser;
let foreign: Server;
let foreignOrigin: string;

/** The status of a WebSocket upgrade of /v1/ws sent with this Origin. */
function upgradeStatus(origin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port: server.port,
      path: '/v1/ws',
      headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==', Origin: origin },
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve(res.statusCode ?? 0);
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  server = await TestServer.start();
  browser = await launchBrowser();
  // A copy of the built app on another port, configured to talk to the server.
  const port = await freePort();
  foreignOrigin = `http://127.0.0.1:${port}`;
  const files: Record<string, [string, Buffer]> = {
    '/': ['text/html', Buffer.from(readFileSync(join(distDir, 'index.html'), 'utf8').replace('<meta name="switchyard-server" content="">', `<meta name="switchyard-server" content="${server.url}">`))],
    '/app.js': ['text/javascript', readFileSync(join(distDir, 'app.js'))],
    '/app.css': ['text/css', readFileSync(join(distDir, 'app.css'))],
    '/favicon.svg': ['image/svg+xml', readFileSync(join(distDir, 'favicon.svg'))],
  };
  foreign = createServer((req, res) => {
    const f = files[(req.url ?? '/').split('?')[0] ?? '/'];
    if (!f) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': f[0] }).end(f[1]);
  });
  await new Promise<void>((r) => foreign.listen(port, '127.0.0.1', r));
});

after(async () => {
  await new Promise((r) => foreign?.close(r));
  await browser?.close();
  await server?.stop();
});

test('a page from an origin outside the allowlist is refused its socket and shows an error', { timeout: 120_000 }, () =>
  withLog(server, async () => {
    // The server's answer to that origin, and to its own (the control).
    assert.equal(await upgradeStatus(foreignOrigin), 403, 'an upgrade from the foreign origin is refused');
    assert.equal(await upgradeStatus(server.url), 101, 'an upgrade from the server\'s own origin is accepted');

    // A user signed in on that page (REST from another origin would need CORS, so the tab is
    // given its tokens the way the app keeps them: sessionStorage).
    const user = await registerUser(server, 'carol');
    const { context, page } = await newPage(browser);
    const now = Date.now();
    const tokens = { access: user.access, accessExpiresAt: now + user.expiresIn * 1000, accessIssuedAt: now, refresh: user.refresh, refreshExpiresAt: now + user.refreshExpiresIn * 1000 };
    await context.addInitScript(
      ([t, p]) => {
        sessionStorage.setItem('switchyard.tokens', t);
        sessionStorage.setItem('switchyard.profile', p);
      },
      [JSON.stringify(tokens), JSON.stringify({ userId: user.userId, email: user.email })] as const,
    );
    const refused: string[] = [];
    page.on('console', (m) => {
      if (/WebSocket/.test(m.text())) refused.push(m.text());
    });
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));

    await page.goto(`${foreignOrigin}/`);
    const alert = page.locator('.banner.error[role="alert"]');
    await alert.getByText(`Can't connect to the server at ${server.url}`).waitFor({ timeout: 30_000 });
    assert.match(await alert.innerText(), new RegExp(`This page comes from ${foreignOrigin.replace(/[.]/g, '\\.')}; the server accepts sockets only from its own origin and the ones in its allowlist`));
    assert.notEqual(await page.locator('.conn').innerText(), 'Online');
    assert.ok(sockets.some((u) => u.startsWith(`ws://127.0.0.1:${server.port}/v1/ws`)), `the page tried the server's socket (${sockets.join(', ')})`);
    // Chromium tells the page's console why the handshake failed: the server's 403.
    await until(() => refused.some((t) => /Unexpected response code: 403/.test(t)), 'the browser to report the upgrade refused with 403', 15_000);
    await shot(page, 'origin-refused');
    await context.close();
  }));
