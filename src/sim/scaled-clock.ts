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

  setTimeout(fn: () => void, delayMs: number): TimerId {
    const id = this.#nextId++;
    const timer = globalThis.setTimeout(() => {
      this.#timers.delete(id);
      fn();
    }, Math.max(0, delayMs) / this.speed);
    this.#timers.set(id, timer);
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
