/**
 * Wall time sped up: the sandbox serves its simulated cluster to kubectl and to real orchestrators, which live in real
 * time, so its clock must move on its own; `speed` virtual seconds pass per real second, so that a node's five-minute
 * apt lock or ninety-second boot can be watched without the wait. Speed 1 is plain wall time. Timers are
 * SystemClock's, so they keep the Clock contract (never early) at any speed.
 */
import { SystemClock } from '../service/system-clock.ts';

/**
 * The fastest a ScaledClock runs: a simulated hour in 3.6 wall seconds. Beyond it the simulation stops meaning
 * anything: each node's 10 s Lease renewal comes more often than every 10 ms, a busy wall second (a GC pause, a loaded
 * machine) is more than a quarter of an hour of missed heartbeats and deadlines, and at 10^11 the clock leaves the
 * range of a Date within two minutes (the sandbox crashed serving a renewTime in the year 271857).
 */
export const MAX_SPEED = 1000;

/** Why `speed` cannot be a ScaledClock's, or undefined when it can: the one rule for --speed of the sandbox and bot. */
export function speedProblem(speed: number): string | undefined {
  if (Number.isFinite(speed) && speed > 0 && speed <= MAX_SPEED) return undefined;
  return `expected a number above 0 and at most ${MAX_SPEED} (virtual seconds per real second; ${MAX_SPEED} runs a simulated hour in 3.6 s)`;
}

export class ScaledClock extends SystemClock {
  readonly speed: number;
  readonly #startAt: number;
  readonly #realStart: number;
  #skipped = 0;

  constructor(speed: number, startAt: number = Date.now()) {
    if (speedProblem(speed) !== undefined) throw new RangeError(`speed must be a number above 0 and at most ${MAX_SPEED}, got ${speed}`);
    super(speed);
    this.speed = speed;
    this.#startAt = startAt;
    this.#realStart = performance.now();
  }

  override now(): number {
    return Math.floor(this.#startAt + this.#skipped + (performance.now() - this.#realStart) * this.speed);
  }

  /**
   * Jumps `ms` ahead at once; the timers that fall due in the jump fire (in due order, each on its own turn) and the
   * others keep their due times. For tests that must get past a wait measured in minutes (a cron schedule's next
   * fire) without spending it: the jump is what any process sees when its machine sleeps, so nothing may break on it.
   */
  skip(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a skip must be a number of milliseconds >= 0, got ${ms}`);
    this.#skipped += ms;
    this.rearmAll();
  }
}
