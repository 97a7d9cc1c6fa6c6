/**
 * One error type for everything the SDK rejects with, so an app can branch on `code` whether
 * the failure came from a socket reply, an HTTP response or the SDK's own checks.
 */

/** Codes the SDK itself produces (server codes are passed through as they come). */
export type ClientErrorCode =
  | 'timeout'
  | 'disconnected'
  | 'closed'
  | 'frame_too_large'
  | 'too_deep'
  | 'bad_reply'
  | 'network_error'
  | 'auth_failed'
  | 'refused'
  | 'reserved_event';

export class SwitchyardError extends Error {
  /** A server error code (`forbidden`, `turn_active`, ...) or one of {@link ClientErrorCode}. */
  readonly code: string;
  /** HTTP status, for REST failures. */
  readonly status: number | undefined;
  /** The request field the server blamed, when it said (`param` of the REST error body). */
  readonly param: string | undefined;
  /** The server's request id for its logs (REST). */
  readonly requestId: string | undefined;

  constructor(
    code: string,
    message: string,
    extra: { status?: number; param?: string | null; requestId?: string | null; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.name = 'SwitchyardError';
    this.code = code;
    this.status = extra.status;
    this.param = extra.param ?? undefined;
    this.requestId = extra.requestId ?? undefined;
  }
}

export function isSwitchyardError(e: unknown, code?: string): e is SwitchyardError {
  return e instanceof SwitchyardError && (code === undefined || e.code === code);
}
