/**
 * What a running run does, as ordered events: derived once from the machines and consumed by the durable journal
 * (audit rows, run and node rows) and by front ends (live views, the bot).
 *
 * Nothing here reads a state's name or an actor's id to decide anything: what a run is doing comes from the fleet
 * machine's tags, the nodes' steps and results from the events the machines emit (`node.started`, `node.finished` on
 * the fleet, `node.step` on each node machine). The state's name is carried along for people (audit, live views) only.
 *
 * Order is causal, which XState's own reporting is not: it starts a child before it reports the parent transition
 * that started it. So a node's first step is held until the fleet transition that started it has been reported.
 */
import type { Actor, AnyActorRef } from 'xstate';
import { childId, type FleetContext, type FleetOutput, type FleetTag } from '../engine/fleet.machine.ts';
import { nodePhaseOf, type NodeContext, type NodeEmitted, type NodeOutcome, type NodePhase } from '../engine/node.machine.ts';
import type { ProvidedFleetMachine } from './runtime.ts';

export type RunEvent =
  /** `restored`: the state a resumed run was saved in, reported again when it is picked up. */
  /** `detail`: why the run waits while `blocked` (health gate, blockers), or why it is `halting`; null otherwise. */
  /** `state`: the state's name, for people; `tags` (FleetTag) say what it means. */
  | { type: 'run.state'; runId: string; state: string; tags: readonly FleetTag[]; from: string | null; at: number; restored: boolean; detail: string | null }
  | { type: 'node.step'; runId: string; node: string; position: number; step: string; startedAt: number; at: number; restored: boolean }
  | { type: 'node.finished'; runId: string; position: number; outcome: NodeOutcome; at: number }
  | { type: 'run.finished'; runId: string; output: FleetOutput; at: number };

type StateValue = string | { [key: string]: StateValue };

/** A state's name for people: `rolling.active`, `selecting.listing`, `done`. */
export function stateString(value: StateValue): string {
  if (typeof value === 'string') return value;
  const [key, child] = Object.entries(value)[0] ?? ['?', '?'];
  return `${key}.${stateString(child)}`;
}

type FleetActor = Actor<ProvidedFleetMachine>;

interface FleetSnapshot {
  status: 'active' | 'done' | 'error' | 'stopped';
  output?: unknown;
  value: StateValue;
  context: FleetContext;
  tags: ReadonlySet<string>;
  hasTag(tag: FleetTag): boolean;
}

interface NodeRef {
  on(type: 'node.step', handler: (event: NodeEmitted) => void): unknown;
  subscribe(observer: { next(snapshot: { status: string }): void; error(err: unknown): void }): unknown;
  getSnapshot(): { context: NodeContext; hasTag(tag: NodePhase): boolean };
}

/** Who hears about a run: events, and (for persistence) every transition of the fleet and of each node machine. */
export interface RunListener {
  event?(event: RunEvent): void;
  fleetChanged?(context: FleetContext): void;
  nodeChanged?(ref: AnyActorRef): void;
}

export class RunObserver {
  readonly #runId: string;
  readonly #now: () => number;
  readonly #listeners: readonly RunListener[];
  #fleetState: string | null = null;
  /** The state a resumed run was saved in: its first report is flagged `restored`. */
  #restoredFleet: string | null = null;
  #held: RunEvent[] = [];
  #stopped = false;

  constructor(runId: string, now: () => number, listeners: readonly RunListener[]) {
    this.#runId = runId;
    this.#now = now;
    this.#listeners = listeners;
  }

  /**
   * Listens to the fleet actor (created, not yet started). `resumed`: it was restored from a snapshot, whose state and
   * nodes in flight are reported again, flagged `restored`, when it starts.
   */
  attach(root: FleetActor, options: { resumed: boolean }): void {
    // A subscription, not the actor's inspection: an inspector hears every event, snapshot, microstep and action of
    // every actor in the system (the node machines and each of their effects and timers), a 10,000-node simulation's
    // millions, to keep the fleet's few. Observers are told of a snapshot where the inspector is, after the effects it
    // started were started, so the first step of a node that transition started is still held for it.
    root.subscribe({
      next: (snapshot) => {
        if (!this.#stopped) this.#onFleet(snapshot as unknown as FleetSnapshot);
      },
      // An error ends the run as it stands; the orchestrator's own subscriber reports it.
      error: () => {
        if (!this.#stopped) this.#onFleet(root.getSnapshot() as unknown as FleetSnapshot);
      },
    });
    root.on('node.started', (event) => {
      const child = root.getSnapshot().children[event.actorId];
      if (child) this.#watchNode(child as unknown as NodeRef, event.position, false);
    });
    root.on('node.finished', (event) => {
      this.#emit({ type: 'node.finished', runId: this.#runId, position: event.position, outcome: event.outcome, at: event.outcome.finishedAt });
    });
    if (!options.resumed) return;
    const snapshot = root.getSnapshot();
    this.#restoredFleet = stateString(snapshot.value as StateValue);
    for (const position of snapshot.context.inFlight) {
      const child = snapshot.children[childId(position)];
      if (child) this.#watchNode(child as unknown as NodeRef, position, true);
    }
  }

  /** Reports nothing more (the run was detached or refused). */
  stop(): void {
    this.#stopped = true;
  }

  #onFleet(snapshot: FleetSnapshot): void {
    const state = stateString(snapshot.value);
    const at = this.#now();
    if (state !== this.#fleetState) {
      const context = snapshot.context;
      const detail = snapshot.hasTag('blocked') ? (context.blocked?.reason ?? null) : snapshot.hasTag('halting') ? context.haltReason : null;
      const tags = [...snapshot.tags] as FleetTag[];
      this.#emit({ type: 'run.state', runId: this.#runId, state, tags, from: this.#fleetState, at, restored: state === this.#restoredFleet, detail });
      this.#fleetState = state;
      this.#restoredFleet = null;
    }
    for (const held of this.#held) this.#emit(held);
    this.#held = [];
    if (snapshot.status === 'done') {
      this.#emit({ type: 'run.finished', runId: this.#runId, output: snapshot.output as FleetOutput, at });
    } else {
      for (const listener of this.#listeners) listener.fleetChanged?.(snapshot.context);
    }
  }

  /**
   * A node machine's steps (what it emits) and transitions (for persistence). A restored one is reported in the phase
   * it was saved in; a new one is listened to before it starts, and its first step is held for the fleet's report.
   */
  #watchNode(ref: NodeRef, position: number, restored: boolean): void {
    let first = true;
    if (restored) {
      const snapshot = ref.getSnapshot();
      const step = nodePhaseOf(snapshot);
      if (step !== null) {
        const { input, stepStartedAt } = snapshot.context;
        this.#held.push({ type: 'node.step', runId: this.#runId, node: input.node, position, step, startedAt: input.startedAt, at: stepStartedAt, restored: true });
        first = false;
      }
    }
    ref.on('node.step', (emitted) => {
      if (this.#stopped) return;
      const event: RunEvent = { type: 'node.step', runId: this.#runId, node: emitted.node, position, step: emitted.step, startedAt: emitted.startedAt, at: emitted.at, restored: false };
      if (first) this.#held.push(event);
      else this.#emit(event);
      first = false;
    });
    // Only the journal persists node transitions: without it (the simulator's runs) a subscription per node would be
    // called on every one of their snapshots for nothing. A node with no subscriber does not rethrow its error either
    // (an actor with a parent leaves that to the parent).
    const persisting = this.#listeners.filter((listener) => listener.nodeChanged !== undefined);
    if (persisting.length === 0) return;
    ref.subscribe({
      next: (snapshot) => {
        if (this.#stopped || snapshot.status !== 'active') return;
        for (const listener of persisting) listener.nodeChanged?.(ref as unknown as AnyActorRef);
      },
      // The fleet hears of a node machine's error as its own event; a subscriber without this would rethrow it.
      error: () => undefined,
    });
  }

  #emit(event: RunEvent): void {
    if (this.#stopped) return;
    for (const listener of this.#listeners) listener.event?.(event);
  }
}
