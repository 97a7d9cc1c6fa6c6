/**
 * What to do after the socket closed, by close code: the table of protocol/README.md ("Close
 * codes") turned into actions. One place, so the connection code only executes a decision and
 * the unit tests can check every row.
 */

import { CloseCodes } from './protocol.js';

export type CloseAction =
  /** Reconnect after a backoff delay (at least `floorMs`). */
  | { kind: 'reconnect'; floorMs: number; reason: string }
  /** Get a new token from `getToken` (the old one was refused or expired), then reconnect. */
  | { kind: 'reauth'; immediate: boolean; reason: string }
  /** Stop for good: reconnecting cannot help until the app changes something. */
  | { kind: 'stop'; reason: string };

/** The action for a close frame with `code` (and its reason text, for messages). */
export function closeAction(code: number, reason = ''): CloseAction {
  switch (code) {
    case CloseCodes.NORMAL:
      // The server only closes normally when the socket ended under it (or we asked): the
      // client still wants to be online, so it comes back.
      return { kind: 'reconnect', floorMs: 0, reason: reason || 'closed normally' };
    case CloseCodes.TOO_BIG:
      // The SDK checks sizes before sending, so this is a limit that changed under us; the
      // offending request has been rejected, the rest may go on.
      return { kind: 'reconnect', floorMs: 0, reason: 'frame larger than the server accepts' };
    case CloseCodes.RESTART:
      // The instance is draining; the load balancer sends us to another one.
      return { kind: 'reconnect', floorMs: 0, reason: 'server restarting' };
    case CloseCodes.TRY_AGAIN_LATER:
      // The instance filled up while we authenticated in band: another try may find room.
      return { kind: 'reconnect', floorMs: 500, reason: 'server full, try again later' };
    case CloseCodes.PROTOCOL_ERROR:
      return { kind: 'stop', reason: 'protocol error (a client bug)' };
    case CloseCodes.AUTH_FAILED:
      // Also sent when the API key of the socket was revoked.
      return { kind: 'reauth', immediate: false, reason: 'authentication failed' };
    case CloseCodes.AUTH_TIMEOUT:
      // The token is fetched before the socket opens, so a timeout means the link was slow.
      return { kind: 'reconnect', floorMs: 0, reason: 'authentication timeout' };
    case CloseCodes.TOKEN_EXPIRED:
      return { kind: 'reauth', immediate: true, reason: 'token expired' };
    case CloseCodes.SLOW_CONSUMER:
      return { kind: 'reconnect', floorMs: 1_000, reason: 'slow consumer' };
    case CloseCodes.RATE_LIMITED:
      // Our own throttle should prevent it; when it happens, wait out the server's window.
      return { kind: 'reconnect', floorMs: 2_000, reason: 'rate limited' };
    case CloseCodes.TOO_MANY_CONNECTIONS:
      return { kind: 'stop', reason: 'too many connections for this user; close another one' };
    case CloseCodes.IDLE_TIMEOUT:
      return { kind: 'reconnect', floorMs: 0, reason: 'idle timeout' };
    default:
      // 1006 (no close frame: the network or the process died) and anything unknown.
      return { kind: 'reconnect', floorMs: 0, reason: reason || `closed (${code})` };
  }
}

/** What to do when the upgrade itself was answered with an HTTP status (header auth). */
export function upgradeRefusalAction(status: number): CloseAction {
  if (status === 401) return { kind: 'reauth', immediate: false, reason: 'token refused at upgrade (401)' };
  if (status === 403) return { kind: 'stop', reason: 'origin not allowed (403)' };
  if (status === 429) return { kind: 'reconnect', floorMs: 2_000, reason: 'rate limited at upgrade (429)' };
  // 503: this instance is full, another may not be; anything else: try again later.
  return { kind: 'reconnect', floorMs: 0, reason: `upgrade refused (${status})` };
}
