/**
 * The browser's idea of being online. Chromium keeps an open WebSocket alive for minutes after
 * the network went away (and DevTools' offline mode does not touch sockets at all), so when
 * the page hears `offline` it drops the socket itself, and while the browser says it is
 * offline no socket is opened: the attempt fails at once and the SDK backs off until `online`
 * (which the SDK answers with an immediate reconnect). Queued changes wait in the SDK's queue.
 */

import type { Switchyard, WebSocketConstructor, WebSocketLike } from '../../typescript/src/index.js';

export function isOnline(): boolean {
  return typeof navigator === 'undefined' || navigator.onLine !== false;
}

/** A socket that never opened: closes (1006) on the next tick, like a refused connection. */
class OfflineSocket implements WebSocketLike {
  readonly readyState = 3;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor() {
    setTimeout(() => this.onclose?.({ code: 1006, reason: 'the browser is offline' }), 0);
  }
  send(): void {
    throw new Error('offline');
  }
  close(): void {}
}

/** The global WebSocket, except while the browser is offline. */
export const OnlineWebSocket: WebSocketConstructor = function (url: string): WebSocketLike {
  if (!isOnline()) return new OfflineSocket();
  return new WebSocket(url) as unknown as WebSocketLike;
} as unknown as WebSocketConstructor;

/** Drops the socket when the browser goes offline; returns the unsubscribe. */
export function watchOffline(sy: Switchyard, onChange: () => void): () => void {
  const offline = (): void => {
    sy.connection.dropSocket(1006, 'the browser went offline');
    onChange();
  };
  const online = (): void => onChange();
  addEventListener('offline', offline);
  addEventListener('online', online);
  return () => {
    removeEventListener('offline', offline);
    removeEventListener('online', online);
  };
}
