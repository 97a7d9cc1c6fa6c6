/**
 * The client's hybrid logical clock, the same algorithm as src/sync/hlc.rs: wall-clock ms plus a
 * counter. `observe` moves it past the server's clock (every push and subscribe reply carries
 * `server_hlc`), so a write made after seeing someone else's change always carries a larger
 * stamp, even when this device's clock runs behind.
 */

export interface Hlc {
  ms: number;
  counter: number;
}

export function parseHlc(s: string): Hlc | null {
  const m = /^(\d+):(\d+)$/.exec(s);
  if (!m) return null;
  const ms = Number(m[1]);
  const counter = Number(m[2]);
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(counter)) return null;
  return { ms, counter };
}

export function formatHlc(h: Hlc): string {
  return `${h.ms}:${h.counter}`;
}

export function compareHlc(a: Hlc, b: Hlc): number {
  return a.ms !== b.ms ? (a.ms < b.ms ? -1 : 1) : a.counter === b.counter ? 0 : a.counter < b.counter ? -1 : 1;
}

/** The largest counter the server accepts (`MAX_HLC_COUNTER` in src/sync/ops.rs). */
export const MAX_COUNTER = 1_000_000;

export class HybridClock {
  private last: Hlc;
  /** Added to the wall clock; negative when this device runs ahead of the server. */
  private offsetMs = 0;

  constructor(
    private readonly wall: () => number = Date.now,
    start: Hlc = { ms: 0, counter: 0 },
  ) {
    this.last = { ...start };
  }

  /** A fresh timestamp, larger than any this clock has issued or observed. */
  now(): Hlc {
    const wall = Math.floor(this.wall() + this.offsetMs);
    if (wall > this.last.ms) this.last = { ms: wall, counter: 0 };
    // The server refuses counters past MAX_COUNTER: move to the next millisecond instead.
    else if (this.last.counter >= MAX_COUNTER) this.last = { ms: this.last.ms + 1, counter: 0 };
    else this.last = { ms: this.last.ms, counter: this.last.counter + 1 };
    return { ...this.last };
  }

  /** Moves the clock past `remote` (the server's clock, or a change it accepted). */
  observe(remote: Hlc): void {
    if (compareHlc(remote, this.last) > 0) this.last = { ...remote };
  }

  /**
   * Learns how far this device's wall clock is from the server's (from a reply's
   * `server_hlc`). Only a device clock running ahead by more than `toleranceMs` is corrected:
   * the server refuses mutations whose clock is too far ahead (`clock_ahead`), while a clock
   * behind is harmless (observe() already moves the HLC past the server's).
   */
  calibrate(serverMs: number, toleranceMs = 10_000): void {
    const ahead = this.wall() - serverMs;
    this.offsetMs = ahead > toleranceMs ? -ahead : 0;
  }

  /** The largest timestamp seen or issued (persisted so a restart never goes back). */
  peek(): Hlc {
    return { ...this.last };
  }
}
