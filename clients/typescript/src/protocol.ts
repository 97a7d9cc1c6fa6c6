/**
 * The wire protocol as types: every frame the SDK sends or reads, as protocol/README.md and
 * protocol/schema/ describe them. Kept free of logic so it can be checked against the JSON
 * Schemas (test/unit/schema.test.ts validates frames the SDK builds).
 *
 * Fields the server added later (snapshot `stamps`, `server_hlc`, `reason`, refusal `code`,
 * the `broadcast` frame) are optional here: the SDK works with servers from before and after.
 */

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

// ---------------------------------------------------------------------------------------------
// Sync vocabulary (mirrors src/sync/ops.rs)

export type FieldName = 'title' | 'model' | 'system_prompt' | 'archived' | 'pinned' | 'project_id';
export const FIELD_NAMES: readonly FieldName[] = [
  'title',
  'model',
  'system_prompt',
  'archived',
  'pinned',
  'project_id',
];
export type MessageRole = 'user' | 'assistant' | 'system' | 'tool';

export type Op =
  | { op: 'set_field'; field: FieldName; value: Json }
  | { op: 'set_context'; key: string; value: Json }
  | { op: 'delete_context'; key: string }
  | { op: 'add_tag'; tag: string }
  | { op: 'remove_tag'; tag: string }
  | { op: 'append_message'; message_id: string; role: MessageRole; content: string; metadata?: Json }
  | { op: 'edit_message'; message_id: string; content: string }
  | { op: 'delete_message'; message_id: string }
  | { op: 'create_session' }
  | { op: 'delete_session' }
  // Server-only (chat turns, client id `~turn-<id>`); a client push carrying one is refused.
  | { op: 'stream_start'; message_id: string; metadata?: Json }
  | { op: 'stream_update'; message_id: string; content: string }
  | { op: 'stream_end'; message_id: string; content: string; metadata?: Json };

/** Ops a client may push (the server refuses stream_* from clients). */
export type ClientOp = Exclude<Op, { op: 'stream_start' | 'stream_update' | 'stream_end' }>;

/** A mutation: one client's atomic batch of ops. `hlc` is `"<unix ms>:<counter>"`. */
export interface Mutation {
  client_id: string;
  mutation_id: number;
  hlc: string;
  ops: Op[];
}

/** A committed change as broadcast in `sync.change` and replayed by `subscribe` with `since`. */
export interface Change extends Mutation {
  version: number;
}

/** Who wrote a register or a message's content, and when. */
export interface WireStamp {
  hlc: string;
  client_id: string;
}

export interface SnapshotMessage {
  id: string;
  role: MessageRole;
  content: string;
  metadata: Json;
  position: number;
  streaming: boolean;
  /** Index of the append within its mutation (newer servers). */
  seq?: number;
  author_client?: string;
  edit?: WireStamp;
}

export interface Snapshot {
  version: number;
  fields: Partial<Record<FieldName, Json>> & Record<string, Json>;
  context: Record<string, Json>;
  tags: string[];
  messages: SnapshotMessage[];
  /** Every register's last-writer stamp, tombstones included (`f:title`, `c:<key>`, `t:<tag>`). */
  stamps?: Record<string, WireStamp>;
  server_hlc?: string;
}

export type MutationResult =
  | { status: 'applied'; client_id: string; mutation_id: number; version: number }
  | { status: 'refused'; client_id: string; mutation_id: number; error: string; code?: RefusalCode }
  | { status: 'out_of_order'; client_id: string; mutation_id: number; expected: number };

export type RefusalCode =
  | 'invalid'
  | 'unknown_op'
  | 'clock_ahead'
  | 'not_allowed'
  | 'limit_exceeded'
  | 'conflict'
  | 'already_processed'
  | 'client_id_taken'
  | (string & {});

export interface PushReply {
  results: MutationResult[];
  version: number;
  server_hlc: string;
}

// ---------------------------------------------------------------------------------------------
// Channels, presence, turns

export interface Member {
  user_id: string;
  conn_id: string;
  device: string | null;
  connected_since: number;
}

export interface Sender {
  user_id: string;
  conn_id: string;
}

/** A turn running when a `subscribe` was answered: its text up to delta `index`. */
export interface LiveTurn {
  turn_id: string;
  message_id: string;
  model: string;
  index: number;
  content: string;
}

export type SnapshotReason = 'requested' | 'compacted' | 'too_far_behind' | 'ahead' | (string & {});

export interface SubscribeResult {
  channel: string;
  presence?: Member[];
  /** Members on the channel, on every instance (`presence` lists them only up to `ws.presence_list_max`). */
  presence_count?: number;
  version?: number;
  changes?: Change[];
  snapshot?: Snapshot;
  reason?: SnapshotReason;
  server_hlc?: string;
  turn?: LiveTurn;
}

export interface Limits {
  max_frame_bytes: number;
  frames_per_sec: number;
  max_subscriptions: number;
  heartbeat_secs: number;
  /** Newer servers may advertise it; 32 otherwise. */
  max_json_depth?: number;
}

// ---------------------------------------------------------------------------------------------
// Server frames

export interface WelcomeFrame {
  type: 'welcome';
  conn_id: string;
  user_id: string;
  expires_at: number | null;
  limits: Limits;
}

export interface OkFrame {
  type: 'ok';
  id: string;
  result?: JsonObject;
}

export interface ErrorFrame {
  type: 'error';
  id: string | null;
  code: string;
  message: string;
}

export interface EventFrame {
  type: 'event';
  channel: string;
  event: string;
  data: Json;
  /** Only on client-published events from servers older than the `broadcast` frame. */
  from?: Sender;
  ts: number;
}

/** A client's ephemeral event, as delivered by servers that have the `broadcast` frame. */
export interface BroadcastFrame {
  type: 'broadcast';
  channel: string;
  event: string;
  data: Json;
  from: Sender;
  ts: number;
}

export type ServerFrame = WelcomeFrame | OkFrame | ErrorFrame | EventFrame | BroadcastFrame;

// ---------------------------------------------------------------------------------------------
// Chat and tools events (data of `event` frames on session channels)

export interface ChatDelta {
  turn_id: string;
  message_id: string;
  index: number;
  text: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
}

export interface ChatDone {
  turn_id: string;
  message_id: string;
  index: number;
  status: 'complete' | 'cancelled';
  finish_reason: string | null;
  usage: Usage | null;
}

export interface ChatErrorData {
  turn_id: string;
  message_id: string;
  index: number;
  code: string;
  message: string;
}

export interface ToolCall {
  turn_id: string;
  message_id: string;
  call_id: string;
  name: string;
  server: string | null;
  tool: string | null;
  side: 'mcp' | 'client' | null;
  arguments: Json;
}

export interface ToolResultEvent {
  turn_id: string;
  message_id: string;
  call_id: string;
  name: string;
  result: Json;
  duration_ms: number;
}

export interface ToolErrorEvent {
  turn_id: string;
  message_id: string;
  call_id: string;
  name: string;
  code: string;
  message: string;
  duration_ms: number;
}

export interface ChatSendResult {
  turn_id: string;
  message_id: string;
  user_message_id: string;
  model: string;
  version: number;
}

export interface ToolDeclaration {
  name: string;
  description?: string;
  parameters?: JsonObject;
}

export interface McpTool {
  name: string;
  description?: string;
  input_schema: Json;
}

export interface McpStatus {
  server_id: string;
  name: string;
  state: 'connecting' | 'ready' | 'error' | 'stopped';
  protocol_version?: string;
  server_info?: { name: string; version: string };
  tool_count: number;
  tools: McpTool[];
  error?: string;
  next_retry_at?: number;
  updated_at: number;
}

/** An MCP server's question to the user during a tool call (`mcp.elicitation`). */
export interface Elicitation {
  elicitation_id: string;
  server_id: string;
  server: string;
  message: string;
  /** A JSON Schema object of primitive properties (string, number, integer, boolean, enums, multi-select lists), with optional defaults. */
  requested_schema: Json;
  /** Unix ms; then the server gets `cancel`. */
  expires_at: number;
  /** The turns' tool calls it holds up. */
  calls: Array<{ turn_id: string; call_id: string }>;
}

export type ElicitationAction = 'accept' | 'decline' | 'cancel';

/** The question is gone (`mcp.elicitation.ended`): answered on some connection, or timed out. */
export interface ElicitationEnded {
  elicitation_id: string;
  action: ElicitationAction;
  timed_out: boolean;
}

/** A running MCP tool call waits for the user's answer (`tool.waiting`). */
export interface ToolWaitingEvent {
  turn_id: string;
  message_id: string;
  call_id: string;
  elicitation_id: string;
  server: string;
}

/** Event names the server owns; `publish` refuses them (`invalid_request`). */
export const RESERVED_EVENT_PREFIXES: readonly string[] = [
  'presence.',
  'sync.',
  'chat.',
  'tool.',
  'session.',
  'mcp.',
  'project.',
  'file.',
  'auth.',
  'user.',
  'server.',
];

/** WebSocket close codes (protocol/README.md, "Close codes"). */
export const CloseCodes = {
  NORMAL: 1000,
  ABNORMAL: 1006,
  TOO_BIG: 1009,
  RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  PROTOCOL_ERROR: 4000,
  AUTH_FAILED: 4001,
  AUTH_TIMEOUT: 4002,
  TOKEN_EXPIRED: 4003,
  SLOW_CONSUMER: 4008,
  RATE_LIMITED: 4029,
  TOO_MANY_CONNECTIONS: 4030,
  IDLE_TIMEOUT: 4031,
} as const;
