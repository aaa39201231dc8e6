/**
 * What a running run does, as ordered events: derived once from the machines' inspection stream and consumed by the
 * durable journal (audit rows, run and node rows) and by front ends (live views, the bot).
 *
 * Order is causal, which XState's own reporting is not: it starts a child before it reports the parent transition
 * that started it, and a parent reacts to a child's end before the child's last snapshot is reported. So a node's
 * first step is held until the fleet transition that started it has been reported, and a node's end is taken from
 * the done event its parent receives.
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { FleetContext, FleetOutput } from '../engine/fleet.machine.ts';
import type { NodeContext, NodeOutcome } from '../engine/node.machine.ts';

export type RunEvent =
  /** `restored`: the state a resumed run was saved in, reported again when it is picked up. */
  /** `detail`: why the run waits in `rolling.blocked` (health gate, blockers), or why it halts; null otherwise. */
  | { type: 'run.state'; runId: string; state: string; from: string | null; at: number; restored: boolean; detail: string | null }
  | { type: 'node.step'; runId: string; node: string; position: number; step: string; startedAt: number; at: number; restored: boolean }
  | { type: 'node.finished'; runId: string; position: number; outcome: NodeOutcome; at: number }
  | { type: 'run.finished'; runId: string; output: FleetOutput; at: number };

type StateValue = string | { [key: string]: StateValue };

/** `rolling.active`, `drain.running`, `done`. */
export function stateString(value: StateValue): string {
  if (typeof value === 'string') return value;
  const [key, child] = Object.entries(value)[0] ?? ['?', '?'];
  return `${key}.${stateString(child)}`;
}

export function topState(value: StateValue): string {
  return typeof value === 'string' ? value : (Object.keys(value)[0] ?? '?');
}

const NODE_DONE = 'xstate.done.actor.node-';

export function positionOf(actorId: string): number {
  return Number(actorId.slice('node-'.length));
}

interface MachineSnapshot {
  status: 'active' | 'done' | 'error' | 'stopped';
  output?: unknown;
  value: StateValue;
  context: unknown;
}

/** Who hears about a run: events, and (for persistence) every transition of the fleet and of each node machine. */
export interface RunListener {
  event?(event: RunEvent): void;
  fleetChanged?(context: FleetContext): void;
  nodeChanged?(ref: AnyActorRef): void;
}

export interface RestoredState {
  fleetState: string;
  /** Node machine id (`node-<position>`) to the step it was saved in. */
  nodeSteps: Map<string, string>;
}

export class RunObserver {
  readonly #runId: string;
  readonly #now: () => number;
  readonly #listeners: readonly RunListener[];
  #root: AnyActorRef | null = null;
  #fleetState: string | null = null;
  /** Node machine id to the step last reported. */
  readonly #steps = new Map<string, string>();
  /** Node machines saved in a snapshot: their first report after a resume is flagged `restored`. */
  readonly #restoredNodes: Map<string, string>;
  #restoredFleet: string | null;
  #held: RunEvent[] = [];

  constructor(runId: string, now: () => number, listeners: readonly RunListener[], restored?: RestoredState) {
    this.#runId = runId;
    this.#now = now;
    this.#listeners = listeners;
    this.#restoredFleet = restored?.fleetState ?? null;
    this.#restoredNodes = new Map(restored?.nodeSteps);
  }

  attach(root: AnyActorRef): void {
    this.#root = root;
  }

  readonly inspect = (event: InspectionEvent): void => {
    if (event.type === '@xstate.event') {
      const received = event.event as { type: string; output?: NodeOutcome };
      if (event.actorRef === this.#root && received.type.startsWith(NODE_DONE) && received.output) {
        const id = received.type.slice('xstate.done.actor.'.length);
        this.#steps.delete(id);
        this.#emit({ type: 'node.finished', runId: this.#runId, position: positionOf(id), outcome: received.output, at: received.output.finishedAt });
      }
      return;
    }
    if (event.type !== '@xstate.snapshot') return;
    const ref = event.actorRef as AnyActorRef;
    const snapshot = event.snapshot as unknown as MachineSnapshot;
    // Stopping an actor (detach, shutdown) is not a transition.
    if (snapshot.status === 'stopped') return;
    if (ref === this.#root) this.#onFleet(snapshot);
    else if (ref.src === 'nodeRun' && snapshot.status === 'active') this.#onNode(ref, snapshot);
  };

  #onFleet(snapshot: MachineSnapshot): void {
    const state = stateString(snapshot.value);
    const at = this.#now();
    if (state !== this.#fleetState) {
      const context = snapshot.context as FleetContext;
      const detail = state === 'rolling.blocked' ? (context.blocked?.reason ?? null) : state === 'rolling.halting' ? context.haltReason : null;
      this.#emit({ type: 'run.state', runId: this.#runId, state, from: this.#fleetState, at, restored: state === this.#restoredFleet, detail });
      this.#fleetState = state;
      this.#restoredFleet = null;
    }
    for (const held of this.#held) this.#emit(held);
    this.#held = [];
    if (snapshot.status === 'done') {
      this.#emit({ type: 'run.finished', runId: this.#runId, output: snapshot.output as FleetOutput, at });
    } else {
      for (const listener of this.#listeners) listener.fleetChanged?.(snapshot.context as FleetContext);
    }
  }

  #onNode(ref: AnyActorRef, snapshot: MachineSnapshot): void {
    const context = snapshot.context as NodeContext;
    const step = topState(snapshot.value);
    const previous = this.#steps.get(ref.id);
    if (step !== previous) {
      this.#steps.set(ref.id, step);
      const restored = previous === undefined && this.#restoredNodes.get(ref.id) === step;
      this.#restoredNodes.delete(ref.id);
      const event: RunEvent = {
        type: 'node.step',
        runId: this.#runId,
        node: context.input.node,
        position: positionOf(ref.id),
        step,
        startedAt: context.input.startedAt,
        at: context.stepStartedAt,
        restored,
      };
      if (previous === undefined) this.#held.push(event);
      else this.#emit(event);
    }
    for (const listener of this.#listeners) listener.nodeChanged?.(ref);
  }

  #emit(event: RunEvent): void {
    for (const listener of this.#listeners) listener.event?.(event);
  }
}
