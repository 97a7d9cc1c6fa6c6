/**
 * Where the mutation queue lives between runs. A mutation is written here before it is sent,
 * and its id is never handed out twice, so a closed tab or a killed process loses nothing it
 * queued and never reuses an id (a reused id would be taken by the server as a retry of the
 * old mutation and silently dropped).
 */

import type { Mutation } from '../protocol.js';

export interface QueueMeta {
  /** This client's id; mutation ids are contiguous per client id. */
  clientId: string;
  /** The id the next mutation gets. */
  nextMutationId: number;
  /** The largest clock the client issued or saw, so a restart never goes back in time. */
  hlc: string;
}

export interface StoredMutation {
  sessionId: string;
  mutation: Mutation;
}

export interface QueueState extends QueueMeta {
  /** Not yet acknowledged, in mutation id order. */
  mutations: StoredMutation[];
}

export interface QueueStore {
  /** The saved queue, or null on first use. */
  load(): Promise<QueueState | null>;
  /** Durably adds mutations (and the meta that counts them). */
  append(meta: QueueMeta, added: StoredMutation[]): Promise<void>;
  /** Durably forgets acknowledged mutations. */
  remove(meta: QueueMeta, mutationIds: number[]): Promise<void>;
  /** Replaces everything (a new client id renumbered the queue). */
  replace(state: QueueState): Promise<void>;
  /** Releases the store (locks, handles). */
  close?(): Promise<void>;
}
