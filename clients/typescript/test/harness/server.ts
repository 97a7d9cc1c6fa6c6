// Starts a real switchyard binary for end-to-end tests: a free port, a temp data dir, raised
// limits, optional PostgreSQL/Redis from TEST_DATABASE_URL/TEST_REDIS_URL. It can be killed
// (SIGKILL or SIGTERM) and restarted on the same port and data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
// build/test/harness -> clients/typescript
const pkgRoot = resolve(here, '..', '..', '..');

export function binaryPath(): string {
  const bin = process.env.SWITCHYARD_BIN ?? resolve(pkgRoot, '..', '..', 'target', 'debug', 'switchyard');
  if (!existsSync(bin)) {
    throw new Error(`switchyard binary not found at ${bin}: build it (cargo build --bin switchyard) or set SWITCHYARD_BIN`);
  }
  return bin;
}

/** The environment for a switchyard process: ours, minus every SWITCHYARD_* (the server refuses unknown ones, e.g. SWITCHYARD_BIN). */
export function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SWITCHYARD_') && v !== undefined) env[k] = v;
  return env;
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

export interface ServerOptions {
  env?: Record<string, string>;
  dataDir?: string;
  port?: number;
  /** Use TEST_DATABASE_URL / TEST_REDIS_URL when set (given explicitly: these exact URLs). */
  databaseUrl?: string;
  redisUrl?: string;
  redisPrefix?: string;
}

export class TestServer {
  proc: ChildProcess | null = null;
  readonly port: number;
  readonly dataDir: string;
  private ownsDir: boolean;
  private log: string[] = [];
  exited: Promise<number | null> = Promise.resolve(null);

  private constructor(
    private readonly opts: ServerOptions,
    port: number,
  ) {
    this.port = port;
    this.ownsDir = opts.dataDir === undefined;
    this.dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'switchyard-ts-'));
  }

  static async start(opts: ServerOptions = {}): Promise<TestServer> {
    const s = new TestServer(opts, opts.port ?? (await freePort()));
    await s.launch();
    return s;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The last lines the server printed (for failure messages). */
  tail(n = 30): string {
    return this.log.slice(-n).join('\n');
  }

  async launch(): Promise<void> {
    const env = baseEnv();
    Object.assign(env, {
      SWITCHYARD_SERVER_DATA_DIR: this.dataDir,
      SWITCHYARD_SERVER_BIND: `127.0.0.1:${this.port}`,
      SWITCHYARD_SERVER_SHUTDOWN_GRACE_SECS: '2',
      SWITCHYARD_RATELIMIT_AUTH_REQUESTS: '100000',
      SWITCHYARD_WS_MAX_CONNECTIONS_PER_USER: '10000',
      SWITCHYARD_AUTH_ARGON2_MEMORY_KIB: '4096',
      SWITCHYARD_AUTH_ARGON2_ITERATIONS: '1',
      SWITCHYARD_LOG_LEVEL: 'warn',
    });
    if (this.opts.databaseUrl) env.SWITCHYARD_DATABASE_URL = this.opts.databaseUrl;
    if (this.opts.redisUrl) {
      env.SWITCHYARD_REDIS_URL = this.opts.redisUrl;
      env.SWITCHYARD_REDIS_KEY_PREFIX = this.opts.redisPrefix ?? `ts-${process.pid}-${Date.now()}:`;
    }
    Object.assign(env, this.opts.env ?? {});
    const proc = spawn(binaryPath(), ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const keep = (b: Buffer): void => {
      for (const line of b.toString().split('\n')) if (line) this.log.push(line);
      if (this.log.length > 500) this.log.splice(0, this.log.length - 500);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    this.exited = new Promise((res) => proc.once('exit', (code) => res(code)));
    await this.waitReady(proc);
  }

  private async waitReady(proc: ChildProcess): Promise<void> {
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null) throw new Error(`switchyard exited (${proc.exitCode}) at start:\n${this.tail()}`);
      try {
        const r = await fetch(`${this.url}/health`);
        if (r.ok) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`switchyard did not become healthy within 60 s:\n${this.tail()}`);
  }

  /** Kills the process (SIGKILL: no goodbye; SIGTERM: a drain with close 1012). */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    p.kill(signal);
    await this.exited;
    this.proc = null;
  }

  /** Starts again on the same port and data dir. */
  async restart(): Promise<void> {
    await this.kill('SIGKILL');
    await this.launch();
  }

  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    if (this.ownsDir) rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export interface TestUser {
  email: string;
  password: string;
  userId: string;
  access: string;
  refresh: string;
}

let userSeq = 0;

export async function registerUser(baseUrl: string): Promise<TestUser> {
  const email = `u${process.pid}-${Date.now()}-${++userSeq}@example.com`;
  const password = 'correct horse battery staple';
  const r = await fetch(`${baseUrl}/v1/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  if (r.status !== 201) throw new Error(`register: ${r.status} ${await r.text()}`);
  const body = (await r.json()) as { user: { id: string }; tokens: { access_token: string; refresh_token: string } };
  return { email, password, userId: body.user.id, access: body.tokens.access_token, refresh: body.tokens.refresh_token };
}

export async function api<T>(baseUrl: string, token: string, method: string, path: string, body?: unknown): Promise<T> {
  const r = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function createSession(baseUrl: string, token: string, title = ''): Promise<string> {
  const s = await api<{ id: string }>(baseUrl, token, 'POST', '/v1/sessions', { title });
  return s.id;
}

/** Polls `cond` until true; the timeout only guards against a hang. */
export async function eventually(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for: ${what}`);
}
