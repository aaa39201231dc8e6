/**
 * Wall time for real runs: the Clock the engine and the Kubernetes adapter are given outside tests and the simulator.
 * Its timers are also ScaledClock's (src/sim), which only reads a faster time.
 */
import type { Clock, TimerId } from '../engine/clock.ts';

/** Node's setTimeout fires at once for delays above 2^31-1 ms (~24.8 days); longer waits are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SystemClock implements Clock {
  /** Clock milliseconds per wall millisecond: 1 for wall time, the speed for a ScaledClock. */
  readonly #rate: number;
  #nextId = 1;
  /** Each pending timer's Node handle, and how to arm it again for what is left of its wait. */
  readonly #timers = new Map<TimerId, { handle: NodeJS.Timeout; dueAt: number; arm: () => void }>();

  constructor(rate = 1) {
    this.#rate = rate;
  }

  now(): number {
    return Date.now();
  }

  monotonicNow(): number {
    return performance.now() * this.#rate;
  }

  /**
   * Runs `fn` once now() has reached its due time, never before. Node counts timers in whole milliseconds from a
   * truncated start, so they can fire up to a millisecond early by the time now() reads (times the rate, for a
   * ScaledClock); a timer that finds itself early, or a long wait cut into pieces, is armed again for the rest.
   */
  setTimeout(fn: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    const dueAt = this.now() + Math.max(0, delayMs);
    const arm = () => {
      const wait = Math.min(MAX_TIMER_MS, Math.max(0, dueAt - this.now()) / this.#rate);
      const handle = setTimeout(() => {
        if (this.now() < dueAt) return arm();
        this.#timers.delete(id);
        fn();
      }, wait);
      this.#timers.set(id, { handle, dueAt, arm });
    };
    arm();
    return id;
  }

  clearTimeout(id: TimerId): void {
    const timer = this.#timers.get(id);
    if (timer === undefined) return;
    clearTimeout(timer.handle);
    this.#timers.delete(id);
  }

  /** Cancels every pending timer (the process is stopping). */
  clearAll(): void {
    for (const timer of this.#timers.values()) clearTimeout(timer.handle);
    this.#timers.clear();
  }

  /**
   * Arms every pending timer again for what is left of its wait: now() has jumped (ScaledClock.skip). In due order,
   * so that those the jump made due fire in that order (Node runs equal waits in the order they were set).
   */
  protected rearmAll(): void {
    for (const timer of [...this.#timers.values()].sort((a, b) => a.dueAt - b.dueAt)) {
      clearTimeout(timer.handle);
      timer.arm();
    }
  }

  /** Timers set and not yet fired nor cleared. */
  get pending(): number {
    return this.#timers.size;
  }
}
