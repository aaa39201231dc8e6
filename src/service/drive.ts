/**
 * Driving a run in virtual time: let every promise settle, then jump the clock to the next timer, until the run ends.
 * A run that is neither finished nor waiting for any timer is stuck, and saying so beats hanging.
 */
import type { VirtualClock } from '../engine/clock.ts';
import type { FleetOutput } from '../engine/fleet.machine.ts';
import type { RunHandle } from './orchestrator.ts';

/** Resolves once every pending promise callback has run (setImmediate runs after the microtask queue drains). */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class StalledRunError extends Error {
  override readonly name = 'StalledRunError';
}

export interface DriveOptions {
  /** Called after each jump of the clock; a live view redraws here. */
  onTick?: (now: number) => void | Promise<void>;
  /** Stop before the clock passes this time (the run is then still in progress). */
  until?: number;
  /**
   * Virtual time after which a run that has not finished counts as stuck (default 30 days). Needed because a stuck
   * run still has timers pending (lease renewals), so "nothing scheduled" alone cannot catch it.
   */
  horizonMs?: number;
}

export async function driveInVirtualTime(handle: RunHandle, clock: VirtualClock, options: DriveOptions = {}): Promise<FleetOutput | null> {
  let finished = false;
  handle.result.then(
    () => (finished = true),
    () => (finished = true),
  );
  const horizonMs = options.horizonMs ?? 30 * 24 * 3600_000;
  const horizon = clock.now() + horizonMs;
  for (;;) {
    await settle();
    if (finished) return handle.result;
    const next = clock.nextDueAt();
    if (next === undefined) {
      throw new StalledRunError(`run ${handle.runId} is stuck in ${handle.state}: it has not finished and waits for nothing`);
    }
    if (next > horizon) {
      throw new StalledRunError(`run ${handle.runId} is still ${handle.state} after ${Math.round(horizonMs / 86_400_000)} virtual days`);
    }
    if (options.until !== undefined && next > options.until) {
      clock.set(options.until);
      return null;
    }
    clock.set(next);
    await options.onTick?.(next);
  }
}
