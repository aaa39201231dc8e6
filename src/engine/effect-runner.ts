/**
 * A node machine's effects, run by one actor for the node's whole life. Each effect state sends RUN on entry and
 * ABORT on exit, and hears `effect.done` when the effect finishes, which is what an invoked promise actor gave it, at
 * the cost of an event instead of a spawn, a stop and a snapshot copy per step (issue 13: a node took about eleven
 * spawns, XState's most expensive operation, measured). The request in flight is part of the runner's persisted
 * snapshot, so a restored node runs it again, as a restored promise actor did.
 */
import type { ActorLogic, AnyActorRef, Snapshot } from 'xstate';
import type { StepResult } from './effects.ts';

/** The effects a node machine runs. */
export const NODE_EFFECTS = [
  'inspectNode',
  'scanNode',
  'cordonNode',
  'drainNode',
  'runPatchJob',
  'rebootNode',
  'awaitRejoin',
  'uncordonNode',
  'soakNodes',
  'markNode',
] as const;
export type NodeEffect = (typeof NODE_EFFECTS)[number];

export type RunEffectEvent = { type: 'RUN'; effect: NodeEffect; input: unknown };
export type AbortEffectEvent = { type: 'ABORT' };
/** What the runner tells its parent when the effect it runs finishes (never for one aborted or replaced). */
export type EffectDoneEvent = { type: 'effect.done'; effect: NodeEffect; output: StepResult<unknown> };

type RunnerEvent = RunEffectEvent | AbortEffectEvent | { type: 'SETTLED' } | { type: 'FAILED'; error: unknown };

export type EffectRequest = { effect: NodeEffect; input: unknown };
export type EffectRunnerSnapshot = Snapshot<undefined> & { current: EffectRequest | null };
export type EffectRunnerLogic = ActorLogic<EffectRunnerSnapshot, RunEffectEvent | AbortEffectEvent, undefined>;

/**
 * Runs one effect. It resolves with the step's result, failures included; a rejection is a bug in the caller, and
 * errors the runner (and so the node machine), as a rejected invoked promise did.
 */
export type RunEffect = (effect: NodeEffect, input: unknown, signal: AbortSignal) => Promise<StepResult<unknown>>;

/** The id of a node machine's effect runner. */
export const EFFECTS_ACTOR_ID = 'effects';

export function createEffectRunner(run: RunEffect): EffectRunnerLogic {
  const inFlight = new WeakMap<AnyActorRef, AbortController>();
  const abort = (self: AnyActorRef) => {
    const controller = inFlight.get(self);
    if (controller === undefined) return;
    inFlight.delete(self);
    controller.abort();
  };
  const launch = (request: EffectRequest, self: AnyActorRef) => {
    abort(self);
    const controller = new AbortController();
    inFlight.set(self, controller);
    const current = () => inFlight.get(self) === controller;
    run(request.effect, request.input, controller.signal).then(
      (output) => {
        if (!current()) return;
        inFlight.delete(self);
        self.send({ type: 'SETTLED' });
        self._parent?.send({ type: 'effect.done', effect: request.effect, output } satisfies EffectDoneEvent);
      },
      (error: unknown) => {
        if (!current()) return;
        inFlight.delete(self);
        self.send({ type: 'FAILED', error });
      },
    );
  };
  const logic: ActorLogic<EffectRunnerSnapshot, RunnerEvent, undefined> = {
    getInitialSnapshot: () => ({ status: 'active', output: undefined, error: undefined, current: null }),
    start: (snapshot, { self }) => {
      if (snapshot.status === 'active' && snapshot.current !== null) launch(snapshot.current, self);
    },
    transition: (snapshot, event, { self }) => {
      if (snapshot.status !== 'active') return snapshot;
      switch ((event as { type: string }).type) {
        case 'RUN': {
          const { effect, input } = event as RunEffectEvent;
          const current = { effect, input };
          launch(current, self);
          return { ...snapshot, current };
        }
        case 'ABORT':
          abort(self);
          return snapshot.current === null ? snapshot : { ...snapshot, current: null };
        case 'SETTLED':
          return { ...snapshot, current: null };
        case 'FAILED':
          return { ...snapshot, status: 'error', error: (event as { error: unknown }).error, current: null };
        case 'xstate.stop':
          abort(self);
          return { ...snapshot, status: 'stopped', current: null };
        default:
          return snapshot;
      }
    },
    getPersistedSnapshot: (snapshot) => snapshot,
    restoreSnapshot: (persisted) => persisted as unknown as EffectRunnerSnapshot,
  };
  return logic as unknown as EffectRunnerLogic;
}
