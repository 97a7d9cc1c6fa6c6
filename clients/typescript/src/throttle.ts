/**
 * Client-side pacing under the server's `frames_per_sec`: a token bucket that queues frames
 * instead of dropping them. The server allows a burst of twice the rate and closes with 4029
 * past it; this bucket holds at most `rate` tokens, so the client never gets near that.
 */

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private rate: number,
    private capacity: number = rate,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.tokens = capacity;
    this.last = clock();
  }

  /** New limits (from a `welcome`); keeps the tokens already earned, up to the new capacity. */
  setRate(rate: number, capacity: number = rate): void {
    this.refill();
    this.rate = Math.max(rate, 0.001);
    this.capacity = Math.max(capacity, 1);
    this.tokens = Math.min(this.tokens, this.capacity);
  }

  private refill(): void {
    const now = this.clock();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  /** Takes a token if one is there. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }

  /** Milliseconds until a token is there (0 when one is). */
  waitMs(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil(((1 - this.tokens) / this.rate) * 1000);
  }
}

/**
 * A FIFO of outgoing frames drained through a {@link TokenBucket}. Frames keep their order;
 * nothing is dropped while the queue is open.
 */
export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

const realTimers: Timers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

export class ThrottledQueue<T> {
  private queue: T[] = [];
  private timer: unknown = null;

  constructor(
    readonly bucket: TokenBucket,
    private readonly sink: (item: T) => void,
    private readonly timers: Timers = realTimers,
  ) {}

  get length(): number {
    return this.queue.length;
  }

  push(item: T): void {
    this.queue.push(item);
    this.drain();
  }

  /** Sends what the bucket allows now; schedules the rest. */
  drain(): void {
    if (this.timer !== null) return;
    while (this.queue.length > 0) {
      if (!this.bucket.tryTake()) {
        this.timer = this.timers.set(() => {
          this.timer = null;
          this.drain();
        }, this.bucket.waitMs());
        return;
      }
      const item = this.queue.shift() as T;
      this.sink(item);
    }
  }

  /** Empties the queue (the socket closed); returns what was waiting. */
  clear(): T[] {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    const q = this.queue;
    this.queue = [];
    return q;
  }
}
