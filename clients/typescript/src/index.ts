/**
 * @switchyard/client — the TypeScript client of switchyard. Browser and Node entry (Node-only
 * pieces such as the JSON-file queue store are in `@switchyard/client/node`).
 */

export { Switchyard, type SwitchyardOptions, type SwitchyardEvents } from './client.js';
export { SyncedSession, type SessionView, type ViewMessage, type SessionEvents } from './session.js';
export { Turn, Chat, type TurnResult, type TurnStatus, type DeltaEvent, type SendOptions, type TurnEvents } from './chat.js';
export { declareTools, runTool, type ClientTool, type ToolSet, type ToolContext, type ToolAnswer } from './tools.js';
export { Channel, Channels, canonicalChannel, canonicalUuid, type BroadcastEvent, type ServerEvent, type ChannelEvents } from './channels.js';
export {
  Connection,
  type ConnectionState,
  type ConnectionOptions,
  type GetToken,
  type TokenRequest,
  type TokenReason,
  type StateChange,
  type WebSocketConstructor,
  type WebSocketLike,
} from './connection.js';
export { closeAction, upgradeRefusalAction, type CloseAction } from './close-policy.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { TokenBucket, ThrottledQueue } from './throttle.js';
export { Requests, type RequestOptions } from './requests.js';
export { MutationQueue, newClientId, type LocalMutation, type AppliedMutation, type RefusedMutation, type QueueOptions } from './queue.js';
export { Replica } from './replica.js';
export * as merge from './merge.js';
export { HybridClock, parseHlc, formatHlc, compareHlc, type Hlc } from './hlc.js';
export { McpStatuses } from './mcp.js';
export { RestClient, type RestOptions, type TokenPair, type User, type SessionInfo, type Page, type Project, type ApiKey, type ToolRecord, type FileInfo } from './rest.js';
export { AuthSession, InbandRefresh, MemoryTokenStore, LocalStorageTokenStore, storedFromPair, type StoredTokens, type TokenStore, type AuthSessionOptions } from './auth.js';
export { MutexLock, WebLocksLock, BroadcastChannelLock, defaultRefreshLock, type RefreshLock } from './locks.js';
export { MemoryQueueStore } from './storage/memory.js';
export { IndexedDbQueueStore } from './storage/indexeddb.js';
export type { QueueStore, QueueState, QueueMeta, StoredMutation } from './storage/types.js';
export { SwitchyardError, isSwitchyardError, type ClientErrorCode } from './errors.js';
export { encodeChecked, jsonDepth, utf8Length } from './frame-check.js';
export { onListenerError } from './emitter.js';
export * from './protocol.js';
