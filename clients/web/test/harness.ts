// The browser tests' harness: a real switchyard server (SWITCHYARD_BIN) on a free port with a
// temporary data dir, serving this package's dist/; Debian's Chromium driven by
// playwright-core; small helpers that act and look as a user would.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';

/** clients/web, found from wherever this file was bundled to. */
export const webRoot: string = (() => {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(d, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === '@switchyard/web') return d;
    const up = dirname(d);
    if (up === d) throw new Error('clients/web (package @switchyard/web) not found above the test file');
    d = up;
  }
})();
export const distDir = join(webRoot, 'dist');
export const artifacts = join(webRoot, 'test-artifacts');
mkdirSync(artifacts, { recursive: true });

export function binaryPath(): string {
  const bin = resolve(webRoot, process.env.SWITCHYARD_BIN ?? '../../target/debug/switchyard');
  if (!existsSync(bin)) {
    throw new Error(`switchyard binary not found at ${bin}: build it (cargo build --bin switchyard) or set SWITCHYARD_BIN`);
  }
  return bin;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

/** Polls `cond` until it holds; the timeout is only a guard against hanging. */
export async function until<T>(cond: () => T | Promise<T>, what: string, timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for: ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

// ---------------------------------------------------------------------------------------------
// The server

function freshDatabase(base: string): string {
  const name = `sy_test_web_${process.pid}_${Date.now()}`;
  execFileSync('psql', [base, '-qc', `CREATE DATABASE ${name}`], { stdio: 'inherit' });
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

export class TestServer {
  private proc: ChildProcess | null = null;
  private log: string[] = [];
  private dbName: string | null = null;
  private constructor(
    readonly port: number,
    readonly dataDir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  static async start(extraEnv: Record<string, string> = {}): Promise<TestServer> {
    const s = new TestServer(await freePort(), mkdtempSync(join(tmpdir(), 'switchyard-web-')));
    await s.launch(extraEnv);
    return s;
  }

  tail(n = 40): string {
    return this.log.slice(-n).join('\n');
  }

  private async launch(extraEnv: Record<string, string>): Promise<void> {
    // The server refuses unknown SWITCHYARD_* variables (SWITCHYARD_BIN is ours): pass none of ours.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHYARD_') && v !== undefined) env[k] = v;
    Object.assign(env, {
      SWITCHYARD_SERVER_DATA_DIR: this.dataDir,
      SWITCHYARD_SERVER_BIND: `127.0.0.1:${this.port}`,
      SWITCHYARD_SERVER_WEB_DIR: distDir,
      SWITCHYARD_SERVER_SHUTDOWN_GRACE_SECS: '2',
      SWITCHYARD_RATELIMIT_AUTH_REQUESTS: '100000',
      SWITCHYARD_AUTH_ARGON2_MEMORY_KIB: '4096',
      SWITCHYARD_AUTH_ARGON2_ITERATIONS: '1',
      SWITCHYARD_LLM_ECHO_CHUNK_DELAY_MS: '30',
      SWITCHYARD_LOG_LEVEL: 'warn',
    });
    const pg = process.env.TEST_DATABASE_URL;
    if (pg) {
      const url = freshDatabase(pg);
      this.dbName = new URL(url).pathname.slice(1);
      env.SWITCHYARD_DATABASE_URL = url;
    }
    if (process.env.TEST_REDIS_URL) {
      env.SWITCHYARD_REDIS_URL = process.env.TEST_REDIS_URL;
      env.SWITCHYARD_REDIS_KEY_PREFIX = `web-${process.pid}-${Date.now()}:`;
    }
    Object.assign(env, extraEnv);
    const proc = spawn(binaryPath(), ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (b: Buffer): void => {
      for (const line of b.toString().split('\n')) if (line) this.log.push(line);
      if (this.log.length > 500) this.log.splice(0, this.log.length - 500);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    await until(
      async () => {
        if (proc.exitCode !== null) throw new Error(`switchyard exited (${proc.exitCode}) at start:\n${this.tail()}`);
        try {
          return (await fetch(`${this.url}/health`)).ok;
        } catch {
          return false;
        }
      },
      'the server to answer /health',
      60_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${this.tail()}`);
    });
    const index = await fetch(`${this.url}/`);
    if (!index.ok) throw new Error(`the server does not serve the web client at / (${index.status}); is SWITCHYARD_SERVER_WEB_DIR=${distDir} built?`);
  }

  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (p && p.exitCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGKILL');
      await gone;
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    if (this.dbName && process.env.TEST_DATABASE_URL) {
      execFileSync('psql', [process.env.TEST_DATABASE_URL, '-qc', `DROP DATABASE IF EXISTS ${this.dbName} WITH (FORCE)`], { stdio: 'inherit' });
    }
  }

  // --- REST, as the tests' own eyes on the server ---

  async api<T>(token: string | null, method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`${this.url}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

export interface TestUser {
  email: string;
  password: string;
  userId: string;
  access: string;
  refresh: string;
  expiresIn: number;
  refreshExpiresIn: number;
}

let userSeq = 0;
export function newEmail(who: string): string {
  return `${who}-${process.pid}-${Date.now().toString(36)}-${++userSeq}@example.com`;
}

export const PASSWORD = 'correct horse battery staple';

export async function registerUser(server: TestServer, who: string): Promise<TestUser> {
  const email = newEmail(who);
  const r = await server.api<{ user: { id: string }; tokens: { access_token: string; refresh_token: string; expires_in: number; refresh_expires_in: number } }>(null, 'POST', '/v1/auth/register', { email, password: PASSWORD });
  return { email, password: PASSWORD, userId: r.user.id, access: r.tokens.access_token, refresh: r.tokens.refresh_token, expiresIn: r.tokens.expires_in, refreshExpiresIn: r.tokens.refresh_expires_in };
}

export interface SnapshotView {
  title: string;
  tags: string[];
  transcript: string[];
}

/** What the server has: `GET /v1/sessions/{id}`, as the page shows it. */
export async function serverView(server: TestServer, token: string, id: string): Promise<SnapshotView> {
  const s = await server.api<{ fields: { title?: unknown }; tags: string[]; messages: Array<{ content: string; position: number; seq?: number }> }>(token, 'GET', `/v1/sessions/${id}`);
  const msgs = [...s.messages].sort((a, b) => a.position - b.position || (a.seq ?? 0) - (b.seq ?? 0));
  return { title: typeof s.fields.title === 'string' ? s.fields.title : '', tags: [...s.tags].sort(), transcript: msgs.map((m) => m.content) };
}

// ---------------------------------------------------------------------------------------------
// The browser

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Debian's Chromium (never a downloaded browser). Installed with apt-get when missing and we
 * are root; when that is impossible the tests fail with the reason, they are never skipped.
 */
export function chromiumPath(): string {
  const path = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (existsSync(path)) return path;
  const why: string[] = [];
  if (process.getuid?.() === 0) {
    console.log(`# ${path} is missing: apt-get install -y chromium`);
    let r = spawnSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) {
      spawnSync('apt-get', ['update'], { stdio: 'inherit' });
      r = spawnSync('apt-get', ['install', '-y', 'chromium'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    }
    if (r.error) why.push(`apt-get could not run: ${r.error.message}`);
    else if (r.status !== 0) why.push(`apt-get install -y chromium exited ${r.status}`);
  } else {
    why.push('not root, so it cannot be installed here (apt-get install -y chromium)');
  }
  if (existsSync(path)) return path;
  throw new Error(`Chromium is required for the browser tests and ${path} does not exist: ${why.join('; ') || 'the install left no binary there'}. Install Debian's chromium package (or set CHROMIUM_PATH).`);
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS, headless: true });
}

/** A fresh browser profile (its own storage, cookies and network emulation). */
export async function newPage(browser: Browser, opts: BrowserContextOptions = {}): Promise<{ context: BrowserContext; page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 800 }, ...opts });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  return { context, page, errors };
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(artifacts, `${name}.png`) });
}

/** Signs in through the form, as a person would (e-mail, password, Enter). */
export async function signIn(page: Page, server: TestServer, user: { email: string; password: string }): Promise<void> {
  await page.goto(`${server.url}/`);
  await page.getByLabel('E-mail').fill(user.email);
  await page.getByLabel('Password').fill(user.password);
  await page.getByLabel('Password').press('Enter');
  await page.getByRole('navigation', { name: 'Sessions' }).waitFor();
  await page.locator('.conn', { hasText: 'Online' }).waitFor();
}

export async function openSession(page: Page, id: string): Promise<void> {
  await page.locator(`a[data-session-id="${id}"]`).click();
  await page.locator('.session').waitFor();
  await page.locator('.session .transcript').waitFor({ state: 'attached' });
}

/** What one page shows of a session: title, tags, transcript texts in order. */
export async function pageView(page: Page): Promise<SnapshotView> {
  const title = await page.getByLabel('Session title').inputValue();
  const tags = (await page.locator('.session .tags .tag-text').allTextContents()).sort();
  const transcript = await page.locator('.session .transcript .msg .content').allTextContents();
  return { title, tags, transcript };
}

export function sameView(a: SnapshotView, b: SnapshotView): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Runs a test body; a failure carries the server's last log lines (a hint for what went wrong there). */
export async function withLog<T>(server: TestServer, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Error) e.message += `\n--- the server's last log lines ---\n${server.tail() || '(none)'}`;
    throw e;
  }
}
