/**
 * Durable timers as actors. XState loses pending `after` timers when a snapshot is restored (statelyai/xstate#5331),
 * so every deadline the engine honours is an absolute time stored in context or in an actor's own snapshot, and these
 * actors arm themselves from it whenever they are (re)started. All of them only use the injected clock.
 */
import { fromCallback, type ActorLogic, type AnyActorRef, type Snapshot } from 'xstate';
import type { Clock, TimerId } from './clock.ts';
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

/** What a deadline actor is told: the absolute time its one timer now stands at. */
export type ArmEvent = { type: 'ARM'; at: number };

/**
 * A deadline actor's state is its armed time: persisted with the parent, so a restored machine re-arms from it.
 * `at` is null until the first ARM.
 */
export type DeadlineSnapshot = Snapshot<undefined> & { event: TimerInput['event']; at: number | null };

export type DeadlineLogic = ActorLogic<DeadlineSnapshot, ArmEvent, { event: TimerInput['event'] }>;

/**
 * One re-armable timer for a machine's whole life: each ARM moves it to a new absolute time, and it sends `event` to
 * its parent when the clock gets there. A node machine moves through six or more steps, each with its own deadline;
 * a timer actor per step cost a spawn and a stop each (a fifth of the engine's time for a large fleet, measured), where
 * re-arming one costs an event. Unlike fromCallback, whose persisted state is only its input, this actor's armed time
 * is part of its snapshot, so it survives a restore.
 */
export function createDeadlineActor(clock: Clock): DeadlineLogic {
  const armed = new WeakMap<AnyActorRef, TimerId>();
  const disarm = (self: AnyActorRef) => {
    const id = armed.get(self);
    if (id === undefined) return;
    armed.delete(self);
    clock.clearTimeout(id);
  };
  const arm = (snapshot: DeadlineSnapshot, self: AnyActorRef) => {
    disarm(self);
    if (snapshot.at === null || snapshot.status !== 'active') return;
    const fire = () => {
      armed.delete(self);
      if (self.getSnapshot().status === 'active') self._parent?.send({ type: snapshot.event, at: clock.now() } satisfies TimerEvent);
    };
    armed.set(self, clock.setTimeout(fire, snapshot.at - clock.now()));
  };
  return {
    getInitialSnapshot: (_scope, input) => ({ status: 'active', output: undefined, error: undefined, event: input.event, at: null }),
    start: (snapshot, { self }) => arm(snapshot, self),
    transition: (snapshot, event, { self }) => {
      if ((event as { type: string }).type === 'xstate.stop') {
        disarm(self);
        return { ...snapshot, status: 'stopped', output: undefined, error: undefined };
      }
      if (event.type !== 'ARM' || snapshot.status !== 'active') return snapshot;
      const next = { ...snapshot, at: event.at };
      arm(next, self);
      return next;
    },
    getPersistedSnapshot: (snapshot) => snapshot,
    restoreSnapshot: (persisted) => persisted as unknown as DeadlineSnapshot,
  };
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
