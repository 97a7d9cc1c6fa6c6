/**
 * The REST surface: auth, sessions, projects, API keys, models. Errors come back in OpenAI's
 * shape (`{"error":{"message","type","code","param"}}`) and become a {@link SwitchyardError}
 * with the HTTP status.
 */

import { SwitchyardError } from './errors.js';
import type { Json, JsonObject, Mutation, PushReply, Snapshot, SnapshotMessage } from './protocol.js';

export interface TokenPair {
  access_token: string;
  token_type: 'Bearer';
  /** Seconds until the access token expires. */
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
}

export interface User {
  id: string;
  email: string;
  role: string;
  created_at: string;
}

export interface SessionInfo {
  id: string;
  owner_id: string;
  title: string;
  version: number;
  created_at: string;
  updated_at: string;
  role?: 'owner' | 'editor' | 'viewer';
}

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface Project {
  id: string;
  owner_id: string;
  name: string;
  description: string;
  settings: JsonObject;
  created_at: string;
  updated_at: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
}

export interface ToolRecord {
  id: string;
  session_id: string;
  turn_id: string;
  message_id: string;
  call_id: string;
  name: string;
  server: string | null;
  tool: string | null;
  arguments: Json;
  result: Json;
  error: string | null;
  status: 'ok' | 'error' | 'timeout' | 'cancelled';
  duration_ms: number;
  created_at: string;
}

/** A file attached to a session (`POST /v1/sessions/{id}/files`). */
export interface FileInfo {
  id: string;
  session_id: string;
  uploader_id: string;
  /** The name as the server kept it (path parts and invisible characters taken out). */
  filename: string;
  /** The type the server found in the bytes. */
  content_type: string;
  size: number;
  sha256: string;
  created_at: string;
}

/** Bytes to send as they are, with their content type. */
interface RawBody {
  bytes: Blob | ArrayBuffer | Uint8Array;
  type: string;
}

export interface RestOptions {
  /** `https://host` (no trailing `/v1`). */
  baseUrl: string;
  /** An access token for authenticated routes. */
  getToken?: () => Promise<string> | string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

type Query = Record<string, string | number | undefined>;

export class RestClient {
  private readonly base: string;
  private readonly doFetch: typeof fetch;

  constructor(private readonly opts: RestOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, '');
    this.doFetch = opts.fetch ?? ((...a) => globalThis.fetch(...a));
  }

  /** A request to any route; `auth: false` for the public ones. */
  async call<T>(method: string, path: string, body?: unknown, opts: { auth?: boolean; query?: Query; raw?: RawBody; timeoutMs?: number } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (opts.raw) headers['content-type'] = opts.raw.type;
    else if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts.auth !== false) {
      if (!this.opts.getToken) throw new SwitchyardError('auth_failed', `${path} needs a token (getToken)`);
      headers.authorization = `Bearer ${await this.opts.getToken()}`;
    }
    let url = this.base + path;
    const q = Object.entries(opts.query ?? {}).filter(([, v]) => v !== undefined);
    if (q.length > 0) url += '?' + q.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`).join('&');
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), opts.timeoutMs ?? this.opts.timeoutMs ?? 30_000);
    const payload: BodyInit | undefined = opts.raw ? (opts.raw.bytes as BodyInit) : body === undefined ? undefined : JSON.stringify(body);
    let res: Response;
    try {
      res = await this.doFetch(url, { method, headers, body: payload, signal: ctl.signal });
    } catch (e) {
      throw new SwitchyardError(ctl.signal.aborted ? 'timeout' : 'network_error', `${method} ${path}: ${String(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
    const text = await res.text();
    let json: unknown = undefined;
    if (text.length > 0) {
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
    }
    if (!res.ok) {
      const err = (json as { error?: { code?: unknown; message?: unknown; param?: unknown; request_id?: unknown } } | undefined)?.error;
      throw new SwitchyardError(
        typeof err?.code === 'string' ? err.code : `http_${res.status}`,
        typeof err?.message === 'string' ? err.message : `${method} ${path} answered ${res.status}`,
        {
          status: res.status,
          param: typeof err?.param === 'string' ? err.param : null,
          requestId: typeof err?.request_id === 'string' ? err.request_id : res.headers.get('x-request-id'),
        },
      );
    }
    return json as T;
  }

  // --- auth ---

  register(email: string, password: string): Promise<{ user: User; tokens: TokenPair }> {
    return this.call('POST', '/v1/auth/register', { email, password }, { auth: false });
  }

  /**
   * Password sign-in. An account with a second factor answers `mfa_required` (a
   * {@link SwitchyardError} with that code) until the call carries `totpCode` or `recoveryCode`.
   */
  login(email: string, password: string, second: { totpCode?: string; recoveryCode?: string } = {}): Promise<TokenPair> {
    const body: Record<string, string> = { email, password };
    if (second.totpCode !== undefined) body.totp_code = second.totpCode;
    if (second.recoveryCode !== undefined) body.recovery_code = second.recoveryCode;
    return this.call('POST', '/v1/auth/login', body, { auth: false });
  }

  /** Rotates a refresh token (single use: see {@link AuthSession} for coordinated refreshes). */
  refresh(refreshToken: string): Promise<TokenPair> {
    return this.call('POST', '/v1/auth/refresh', { refresh_token: refreshToken }, { auth: false });
  }

  async logout(refreshToken: string): Promise<void> {
    await this.call('POST', '/v1/auth/logout', { refresh_token: refreshToken }, { auth: false });
  }

  me(): Promise<User> {
    return this.call('GET', '/v1/auth/me');
  }

  // --- sessions ---

  listSessions(opts: { after?: string; limit?: number } = {}): Promise<Page<SessionInfo>> {
    return this.call('GET', '/v1/sessions', undefined, { query: opts });
  }

  createSession(opts: { title?: string } = {}): Promise<SessionInfo> {
    return this.call('POST', '/v1/sessions', opts.title === undefined ? {} : { title: opts.title });
  }

  /** The session's synced state (a snapshot). */
  getSession(id: string): Promise<Snapshot> {
    return this.call('GET', `/v1/sessions/${encodeURIComponent(id)}`);
  }

  messages(id: string, opts: { after?: string; limit?: number; role?: string } = {}): Promise<Page<SnapshotMessage>> {
    return this.call('GET', `/v1/sessions/${encodeURIComponent(id)}/messages`, undefined, { query: opts });
  }

  pushMutations(id: string, mutations: Mutation[]): Promise<PushReply> {
    return this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/mutations`, { mutations });
  }

  members(id: string): Promise<{ data: Array<{ user_id: string; role: string }> }> {
    return this.call('GET', `/v1/sessions/${encodeURIComponent(id)}/members`);
  }

  /** Shares the session with an account by e-mail (owner only). */
  async share(id: string, email: string, role: 'editor' | 'viewer'): Promise<void> {
    await this.call('POST', `/v1/sessions/${encodeURIComponent(id)}/members`, { email, role });
  }

  async unshare(id: string, userId: string): Promise<void> {
    await this.call('DELETE', `/v1/sessions/${encodeURIComponent(id)}/members/${encodeURIComponent(userId)}`);
  }

  toolRecords(id: string, opts: { after?: string; limit?: number } = {}): Promise<Page<ToolRecord>> {
    return this.call('GET', `/v1/sessions/${encodeURIComponent(id)}/tools`, undefined, { query: opts });
  }

  // --- files ---

  /**
   * Attaches a file to the session (editors and the owner). The server decides its type from
   * the bytes and refuses one that is not what its name says (415), too large (413) or over a
   * quota (409 `file_limit_exceeded`). Uploads get `timeoutMs` (default 5 minutes).
   */
  uploadFile(sessionId: string, file: Blob, filename: string, opts: { timeoutMs?: number } = {}): Promise<FileInfo> {
    return this.call('POST', `/v1/sessions/${encodeURIComponent(sessionId)}/files`, undefined, {
      query: { filename },
      raw: { bytes: file, type: 'application/octet-stream' },
      timeoutMs: opts.timeoutMs ?? 300_000,
    });
  }

  listFiles(sessionId: string, opts: { after?: string; limit?: number } = {}): Promise<Page<FileInfo>> {
    return this.call('GET', `/v1/sessions/${encodeURIComponent(sessionId)}/files`, undefined, { query: opts });
  }

  /** The download URL (send the bearer token; the answer is `Content-Disposition: attachment`). */
  fileUrl(sessionId: string, fileId: string): string {
    return `${this.base}/v1/sessions/${encodeURIComponent(sessionId)}/files/${encodeURIComponent(fileId)}`;
  }

  async deleteFile(sessionId: string, fileId: string): Promise<void> {
    await this.call('DELETE', `/v1/sessions/${encodeURIComponent(sessionId)}/files/${encodeURIComponent(fileId)}`);
  }

  // --- projects ---

  listProjects(): Promise<{ data: Project[] }> {
    return this.call('GET', '/v1/projects');
  }

  createProject(p: { name: string; description?: string; settings?: JsonObject }): Promise<Project> {
    return this.call('POST', '/v1/projects', p);
  }

  getProject(id: string): Promise<Project> {
    return this.call('GET', `/v1/projects/${encodeURIComponent(id)}`);
  }

  updateProject(id: string, p: { name: string; description?: string; settings?: JsonObject }): Promise<Project> {
    return this.call('PATCH', `/v1/projects/${encodeURIComponent(id)}`, p);
  }

  async deleteProject(id: string): Promise<void> {
    await this.call('DELETE', `/v1/projects/${encodeURIComponent(id)}`);
  }

  // --- API keys ---

  listApiKeys(): Promise<{ data: ApiKey[] }> {
    return this.call('GET', '/v1/api-keys');
  }

  /** The secret is in this answer only. */
  createApiKey(name: string): Promise<ApiKey & { secret: string }> {
    return this.call('POST', '/v1/api-keys', { name });
  }

  async revokeApiKey(id: string): Promise<void> {
    await this.call('DELETE', `/v1/api-keys/${encodeURIComponent(id)}`);
  }

  models(): Promise<{ object: 'list'; data: Array<{ id: string; object: string; owned_by?: string }> }> {
    return this.call('GET', '/v1/models');
  }
}
