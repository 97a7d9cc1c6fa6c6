/**
 * A queue store in memory: survives reconnects, not restarts. The default when no store is
 * given; also the reference the other stores are tested against.
 */

import type { QueueMeta, QueueState, QueueStore, StoredMutation } from './types.js';

export class MemoryQueueStore implements QueueStore {
  private state: QueueState | null = null;

  async load(): Promise<QueueState | null> {
    return this.state ? structuredClone(this.state) : null;
  }

  async append(meta: QueueMeta, added: StoredMutation[]): Promise<void> {
    const prev = this.state?.mutations ?? [];
    this.state = { ...meta, mutations: [...prev, ...structuredClone(added)] };
  }

  async remove(meta: QueueMeta, ids: number[]): Promise<void> {
    const gone = new Set(ids);
    const prev = this.state?.mutations ?? [];
    this.state = { ...meta, mutations: prev.filter((m) => !gone.has(m.mutation.mutation_id)) };
  }

  async replace(state: QueueState): Promise<void> {
    this.state = structuredClone(state);
  }
}
