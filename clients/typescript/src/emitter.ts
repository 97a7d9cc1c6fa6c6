/**
 * A tiny typed event emitter. Listener exceptions are caught and reported to `onListenerError`
 * (console by default): a bug in app code must never break the SDK's frame loop.
 */

export type Listener<T> = (payload: T) => void;

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  private listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) {
      set = new Set();
      this.listeners.set(event, set);
    }
    set.add(fn as Listener<never>);
    return () => this.off(event, fn);
  }

  once<K extends keyof Events>(event: K, fn: Listener<Events[K]>): () => void {
    const off = this.on(event, (p) => {
      off();
      fn(p);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, fn: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(fn as Listener<never>);
  }

  protected emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        (fn as Listener<Events[K]>)(payload);
      } catch (e) {
        reportListenerError(e);
      }
    }
  }

  /** Whether anyone listens to `event` (to skip building payloads nobody reads). */
  protected has<K extends keyof Events>(event: K): boolean {
    return (this.listeners.get(event)?.size ?? 0) > 0;
  }
}

/** A public emitter whose `emit` the owner may call. */
export class EventHub<Events extends { [K in keyof Events]: unknown }> extends Emitter<Events> {
  override emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    super.emit(event, payload);
  }
}

let reportListenerError: (e: unknown) => void = (e) => {
  console.error('[switchyard] a listener threw:', e);
};

/** Where exceptions thrown by app listeners go (default: console.error). */
export function onListenerError(fn: (e: unknown) => void): void {
  reportListenerError = fn;
}
