/**
 * The node's one deadline actor (src/engine/timers.ts): re-armed by each step, it holds one timer at a time, sends its
 * event to its parent when the clock reaches the armed time, and carries that time in its persisted snapshot, so a
 * machine restored from storage is still held to the deadline it was saved with.
 */
import { describe, expect, it } from 'vitest';
import { assign, createActor, sendTo, setup } from 'xstate';
import { VirtualClock } from '../../src/engine/clock.ts';
import { createDeadlineActor } from '../../src/engine/timers.ts';

function parentMachine(clock: VirtualClock) {
  return setup({
    types: { context: {} as { fired: number[] }, events: {} as { type: 'STEP_TIMEOUT'; at: number } | { type: 'MOVE'; at: number } | { type: 'LEAVE' } },
    actors: { deadline: createDeadlineActor(clock) },
  }).createMachine({
    context: { fired: [] },
    initial: 'waiting',
    states: {
      waiting: {
        invoke: { id: 'deadline', src: 'deadline', input: () => ({ event: 'STEP_TIMEOUT' as const }) },
        on: {
          MOVE: { actions: sendTo('deadline', ({ event }) => ({ type: 'ARM' as const, at: (event as { at: number }).at })) },
          STEP_TIMEOUT: { actions: assign({ fired: ({ context, event }) => [...context.fired, event.at] }) },
          LEAVE: 'left',
        },
      },
      left: {},
    },
  });
}

describe('the deadline actor', () => {
  it('holds one timer, moved by each ARM, and fires once at the last armed time', () => {
    const clock = new VirtualClock(0);
    const actor = createActor(parentMachine(clock), { clock }).start();
    expect(clock.pending, 'not armed before the first ARM').toBe(0);
    actor.send({ type: 'MOVE', at: 100 });
    actor.send({ type: 'MOVE', at: 40 });
    expect(clock.pending).toBe(1);
    clock.set(39);
    expect(actor.getSnapshot().context.fired).toEqual([]);
    clock.set(1000);
    expect(actor.getSnapshot().context.fired).toEqual([40]);
    expect(clock.pending).toBe(0);
  });

  it('is disarmed when the state that invoked it is left', () => {
    const clock = new VirtualClock(0);
    const actor = createActor(parentMachine(clock), { clock }).start();
    actor.send({ type: 'MOVE', at: 100 });
    actor.send({ type: 'LEAVE' });
    expect(clock.pending).toBe(0);
    clock.set(1000);
    expect(actor.getSnapshot().context.fired).toEqual([]);
  });

  it('persists its armed time, and a restored machine fires at it', () => {
    const first = new VirtualClock(0);
    const actor = createActor(parentMachine(first), { clock: first }).start();
    actor.send({ type: 'MOVE', at: 500 });
    first.set(200);
    const persisted = JSON.parse(JSON.stringify(actor.getPersistedSnapshot())) as { children: Record<string, { snapshot: unknown }> };
    actor.stop();
    expect(persisted.children.deadline?.snapshot).toMatchObject({ status: 'active', event: 'STEP_TIMEOUT', at: 500 });

    const later = new VirtualClock(300);
    const restored = createActor(parentMachine(later), { clock: later, snapshot: persisted as never }).start();
    later.set(499);
    expect(restored.getSnapshot().context.fired).toEqual([]);
    later.set(600);
    expect(restored.getSnapshot().context.fired).toEqual([500]);
  });
});
