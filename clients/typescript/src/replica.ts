/**
 * The confirmed replica of one session: the server's state at `version`, advanced by changes
 * in version order. A change at or below `version` is a duplicate and is dropped; one beyond
 * `version + 1` is held until the gap fills (the owner then resubscribes with `since`).
 */

import { applyMutation, docFromSnapshot, emptyDoc, type Doc } from './merge.js';
import { parseHlc, type HybridClock } from './hlc.js';
import type { Change, Snapshot } from './protocol.js';

export type ChangeOutcome = 'applied' | 'duplicate' | 'gap';

export class Replica {
  doc: Doc = emptyDoc();
  /** The version this replica holds; -1 before any snapshot or catch-up. */
  version = -1;
  /** Changes that arrived ahead of a gap, by version. */
  private ahead = new Map<number, Change>();

  constructor(private readonly clock: HybridClock) {}

  get known(): boolean {
    return this.version >= 0;
  }

  /** Replaces everything with a snapshot; held changes beyond it are kept. */
  applySnapshot(s: Snapshot): void {
    this.doc = docFromSnapshot(s);
    this.version = typeof s.version === 'number' ? s.version : 0;
    for (const v of [...this.ahead.keys()]) if (v <= this.version) this.ahead.delete(v);
    for (const m of this.doc.messages.values()) if (m.edit) this.clock.observe(m.edit.hlc);
    for (const r of this.doc.registers.values()) if (r.stamp) this.clock.observe(r.stamp.hlc);
    this.drain();
  }

  /** Starts from an empty session at version 0 (a `changes` reply to `since: 0`). */
  startEmpty(): void {
    this.doc = emptyDoc();
    this.version = 0;
  }

  /** Applies `c` if it is the next version; returns what happened. */
  applyChange(c: Change): ChangeOutcome {
    if (!isChange(c)) return 'duplicate';
    if (!this.known || c.version <= this.version) return this.known ? 'duplicate' : 'gap';
    if (c.version > this.version + 1) {
      this.ahead.set(c.version, c);
      return 'gap';
    }
    this.applyOne(c);
    this.drain();
    return 'applied';
  }

  /** Whether changes are held behind a gap. */
  get hasGap(): boolean {
    return this.ahead.size > 0;
  }

  private applyOne(c: Change): void {
    // The server committed it: ops this replica cannot apply are skipped, the rest lands.
    applyMutation(this.doc, c, c.version, 'lenient');
    this.version = c.version;
    const h = parseHlc(c.hlc);
    if (h) this.clock.observe(h);
  }

  private drain(): void {
    for (;;) {
      const next = this.ahead.get(this.version + 1);
      if (!next) break;
      this.ahead.delete(next.version);
      this.applyOne(next);
    }
  }
}

function isChange(c: unknown): c is Change {
  const x = c as Change;
  return (
    !!x &&
    typeof x === 'object' &&
    Number.isSafeInteger(x.version) &&
    x.version > 0 &&
    typeof x.client_id === 'string' &&
    typeof x.hlc === 'string' &&
    Array.isArray(x.ops)
  );
}
