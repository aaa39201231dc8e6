/**
 * Real time for an Orchestrator and a KubeCluster that drive a real cluster in the container suites (the engine's tests
 * use virtual time).
 */
import type { Clock, TimerId } from '../../src/engine/clock.ts';

/** Node's timers overflow past 2^31 - 1 ms (about 24.8 days) and then fire at once; longer delays are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Real time, as the CLI's orchestrator runs: the engine's Clock over Node's timers. */
export function wallClock(): Clock {
  const timers = new Map<TimerId, NodeJS.Timeout>();
  let nextId = 1;
  const arm = (id: TimerId, dueAt: number, fn: () => void) => {
    const left = Math.max(0, dueAt - Date.now());
    timers.set(
      id,
      setTimeout(() => {
        if (left > MAX_TIMER_MS) return arm(id, dueAt, fn);
        timers.delete(id);
        fn();
      }, Math.min(left, MAX_TIMER_MS)),
    );
  };
  return {
    now: () => Date.now(),
    setTimeout(fn, delayMs) {
      const id = nextId++;
      arm(id, Date.now() + Math.max(0, delayMs), fn);
      return id;
    },
    clearTimeout(id) {
      clearTimeout(timers.get(id));
      timers.delete(id);
    },
  };
}
