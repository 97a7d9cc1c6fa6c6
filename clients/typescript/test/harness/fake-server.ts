// A scripted WebSocket server for unit tests: it speaks enough of the protocol (welcome,
// session.push with per-client exactly-once bookkeeping, ok replies) and lets a test send
// anything, close with any code, or go silent.
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';

export interface Frame {
  type: string;
  id?: string;
  [k: string]: unknown;
}

export class FakeServer {
  private wss: WebSocketServer;
  sockets: WebSocket[] = [];
  /** Every frame any client sent, parsed. */
  received: Frame[] = [];
  /** Authorization headers seen at upgrades. */
  authHeaders: Array<string | undefined> = [];
  /** Answers requests by type; return undefined to stay silent. */
  handlers = new Map<string, (f: Frame, ws: WebSocket) => unknown>();
  /** Sends welcome on connect (after the auth frame when there is no header). */
  welcome = true;
  limits = { max_frame_bytes: 65536, frames_per_sec: 1000, max_subscriptions: 100, heartbeat_secs: 25 };
  expiresAt: number | null = null;
  /** client_id -> last mutation id, as the server's sync_clients table. */
  lastIds = new Map<string, number>();
  version = 0;
  pushes: Frame[] = [];
  pushResult: ((m: { client_id: string; mutation_id: number }) => object | null) | null = null;

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on('connection', (ws, req) => {
      this.sockets.push(ws);
      this.authHeaders.push(req.headers.authorization);
      const header = req.headers.authorization !== undefined;
      if (header && this.welcome) this.sendWelcome(ws);
      ws.on('message', (data) => {
        let f: Frame;
        try {
          f = JSON.parse(data.toString()) as Frame;
        } catch {
          return;
        }
        this.received.push(f);
        if (f.type === 'auth') {
          if (f.id) ws.send(JSON.stringify({ type: 'ok', id: f.id }));
          if (this.welcome) this.sendWelcome(ws);
          return;
        }
        const h = this.handlers.get(f.type);
        const result = h ? h(f, ws) : this.defaultAnswer(f);
        if (result !== undefined && f.id) ws.send(JSON.stringify(result === null ? { type: 'ok', id: f.id } : { type: 'ok', id: f.id, result }));
      });
    });
  }

  static async start(): Promise<FakeServer> {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    return new FakeServer(wss);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  sendWelcome(ws: WebSocket): void {
    ws.send(
      JSON.stringify({
        type: 'welcome',
        conn_id: '00000000-0000-4000-8000-000000000001',
        user_id: '00000000-0000-4000-8000-0000000000aa',
        expires_at: this.expiresAt,
        limits: this.limits,
      }),
    );
  }

  private defaultAnswer(f: Frame): unknown {
    if (f.type === 'ping') return { server_time: Date.now() };
    if (f.type === 'subscribe') return { channel: f.channel, presence: [], version: this.version, changes: [] };
    if (f.type === 'session.push') return this.push(f);
    return null;
  }

  /** The server's exactly-once rules: retries get a result, gaps are out_of_order. */
  push(f: Frame): object {
    this.pushes.push(f);
    const results = (f.mutations as Array<{ client_id: string; mutation_id: number }>).map((m) => {
      const last = this.lastIds.get(m.client_id) ?? 0;
      if (m.mutation_id <= last) return { status: 'applied', client_id: m.client_id, mutation_id: m.mutation_id, version: 0 };
      if (m.mutation_id > last + 1) return { status: 'out_of_order', client_id: m.client_id, mutation_id: m.mutation_id, expected: last + 1 };
      const custom = this.pushResult?.(m);
      if (custom && (custom as { status?: string }).status !== 'applied' && (custom as { code?: string }).code === 'client_id_taken') return custom;
      this.lastIds.set(m.client_id, m.mutation_id);
      if (custom) return custom;
      this.version++;
      return { status: 'applied', client_id: m.client_id, mutation_id: m.mutation_id, version: this.version };
    });
    return { results, version: this.version, server_hlc: `${Date.now()}:0` };
  }

  /** Sends raw text to every open socket. */
  broadcast(text: string): void {
    for (const ws of this.sockets) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  closeAll(code: number, reason = ''): void {
    for (const ws of this.sockets) if (ws.readyState === ws.OPEN) ws.close(code, reason);
  }

  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }
}
