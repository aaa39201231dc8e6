/**
 * Progress as events, for live views and the bot: derived from the machines' snapshots, in causal order.
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { FleetOutput } from '../engine/fleet.machine.ts';
import type { NodeOutcome } from '../engine/node.machine.ts';
import { isNodeDoneEvent, stateString, topState } from './journal.ts';

export type RunEvent =
  | { type: 'run.state'; runId: string; state: string; at: number }
  | { type: 'node.step'; runId: string; node: string; step: string; at: number }
  | { type: 'node.finished'; runId: string; outcome: NodeOutcome; at: number }
  | { type: 'run.finished'; runId: string; output: FleetOutput; at: number };

/** Turns machine snapshots into progress events for live views and the bot. */
export class ProgressReporter {
  readonly #runId: string;
  readonly #onEvent: ((event: RunEvent) => void) | undefined;
  #root: AnyActorRef | null = null;
  #fleetState = '';
  readonly #steps = new Map<string, string>();
  /** First steps of new nodes, held until the fleet transition that started them has been reported (see Journal). */
  #started: RunEvent[] = [];

  readonly #now: () => number;

  constructor(runId: string, onEvent: ((event: RunEvent) => void) | undefined, now: () => number) {
    this.#runId = runId;
    this.#onEvent = onEvent;
    this.#now = now;
  }

  attach(root: AnyActorRef): void {
    this.#root = root;
  }

  inspect(event: InspectionEvent): void {
    if (!this.#onEvent) return;
    if (event.type === '@xstate.event') {
      if (event.actorRef === this.#root && isNodeDoneEvent(event.event)) {
        const outcome = event.event.output;
        this.#steps.delete(outcome.node);
        this.#onEvent({ type: 'node.finished', runId: this.#runId, outcome, at: outcome.finishedAt });
      }
      return;
    }
    if (event.type !== '@xstate.snapshot') return;
    const ref = event.actorRef as AnyActorRef;
    const snapshot = event.snapshot as unknown as { status: string; value: never; context: unknown; output?: unknown };
    if (snapshot.status === 'stopped') return;
    if (ref === this.#root) {
      const at = this.#now();
      const state = stateString(snapshot.value);
      if (state !== this.#fleetState) {
        this.#fleetState = state;
        this.#onEvent({ type: 'run.state', runId: this.#runId, state, at });
      }
      for (const started of this.#started) this.#onEvent(started);
      this.#started = [];
      if (snapshot.status === 'done') this.#onEvent({ type: 'run.finished', runId: this.#runId, output: snapshot.output as FleetOutput, at });
      return;
    }
    if (ref.src !== 'nodeRun' || snapshot.status !== 'active') return;
    const context = snapshot.context as { node: string; stepStartedAt: number };
    const step = topState(snapshot.value);
    const previous = this.#steps.get(context.node);
    if (previous !== step) {
      this.#steps.set(context.node, step);
      const event: RunEvent = { type: 'node.step', runId: this.#runId, node: context.node, step, at: context.stepStartedAt };
      if (previous === undefined) this.#started.push(event);
      else this.#onEvent(event);
    }
  }
}
