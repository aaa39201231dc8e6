/**
 * The node's one effect runner (src/engine/effect-runner.ts): a state asks it for an effect on entry and lets go of
 * it on exit, and hears `effect.done` only for the effect it asked for, as it would from an invoked promise actor.
 * The request in flight is persisted, so a restored machine runs it again.
 */
import { describe, expect, it } from 'vitest';
import { assign, createActor, sendTo, setup } from 'xstate';
import { createEffectRunner, type EffectDoneEvent, type NodeEffect, type RunEffect } from '../../src/engine/effect-runner.ts';
import type { StepResult } from '../../src/engine/effects.ts';

/** Effects whose results the test hands out, one by one, in any order. */
function scripted() {
  const started: Array<{ effect: NodeEffect; input: unknown; signal: AbortSignal; finish(output: StepResult<unknown>): void; fail(e: unknown): void }> = [];
  const run: RunEffect = (effect, input, signal) =>
    new Promise((resolve, reject) => started.push({ effect, input, signal, finish: resolve, fail: reject }));
  return { started, run };
}
const ok = (value: unknown, at = 1): StepResult<unknown> => ({ ok: true, value, at });
const flush = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Two effect states: `first` runs inspectNode, `second` cordonNode; LEAVE goes to a state that runs nothing. */
function parentMachine(run: RunEffect) {
  return setup({
    types: {
      context: {} as { heard: Array<{ effect: string; value: unknown }> },
      events: {} as EffectDoneEvent | { type: 'NEXT' } | { type: 'LEAVE' },
    },
    actors: { effects: createEffectRunner(run) },
  }).createMachine({
    context: { heard: [] },
    invoke: { id: 'effects', src: 'effects' },
    initial: 'first',
    on: { 'effect.done': { actions: assign({ heard: ({ context, event }) => [...context.heard, { effect: event.effect, value: (event.output as { value: unknown }).value }] }) } },
    states: {
      first: {
        entry: sendTo('effects', { type: 'RUN', effect: 'inspectNode', input: { node: 'w-1' } }),
        exit: sendTo('effects', { type: 'ABORT' }),
        on: { NEXT: 'second', LEAVE: 'idle' },
      },
      second: {
        entry: sendTo('effects', { type: 'RUN', effect: 'cordonNode', input: { node: 'w-1' } }),
        exit: sendTo('effects', { type: 'ABORT' }),
        on: { LEAVE: 'idle' },
      },
      idle: {},
    },
  });
}

describe('the effect runner', () => {
  it('runs the effect a state asks for and tells the parent its result', async () => {
    const { started, run } = scripted();
    const actor = createActor(parentMachine(run)).start();
    await flush();
    expect(started.map((s) => [s.effect, s.input])).toEqual([['inspectNode', { node: 'w-1' }]]);
    started[0]!.finish(ok('read'));
    await flush();
    expect(actor.getSnapshot().context.heard).toEqual([{ effect: 'inspectNode', value: 'read' }]);
    expect((actor.getSnapshot().children.effects!.getSnapshot() as { current: unknown }).current, 'nothing in flight once it finished').toBeNull();
  });

  it('aborts the effect of a state that is left, and its late result reaches no one', async () => {
    const { started, run } = scripted();
    const actor = createActor(parentMachine(run)).start();
    await flush();
    actor.send({ type: 'NEXT' });
    await flush();
    expect(started.map((s) => s.effect)).toEqual(['inspectNode', 'cordonNode']);
    expect(started[0]!.signal.aborted, "the first state's effect was aborted when it was left").toBe(true);
    expect(started[1]!.signal.aborted).toBe(false);
    started[0]!.finish(ok('stale'));
    await flush();
    expect(actor.getSnapshot().context.heard, 'the second state must not hear the first effect').toEqual([]);
    started[1]!.finish(ok('cordoned'));
    await flush();
    expect(actor.getSnapshot().context.heard).toEqual([{ effect: 'cordonNode', value: 'cordoned' }]);
  });

  it('persists the request in flight, and a restored machine runs it again', async () => {
    const before = scripted();
    const actor = createActor(parentMachine(before.run)).start();
    await flush();
    actor.send({ type: 'NEXT' });
    const persisted = actor.getPersistedSnapshot();
    actor.stop();
    expect(before.started[1]!.signal.aborted, 'stopping the machine aborts its effect').toBe(true);

    const after = scripted();
    const restored = createActor(parentMachine(after.run), { snapshot: persisted }).start();
    await flush();
    expect(after.started.map((s) => [s.effect, s.input])).toEqual([['cordonNode', { node: 'w-1' }]]);
    after.started[0]!.finish(ok('cordoned'));
    await flush();
    expect(restored.getSnapshot().context.heard).toEqual([{ effect: 'cordonNode', value: 'cordoned' }]);
  });

  it('a state left before its effect finished leaves nothing to run again after a restore', async () => {
    const before = scripted();
    const actor = createActor(parentMachine(before.run)).start();
    await flush();
    actor.send({ type: 'LEAVE' });
    const persisted = actor.getPersistedSnapshot();
    const after = scripted();
    createActor(parentMachine(after.run), { snapshot: persisted }).start();
    await flush();
    expect(after.started).toEqual([]);
  });

  it('an effect that rejects (a bug: effects report failures as results) fails the machine, as a rejected invoke did', async () => {
    const { started, run } = scripted();
    const actor = createActor(parentMachine(run));
    const errors: unknown[] = [];
    actor.subscribe({ error: (e) => errors.push(e) });
    actor.start();
    await flush();
    started[0]!.fail(new Error('boom'));
    await flush();
    expect(actor.getSnapshot().status).toBe('error');
    expect(errors).toEqual([new Error('boom')]);
  });
});
