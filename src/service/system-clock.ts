/**
 * Wall time for real runs: the Clock the engine and the Kubernetes adapter are given outside tests and the simulator.
 */
import type { Clock, TimerId } from '../engine/clock.ts';

/** Node's setTimeout fires at once for delays above 2^31-1 ms (~24.8 days); longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SystemClock implements Clock {
  #nextId = 1;
  readonly #timers = new Map<TimerId, NodeJS.Timeout>();

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    const dueAt = Date.now() + Math.max(0, delayMs);
    const arm = () => {
      const wait = Math.min(MAX_TIMER_MS, Math.max(0, dueAt - Date.now()));
      this.#timers.set(
        id,
        setTimeout(() => {
          if (Date.now() < dueAt) return arm();
          this.#timers.delete(id);
          fn();
        }, wait),
      );
    };
    arm();
    return id;
  }

  clearTimeout(id: TimerId): void {
    const timer = this.#timers.get(id);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(id);
  }

  /** Timers set and not yet fired nor cleared. */
  get pending(): number {
    return this.#timers.size;
  }
}
