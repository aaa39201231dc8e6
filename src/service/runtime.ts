/**
 * Wires the pure machines to the world: each named effect actor becomes a call into EngineEffects whose result (or
 * error) is turned into a StepResult stamped with the clock, and the timers run on the injected clock.
 */
import { fromPromise } from 'xstate';
import type { Clock } from '../engine/clock.ts';
import { toStepError, type EngineEffects, type StepResult } from '../engine/effects.ts';
import { fleetMachine } from '../engine/fleet.machine.ts';
import { nodeMachine } from '../engine/node.machine.ts';
import { createDeadlineActor, createTimerActor, createWindowWatcher } from '../engine/timers.ts';
import { createEffectRunner, NODE_EFFECTS, type NodeEffect } from '../engine/effect-runner.ts';

export interface RuntimeOptions {
  effects: EngineEffects;
  clock: Clock;
  /**
   * Runs after the transition that started an effect has been observed and before the effect touches the world:
   * the durable journal persists there, so a crash never leaves an effect without its recorded intent.
   */
  beforeEffect?: () => void;
}

type EffectName = keyof EngineEffects;

/**
 * Effects that only look (or wait) change nothing that a crash could leave half-recorded: repeating them after a
 * restore is harmless, so they do not force a commit. Every other effect changes the cluster.
 */
const READ_ONLY: ReadonlySet<EffectName> = new Set<EffectName>(['inspectNode', 'listNodes', 'awaitRejoin', 'soakNodes', 'observeCluster']);

/**
 * One effect as the engine hears it: its result or its error, stamped with the clock. It rejects only when the journal
 * cannot record the transition before a cluster-changing effect: then the effect does not run, and the run stops (no
 * change the store has not heard of).
 */
function effectCall<K extends EffectName>(name: K, options: RuntimeOptions) {
  type Input = Parameters<EngineEffects[K]>[0];
  type Output = Awaited<ReturnType<EngineEffects[K]>>;
  const call = options.effects[name] as (input: Input, signal: AbortSignal) => Promise<Output>;
  const mutates = !READ_ONLY.has(name);
  return async (input: Input, signal: AbortSignal): Promise<StepResult<Output>> => {
    // XState starts an actor (and delivers a RUN) before observers see the transition; yielding once lets the
    // journal see it.
    await null;
    if (mutates) options.beforeEffect?.();
    try {
      const value = await call(input, signal);
      return { ok: true, value, at: options.clock.now() };
    } catch (err) {
      return { ok: false, error: toStepError(err), at: options.clock.now() };
    }
  };
}

/** The fleet's effects, each an invoked promise actor. */
function effectActor<K extends EffectName>(name: K, options: RuntimeOptions) {
  const run = effectCall(name, options);
  return fromPromise<StepResult<Awaited<ReturnType<EngineEffects[K]>>>, Parameters<EngineEffects[K]>[0]>(({ input, signal }) => run(input, signal));
}

export function provideNodeMachine(options: RuntimeOptions) {
  const calls = Object.fromEntries(NODE_EFFECTS.map((name) => [name, effectCall(name, options)])) as Record<
    NodeEffect,
    (input: unknown, signal: AbortSignal) => Promise<StepResult<unknown>>
  >;
  return nodeMachine.provide({
    actors: {
      effects: createEffectRunner((effect, input, signal) => calls[effect](input, signal)),
      timer: createTimerActor(options.clock),
      deadline: createDeadlineActor(options.clock),
    },
  });
}

export function provideFleetMachine(options: RuntimeOptions) {
  return fleetMachine.provide({
    actors: {
      nodeRun: provideNodeMachine(options),
      listNodes: effectActor('listNodes', options),
      prefetch: effectActor('prefetch', options),
      observeCluster: effectActor('observeCluster', options),
      soakNodes: effectActor('soakNodes', options),
      timer: createTimerActor(options.clock),
      windowWatcher: createWindowWatcher(options.clock),
    },
  });
}

export type ProvidedFleetMachine = ReturnType<typeof provideFleetMachine>;
