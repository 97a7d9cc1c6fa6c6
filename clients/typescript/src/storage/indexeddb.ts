/**
 * A queue store in IndexedDB, for browsers. Several tabs share the database but must not share
 * a client id (two tabs handing out the same mutation ids would overwrite each other's
 * mutations), so the database holds one queue per client id and each tab claims a free one
 * with a Web Lock it holds until it closes. A tab that finds a queue left by a closed tab
 * takes it over and pushes what it holds; with no free queue it starts a new client id.
 * Without Web Locks (old browsers) every tab uses the first queue: keep to one tab there.
 */

import type { QueueMeta, QueueState, QueueStore, StoredMutation } from './types.js';

interface Row {
  clientId: string;
  mutationId: number;
  sessionId: string;
  mutation: StoredMutation['mutation'];
}

interface LockManagerLike {
  request(name: string, opts: { mode: 'exclusive'; ifAvailable: true }, fn: (lock: unknown) => Promise<void> | void): Promise<unknown>;
}

export interface IndexedDbQueueStoreOptions {
  /** Database name. Default `switchyard`. */
  name?: string;
  indexedDB?: IDBFactory;
  locks?: LockManagerLike | null;
}

function req<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function done(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error ?? new Error('transaction aborted'));
  });
}

export class IndexedDbQueueStore implements QueueStore {
  private clientId: string | null = null;
  private release: (() => void) | null = null;

  private constructor(
    private readonly db: IDBDatabase,
    private readonly locks: LockManagerLike | null,
  ) {}

  static async open(opts: IndexedDbQueueStoreOptions = {}): Promise<IndexedDbQueueStore> {
    const idb = opts.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (!idb) throw new Error('IndexedDB is not available here');
    const open = idb.open(opts.name ?? 'switchyard', 1);
    open.onupgradeneeded = () => {
      const db = open.result;
      db.createObjectStore('queues', { keyPath: 'clientId' });
      db.createObjectStore('mutations', { keyPath: ['clientId', 'mutationId'] });
    };
    const db = await req(open);
    const locks =
      opts.locks === undefined ? ((globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks ?? null) : opts.locks;
    const store = new IndexedDbQueueStore(db, locks);
    const metas = (await req(db.transaction('queues').objectStore('queues').getAll())) as QueueMeta[];
    for (const m of metas) {
      if (await store.claim(m.clientId)) {
        store.clientId = m.clientId;
        break;
      }
    }
    return store;
  }

  /** Takes the lock of `clientId` if no other tab holds it. */
  private async claim(clientId: string): Promise<boolean> {
    if (!this.locks) return true;
    return new Promise<boolean>((resolve) => {
      void this.locks?.request(`switchyard-queue:${clientId}`, { mode: 'exclusive', ifAvailable: true }, (lock) => {
        if (!lock) {
          resolve(false);
          return;
        }
        this.release?.();
        resolve(true);
        return new Promise<void>((r) => {
          this.release = r;
        });
      });
    });
  }

  async load(): Promise<QueueState | null> {
    if (this.clientId === null) return null;
    const tx = this.db.transaction(['queues', 'mutations']);
    const meta = (await req(tx.objectStore('queues').get(this.clientId))) as QueueMeta | undefined;
    const range = IDBKeyRange.bound([this.clientId, 0], [this.clientId, Number.MAX_SAFE_INTEGER]);
    const rows = (await req(tx.objectStore('mutations').getAll(range))) as Row[];
    if (!meta) return null;
    return {
      clientId: meta.clientId,
      nextMutationId: meta.nextMutationId,
      hlc: meta.hlc,
      mutations: rows.sort((a, b) => a.mutationId - b.mutationId).map((r) => ({ sessionId: r.sessionId, mutation: r.mutation })),
    };
  }

  async append(meta: QueueMeta, added: StoredMutation[]): Promise<void> {
    const tx = this.db.transaction(['queues', 'mutations'], 'readwrite');
    tx.objectStore('queues').put({ clientId: meta.clientId, nextMutationId: meta.nextMutationId, hlc: meta.hlc });
    for (const a of added) tx.objectStore('mutations').put(rowOf(meta.clientId, a));
    await done(tx);
  }

  async remove(meta: QueueMeta, ids: number[]): Promise<void> {
    const tx = this.db.transaction(['queues', 'mutations'], 'readwrite');
    tx.objectStore('queues').put({ clientId: meta.clientId, nextMutationId: meta.nextMutationId, hlc: meta.hlc });
    for (const id of ids) tx.objectStore('mutations').delete([meta.clientId, id]);
    await done(tx);
  }

  async replace(state: QueueState): Promise<void> {
    const old = this.clientId;
    if (old !== state.clientId) await this.claim(state.clientId);
    const tx = this.db.transaction(['queues', 'mutations'], 'readwrite');
    const queues = tx.objectStore('queues');
    const muts = tx.objectStore('mutations');
    for (const id of new Set([old, state.clientId])) {
      if (id === null) continue;
      queues.delete(id);
      muts.delete(IDBKeyRange.bound([id, 0], [id, Number.MAX_SAFE_INTEGER]));
    }
    queues.put({ clientId: state.clientId, nextMutationId: state.nextMutationId, hlc: state.hlc });
    for (const m of state.mutations) muts.put(rowOf(state.clientId, m));
    await done(tx);
    this.clientId = state.clientId;
  }

  async close(): Promise<void> {
    this.release?.();
    this.release = null;
    this.db.close();
  }
}

function rowOf(clientId: string, m: StoredMutation): Row {
  return { clientId, mutationId: m.mutation.mutation_id, sessionId: m.sessionId, mutation: m.mutation };
}
