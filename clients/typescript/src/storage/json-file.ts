/// <reference types="node" />
/**
 * A queue store in one JSON file, for Node (CLIs, bots, tests). Every change rewrites the file
 * through a temporary file and a rename, so a process killed mid-write leaves the old file or
 * the new one, never half of one. Writes are serialized and coalesced: a burst of changes
 * costs a few writes, and each change's promise resolves once a write that includes it is on disk.
 * One process per file: two processes sharing one would hand out the same mutation ids.
 */

import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { QueueMeta, QueueState, QueueStore, StoredMutation } from './types.js';

export class JsonFileQueueStore implements QueueStore {
  private state: QueueState | null = null;
  private loaded = false;
  private dirty = 0;
  private written = 0;
  private writing: Promise<void> | null = null;
  private waiters: Array<{ gen: number; resolve: () => void; reject: (e: unknown) => void }> = [];

  constructor(readonly path: string) {}

  async load(): Promise<QueueState | null> {
    try {
      const text = await readFile(this.path, 'utf8');
      const parsed = JSON.parse(text) as QueueState;
      this.state = isState(parsed) ? parsed : null;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      this.state = null;
    }
    this.loaded = true;
    return this.state ? structuredClone(this.state) : null;
  }

  append(meta: QueueMeta, added: StoredMutation[]): Promise<void> {
    const prev = this.state?.mutations ?? [];
    this.state = { ...meta, mutations: [...prev, ...structuredClone(added)] };
    return this.persist();
  }

  remove(meta: QueueMeta, ids: number[]): Promise<void> {
    const gone = new Set(ids);
    this.state = { ...meta, mutations: (this.state?.mutations ?? []).filter((m) => !gone.has(m.mutation.mutation_id)) };
    return this.persist();
  }

  replace(state: QueueState): Promise<void> {
    this.state = structuredClone(state);
    return this.persist();
  }

  private persist(): Promise<void> {
    if (!this.loaded) return Promise.reject(new Error('JsonFileQueueStore: load() first'));
    const gen = ++this.dirty;
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ gen, resolve, reject }));
    this.writing ??= this.writeLoop().finally(() => {
      this.writing = null;
    });
    return done;
  }

  /** Writes until the file holds the latest state; each waiter resolves once a write includes it. */
  private async writeLoop(): Promise<void> {
    while (this.written < this.dirty) {
      const gen = this.dirty;
      const text = JSON.stringify(this.state);
      let error: unknown = null;
      try {
        await mkdir(dirname(this.path), { recursive: true });
        const tmp = `${this.path}.${process.pid}.tmp`;
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(text);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.path);
      } catch (e) {
        error = e;
      }
      this.written = gen;
      const ready = this.waiters.filter((w) => w.gen <= gen);
      this.waiters = this.waiters.filter((w) => w.gen > gen);
      for (const w of ready) (error === null ? w.resolve() : w.reject(error));
    }
  }
}

function isState(v: unknown): v is QueueState {
  const s = v as QueueState;
  return !!s && typeof s.clientId === 'string' && typeof s.nextMutationId === 'number' && Array.isArray(s.mutations);
}
