/**
 * Wall time sped up: the sandbox serves its simulated cluster to kubectl and to real orchestrators, which live in real
 * time, so its clock must move on its own; `speed` virtual seconds pass per real second, so that a node's five-minute
 * apt lock or ninety-second boot can be watched without the wait. Speed 1 is plain wall time. Timers are
 * SystemClock's, so they keep the Clock contract (never early) at any speed.
 */
import { SystemClock } from '../service/system-clock.ts';

export class ScaledClock extends SystemClock {
  readonly speed: number;
  readonly #startAt: number;
  readonly #realStart: number;

  constructor(speed: number, startAt: number = Date.now()) {
    if (!Number.isFinite(speed) || speed <= 0) throw new RangeError(`speed must be a number above 0, got ${speed}`);
    super(speed);
    this.speed = speed;
    this.#startAt = startAt;
    this.#realStart = performance.now();
  }

  override now(): number {
    return Math.floor(this.#startAt + (performance.now() - this.#realStart) * this.speed);
  }
}
