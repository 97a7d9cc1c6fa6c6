/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential Backoff And
 * Jitter"): the delay is uniform in [0, min(cap, base * 2^attempt)]. Full jitter spreads a
 * thousand clients that lost the same server across the whole window instead of having them
 * return in lockstep.
 */

export interface BackoffOptions {
  /** First window, ms. Default 500. */
  baseMs?: number;
  /** Largest window, ms. Default 30000. */
  capMs?: number;
  /** Source of randomness in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  private readonly random: () => number;
  /** Failed attempts since the last success. */
  attempt = 0;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? 500;
    this.capMs = opts.capMs ?? 30_000;
    this.random = opts.random ?? Math.random;
  }

  /** Upper bound of the window for attempt `n`. */
  windowFor(n: number): number {
    // 2^n overflows to Infinity for big n, which min() then caps.
    return Math.min(this.capMs, this.baseMs * 2 ** n);
  }

  /** The next delay (ms), at least `floorMs`; advances the attempt counter. */
  next(floorMs = 0): number {
    const window = this.windowFor(this.attempt);
    this.attempt += 1;
    return Math.max(floorMs, Math.floor(this.random() * window));
  }

  reset(): void {
    this.attempt = 0;
  }
}
