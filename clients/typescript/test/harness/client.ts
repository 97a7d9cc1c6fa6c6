// An SDK client for tests: Node's `ws`, the test user's token, fast backoff.
import WebSocket from 'ws';
import { Switchyard, type SwitchyardOptions, type WebSocketConstructor } from '../../src/index.js';
import type { TestUser } from './server.js';

export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

export function client(url: string, user: TestUser | { access: string }, extra: Partial<SwitchyardOptions> = {}): Switchyard {
  return new Switchyard({
    url,
    getToken: () => user.access,
    WebSocket: NodeWebSocket,
    backoff: { baseMs: 50, capMs: 1000 },
    ...extra,
  });
}

/** Resolves when the client reaches `state` (a hang guard rejects after `timeoutMs`). */
export function waitState(c: Switchyard, state: string, timeoutMs = 30_000): Promise<void> {
  if (c.state === state) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      off();
      reject(new Error(`client never reached ${state} (now ${c.state})`));
    }, timeoutMs);
    const off = c.on('state', (s) => {
      if (s.state === state) {
        clearTimeout(t);
        off();
        resolve();
      }
    });
  });
}

/**
 * A `ws` constructor that records its sockets and can misbehave: no automatic pongs, or the
 * first frame of the first socket held back (to let the server's auth deadline pass).
 */
export function instrumentedWebSocket(opts: { autoPong?: boolean; holdFirstFrameMs?: number } = {}): {
  WebSocket: WebSocketConstructor;
  sockets: WebSocket[];
} {
  const sockets: WebSocket[] = [];
  class Instrumented extends WebSocket {
    constructor(url: string, options?: { headers?: Record<string, string> }) {
      super(url, { ...(options ?? {}), ...(opts.autoPong === false ? { autoPong: false } : {}) });
      sockets.push(this);
      const hold = opts.holdFirstFrameMs;
      if (hold !== undefined && sockets.length === 1) {
        const send = this.send.bind(this);
        this.send = ((data: string) => {
          setTimeout(() => {
            if (this.readyState === WebSocket.OPEN) send(data);
          }, hold);
        }) as typeof this.send;
      }
    }
  }
  return { WebSocket: Instrumented as unknown as WebSocketConstructor, sockets };
}
