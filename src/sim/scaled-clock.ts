/**
 * Wall time sped up: the sandbox serves its simulated cluster to kubectl and to real orchestrators, which live in real
 * time, so its clock must move on its own; `speed` virtual seconds pass per real second, so that a node's five-minute
 * apt lock or ninety-second boot can be watched without the wait. Speed 1 is plain wall time.
 */
import type { Clock, TimerId } from '../engine/clock.ts';

export class ScaledClock implements Clock {
  readonly speed: number;
  readonly #startAt: number;
  readonly #realStart: number;
  readonly #timers = new Map<TimerId, NodeJS.Timeout>();
  #nextId = 1;

  constructor(speed: number, startAt: number = Date.now()) {
    if (!Number.isFinite(speed) || speed <= 0) throw new RangeError(`speed must be a number above 0, got ${speed}`);
    this.speed = speed;
    this.#startAt = startAt;
    this.#realStart = performance.now();
  }

  now(): number {
    return Math.floor(this.#startAt + (performance.now() - this.#realStart) * this.speed);
  }

  /**
   * Runs `fn` once now() has reached now() + delayMs, never before. Node counts timers in whole milliseconds from a
   * truncated start, so its timers fire up to a millisecond early by the clock now() reads, which this speed
   * multiplies: a timer that finds itself early waits out the rest. (A boot timer that fired early found the boot
   * not yet due and left the simulated node down for good.)
   */
  setTimeout(fn: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    const dueAt = this.now() + Math.max(0, delayMs);
    const arm = (wallMs: number) => {
      this.#timers.set(
        id,
        globalThis.setTimeout(() => {
          const left = dueAt - this.now();
          if (left > 0) return arm(left / this.speed);
          this.#timers.delete(id);
          fn();
        }, wallMs),
      );
    };
    arm(Math.max(0, delayMs) / this.speed);
    return id;
  }

  clearTimeout(id: TimerId): void {
    const timer = this.#timers.get(id);
    if (timer === undefined) return;
    globalThis.clearTimeout(timer);
    this.#timers.delete(id);
  }

  /** Cancels every pending timer (the sandbox is stopping). */
  clearAll(): void {
    for (const timer of this.#timers.values()) globalThis.clearTimeout(timer);
    this.#timers.clear();
  }
}
