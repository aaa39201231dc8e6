/**
 * Durable timers as actors. XState loses pending `after` timers when a snapshot is restored (statelyai/xstate#5331),
 * so every deadline the engine honours is an absolute time stored in context, and these invoked actors re-arm from it
 * whenever they are (re)started. Both only use the injected clock.
 */
import { fromCallback } from 'xstate';
import type { Clock } from './clock.ts';
import type { TimerInput } from './effects.ts';
import { isWithinWindow, nextWindowChange, type MaintenanceWindow } from './window.ts';

export type TimerEvent = { type: TimerInput['event']; at: number };
export type WindowEvent = { type: 'WINDOW_OPENED' | 'WINDOW_CLOSED'; at: number };

/** Sends `input.event` once the clock reaches `input.at` (at once if that time has already passed). */
export function createTimerActor(clock: Clock) {
  return fromCallback<{ type: string }, TimerInput>(({ input, sendBack }) => {
    const id = clock.setTimeout(() => sendBack({ type: input.event, at: clock.now() } satisfies TimerEvent), input.at - clock.now());
    return () => clock.clearTimeout(id);
  });
}

/**
 * Reports the maintenance window's state when started (a restored run may have slept through a change) and then
 * every opening and closing, computed from the window's rules rather than polled.
 */
export function createWindowWatcher(clock: Clock) {
  return fromCallback<{ type: string }, { window: MaintenanceWindow | null }>(({ input, sendBack }) => {
    const window = input.window;
    if (!window) return () => {};
    let timer: number | undefined;
    const report = (open: boolean) => sendBack({ type: open ? 'WINDOW_OPENED' : 'WINDOW_CLOSED', at: clock.now() } satisfies WindowEvent);
    const arm = () => {
      const now = clock.now();
      const change = nextWindowChange(window, now);
      timer = clock.setTimeout(() => {
        report(change.open);
        arm();
      }, change.at - now);
    };
    report(isWithinWindow(window, clock.now()));
    arm();
    return () => {
      if (timer !== undefined) clock.clearTimeout(timer);
    };
  });
}
