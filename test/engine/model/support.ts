/**
 * Model-based testing of the engine's state machines, in four parts:
 *
 * 1. INVENTORY. `inventory(machine)` walks the machine definition (`machine.root`) and lists every state node and every
 *    transition branch as a key `source --event#branch--> target`. Invoke `onDone` branches appear as transitions on
 *    `xstate.done.actor.<invoke id>` (or `effect.done` for a node's effect runner); eventless (`always`) branches use the event name `always`. Nothing is hand-written,
 *    so a branch added to a machine shows up here, uncovered, until the model reaches it.
 *
 * 2. MODEL. A test file describes a machine with a `ModelSpec`: the inputs, an `events(snapshot)` generator returning the
 *    concrete events that can happen in that snapshot (effect outputs, timer events, operator commands), and an
 *    `abstract(snapshot)` that drops volatile context (times) so the state space is finite. `planPaths` explores it with
 *    xstate/graph (`getAdjacencyMap`, `getShortestPaths`) and picks the paths to execute: the shortest path to every
 *    abstract state, plus, for every transition branch or (state, event) pair those paths miss, the shortest path to its
 *    source followed by that event. Every path is then completed with the shortest route to a final state, so outcome
 *    checks run after every history explored, and paths that are prefixes of other paths are dropped. A model state
 *    from which no final state can be reached is reported (`stuck`). (xstate/graph's `createTestModel` is not used: it
 *    throws "Invocations on test machines are not supported", and both machines invoke their effects.)
 *
 * 3. EXECUTION. `runPath` replays one path against a REAL running actor (`ModelRun`): the machine is provided with
 *    scripted effect actors (promises the test resolves with the output the path chose) and the real clock-backed
 *    `timer` actor from src/engine/timers.ts on a `VirtualClock`. For each step of the path:
 *      - an effect's done event  -> resolve that effect's pending promise with the path's output (an invoked one, or
 *                                   the one a node's effect runner started for the active state's `meta.effect`);
 *      - a timer event           -> advance the virtual clock to the next armed timer, and check that the event the
 *                                   actor received is the one the path expects, at the time the timer was armed for;
 *      - anything else (commands)-> `actor.send(event)`;
 *    then wait until promises settle, and assert: the actor's abstract state equals the path's expected state, the
 *    clock holds exactly the timers the active states' invokes ask for, the effects in flight are exactly those the
 *    active states invoke or run, no invariant was broken in any microstep, and whatever the machine's own `afterStep` checks.
 *
 * 4. COVERAGE. The actor is created with `inspect`; every `@xstate.microstep` reports the transition branches it took
 *    and the states it was in. That is what `Coverage` counts, so coverage means "taken by a running actor", not "planned".
 */
import {
  createActor,
  createEmptyActor,
  fromPromise,
  type Actor,
  type ActorLogic,
  type AnyActorRef,
  type AnyMachineSnapshot,
  type AnyStateMachine,
  type AnyStateNode,
  type AnyTransitionDefinition,
  type EventObject,
  type InspectionEvent,
} from 'xstate';
import { getAdjacencyMap, getShortestPaths, type AdjacencyMap, type TraversalOptions } from 'xstate/graph';
import { describe, expect, it } from 'vitest';
import { VirtualClock, type TimerId } from '../../../src/engine/clock.ts';
import { createEffectRunner, NODE_EFFECTS, type NodeEffect } from '../../../src/engine/effect-runner.ts';
import type { StepResult } from '../../../src/engine/effects.ts';

// ---------------------------------------------------------------------------------------------------------------------
// 1. Inventory
// ---------------------------------------------------------------------------------------------------------------------

export interface TransitionBranch {
  key: string;
  source: string;
  event: string;
  index: number;
}

export interface Inventory {
  /** Ids of every state node below the root (atomic, compound and final). */
  states: string[];
  transitions: TransitionBranch[];
}

const ALWAYS = 'always';

function branchesOf(node: AnyStateNode): Array<[event: string, branches: readonly AnyTransitionDefinition[]]> {
  const out: Array<[string, readonly AnyTransitionDefinition[]]> = [...node.transitions.entries()];
  if (node.always && node.always.length > 0) out.push([ALWAYS, node.always]);
  return out;
}

function keyOf(source: AnyStateNode, event: string, index: number, t: AnyTransitionDefinition): string {
  const targets = t.target && t.target.length > 0 ? t.target.map((n) => n.id).join(',') : '(stays)';
  return `${source.id} --${event}#${index}--> ${targets}`;
}

/** The inventory key of a transition definition taken at run time (works on any `.provide()`d copy of the machine). */
export function transitionKey(t: AnyTransitionDefinition): string {
  const source = t.source;
  const event = t.eventType === '' ? ALWAYS : t.eventType;
  const list = event === ALWAYS ? source.always ?? [] : source.transitions.get(event) ?? [];
  const index = list.indexOf(t);
  if (index < 0) throw new Error(`transition ${source.id} on "${event}" is not in its source's definition`);
  return keyOf(source, event, index, t);
}

export function inventory(machine: AnyStateMachine): Inventory {
  const states: string[] = [];
  const transitions: TransitionBranch[] = [];
  const walk = (node: AnyStateNode) => {
    if (node !== machine.root) states.push(node.id);
    for (const [event, branches] of branchesOf(node)) {
      branches.forEach((t, index) => transitions.push({ key: keyOf(node, event, index, t), source: node.id, event, index }));
    }
    for (const child of Object.values(node.states)) walk(child);
  };
  walk(machine.root);
  return { states, transitions };
}

// ---------------------------------------------------------------------------------------------------------------------
// 4. Coverage (declared early: planning and execution both feed it)
// ---------------------------------------------------------------------------------------------------------------------

export class Coverage {
  readonly states = new Set<string>();
  readonly transitions = new Set<string>();
  paths = 0;

  readonly inventory: Inventory;

  constructor(inventory: Inventory) {
    this.inventory = inventory;
  }

  record(snapshot: AnyMachineSnapshot, taken: readonly AnyTransitionDefinition[]): void {
    for (const node of snapshot._nodes) if (node.id !== snapshot.machine.root.id) this.states.add(node.id);
    for (const t of taken) this.transitions.add(transitionKey(t));
  }

  missingStates(): string[] {
    return this.inventory.states.filter((s) => !this.states.has(s));
  }

  missingTransitions(): string[] {
    return this.inventory.transitions.map((t) => t.key).filter((k) => !this.transitions.has(k));
  }

  summary(name: string): string {
    const s = this.inventory.states.length;
    const t = this.inventory.transitions.length;
    return (
      `${name}: states covered ${s - this.missingStates().length}/${s}, ` +
      `transitions covered ${t - this.missingTransitions().length}/${t}, paths executed ${this.paths}`
    );
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// 2. Model and path planning
// ---------------------------------------------------------------------------------------------------------------------

/** An event of the model. `label` names the choice the path made (which output an effect returned, who approved). */
export type ModelEvent = EventObject & { label?: string; at?: number };

export interface ModelSpec<TEvent extends ModelEvent> {
  /** Shown in test names. */
  name: string;
  /** The machine with its actors provided for one run (scripted effects, clock-backed timer). */
  build(world: World): AnyStateMachine;
  input: unknown;
  /** Virtual time at which the run starts. */
  startAt: number;
  /** The concrete events that can happen in this snapshot (none once the machine is done). */
  events(snapshot: AnyMachineSnapshot): TEvent[];
  /** The snapshot without volatile context: equal abstractions are one model state. Compared after every step. */
  abstract(snapshot: AnyMachineSnapshot): unknown;
  /** Events produced by the clock-backed timer actor (delivered by advancing the clock). */
  timerEvents: ReadonlySet<string>;
  /** Machine-specific delivery (spawned children, watchers). Return true when handled. */
  deliver?(run: ModelRun<TEvent>, event: TEvent): boolean;
  /** Invariants on every microstep the real actor takes; return a description of each violation. */
  invariants?(run: ModelRun<TEvent>, snapshot: AnyMachineSnapshot, previous: AnyMachineSnapshot | undefined): string[];
  /** Extra assertions once the actor is at rest after a step. */
  afterStep?(run: ModelRun<TEvent>, expected: AnyMachineSnapshot, event: TEvent | null): void;
}

export interface ModelStep<TEvent> {
  event: TEvent;
  /** The model's state after the event. */
  state: AnyMachineSnapshot;
}

export interface ModelPath<TEvent> {
  title: string;
  initial: AnyMachineSnapshot;
  steps: Array<ModelStep<TEvent>>;
}

export interface Plan<TEvent> {
  paths: Array<ModelPath<TEvent>>;
  modelStates: number;
  modelEdges: number;
  /** Branches no edge of the model takes: either the model misses an event, or the branch is dead. */
  unreachable: string[];
  /** Model states from which no final state can be reached (a run that can never finish). */
  stuck: string[];
}

export const labelOf = (event: ModelEvent): string => event.label ?? event.type;

/** The branches and states a pure transition takes, computed with an inert scope that records `@xstate.microstep`. */
function recordingScope() {
  const self = createEmptyActor();
  let taken: AnyTransitionDefinition[] = [];
  self.system.inspect((ev: InspectionEvent) => {
    if (ev.type === '@xstate.microstep' && ev.actorRef === self) taken.push(...ev._transitions);
  });
  const scope = {
    self,
    system: self.system,
    id: '',
    sessionId: '',
    logger: () => {},
    defer: () => {},
    stopChild: () => {},
    emit: () => {},
    actionExecutor: () => {},
  };
  return {
    takenBy(machine: AnyStateMachine, snapshot: AnyMachineSnapshot, event: EventObject): string[] {
      taken = [];
      machine.transition(snapshot, event, scope as never);
      return taken.map(transitionKey);
    },
  };
}

/**
 * Explores the model and chooses the paths to execute (see the file comment). Shortest paths come from
 * `getShortestPaths`; edges (to find what they miss) from `getAdjacencyMap`, both with the same options.
 */
export function planPaths<TEvent extends ModelEvent>(spec: ModelSpec<TEvent>, world: World): Plan<TEvent> {
  const machine = spec.build(world);
  const serializeState = (s: AnyMachineSnapshot) => JSON.stringify(spec.abstract(s));
  // xstate/graph sees the machine as plain actor logic over our event type.
  const logic = machine as unknown as ActorLogic<AnyMachineSnapshot, TEvent, unknown>;
  const options: TraversalOptions<AnyMachineSnapshot, TEvent, unknown> = {
    input: spec.input,
    events: (s) => spec.events(s),
    serializeState,
  };
  const adjacency: AdjacencyMap<AnyMachineSnapshot, TEvent> = getAdjacencyMap(logic, options);
  const shortest = getShortestPaths(logic, options);
  const shortestTo = new Map<string, ModelPath<TEvent>>();
  for (const p of shortest) {
    const [init, ...rest] = p.steps;
    if (!init || init.event.type !== 'xstate.init') throw new Error('xstate/graph paths start with xstate.init');
    shortestTo.set(serializeState(p.state), { title: '', initial: init.state, steps: rest });
  }

  // Every edge: what it takes (branches) and which (state value, event) pair it exercises.
  const rec = recordingScope();
  interface Edge {
    from: string;
    event: TEvent;
    state: AnyMachineSnapshot;
    goals: string[];
  }
  const edges: Edge[] = [];
  const edgeGoals = new Map<string, string[]>();
  const edgeKey = (from: string, e: ModelEvent) => `${from}|${JSON.stringify(e)}`;
  const reachableBranches = new Set<string>();
  let modelEdges = 0;
  for (const [from, { state, transitions }] of Object.entries(adjacency)) {
    // (the map is keyed by a branded string, which Object.values does not see through)
    for (const { event, state: next } of Object.values(transitions) as Array<{ event: TEvent; state: AnyMachineSnapshot }>) {
      modelEdges++;
      const branches = rec.takenBy(machine, state, event);
      for (const b of branches) reachableBranches.add(b);
      const goals = [...branches, `${JSON.stringify(state.value)} x ${labelOf(event)}`];
      edgeGoals.set(edgeKey(from, event), goals);
      edges.push({ from, event, state: next, goals });
    }
  }

  // For every state, the first step of a shortest route to a final state (reverse BFS from the final states), so that
  // every executed path ends in a final state: outcome checks then run after every history the paths explore, not
  // only after the shortest one reaching each abstract final state.
  const finals = Object.entries(adjacency)
    .filter(([, v]) => v.state.status !== 'active')
    .map(([k]) => k);
  const reverse = new Map<string, Edge[]>();
  for (const e of edges) {
    const to = serializeState(e.state);
    reverse.set(to, [...(reverse.get(to) ?? []), e]);
  }
  const towardsFinal = new Map<string, Edge>();
  const queue = [...finals];
  const seen = new Set(finals);
  for (const key of queue) {
    for (const e of reverse.get(key) ?? []) {
      if (seen.has(e.from)) continue;
      seen.add(e.from);
      towardsFinal.set(e.from, e);
      queue.push(e.from);
    }
  }
  const stuck = Object.keys(adjacency).filter((k) => !seen.has(k));
  const complete = (path: ModelPath<TEvent>): ModelPath<TEvent> => {
    const steps = [...path.steps];
    for (let e = towardsFinal.get(serializeState(steps.at(-1)?.state ?? path.initial)); e; e = towardsFinal.get(serializeState(e.state))) {
      steps.push({ event: e.event, state: e.state });
    }
    return { ...path, steps };
  };

  const covered = new Set<string>();
  const cover = (path: ModelPath<TEvent>) => {
    let from = serializeState(path.initial);
    for (const step of path.steps) {
      for (const g of edgeGoals.get(edgeKey(from, step.event)) ?? []) covered.add(g);
      from = serializeState(step.state);
    }
  };
  const chosen: Array<ModelPath<TEvent>> = [];
  for (const head of shortestTo.values()) {
    const path = complete(head);
    chosen.push(path);
    cover(path);
  }
  for (const edge of edges) {
    if (edge.goals.every((g) => covered.has(g))) continue;
    const head = shortestTo.get(edge.from);
    if (!head) throw new Error(`no shortest path to ${edge.from}`);
    const path = complete({ ...head, steps: [...head.steps, { event: edge.event, state: edge.state }] });
    chosen.push(path);
    cover(path);
  }

  const unreachable = inventory(machine)
    .transitions.map((t) => t.key)
    .filter((k) => !reachableBranches.has(k));
  const paths = dropPrefixes(chosen).map((p, i) => ({ ...p, title: `#${i + 1} ${describePath(p)}` }));
  return { paths, modelStates: Object.keys(adjacency).length, modelEdges, unreachable, stuck };
}

function dropPrefixes<TEvent extends ModelEvent>(paths: Array<ModelPath<TEvent>>): Array<ModelPath<TEvent>> {
  const seqs = paths.map((p) => p.steps.map((s) => JSON.stringify(s.event)));
  const sorted = paths.map((p, i) => ({ p, seq: seqs[i]! })).sort((a, b) => b.seq.length - a.seq.length);
  const kept: typeof sorted = [];
  for (const cand of sorted) {
    const isPrefix = kept.some((k) => cand.seq.every((e, i) => k.seq[i] === e));
    if (!isPrefix) kept.push(cand);
  }
  // Shortest first reads better in the report.
  return kept.reverse().map((k) => k.p);
}

export function stateName(snapshot: AnyMachineSnapshot): string {
  const v = snapshot.value;
  if (typeof v === 'string') return v;
  const flat = (value: unknown): string =>
    typeof value === 'string'
      ? value
      : Object.entries(value as Record<string, unknown>)
          .map(([k, sub]) => `${k}.${flat(sub)}`)
          .join('|');
  return flat(v);
}

export function describePath<TEvent extends ModelEvent>(path: ModelPath<TEvent>): string {
  const last = path.steps.at(-1)?.state ?? path.initial;
  return `${path.steps.map((s) => labelOf(s.event)).join(' → ') || '(initial)'} ⇒ ${stateName(last)}`;
}

// ---------------------------------------------------------------------------------------------------------------------
// 3. Execution: the world of one run (clock + scripted effects) and the running actor
// ---------------------------------------------------------------------------------------------------------------------

/** A VirtualClock that can tell which timers are armed and when they are due. */
export class InspectableClock extends VirtualClock {
  readonly #armed = new Map<TimerId, number>();

  override setTimeout(fn: () => void, delayMs: number): TimerId {
    const dueAt = this.now() + Math.max(0, delayMs);
    const id = super.setTimeout(() => {
      this.#armed.delete(id);
      fn();
    }, delayMs);
    this.#armed.set(id, dueAt);
    return id;
  }

  override clearTimeout(id: TimerId): void {
    this.#armed.delete(id);
    super.clearTimeout(id);
  }

  /** Due times of the armed timers, ascending. */
  armed(): number[] {
    return [...this.#armed.values()].sort((a, b) => a - b);
  }
}

interface PendingEffect {
  src: string;
  input: unknown;
  resolve(output: unknown): void;
}

/**
 * Effect actors whose result the test decides. Each started effect is a pending promise keyed by its actor id (the
 * invoke id, e.g. `0.node.preflight.running`); `resolve(id, output)` completes it, and the machine receives
 * `xstate.done.actor.<id>` exactly as it would from a real effect. Stopped effects (a step timed out) are forgotten.
 */
export class ScriptedEffects {
  readonly calls: Array<{ src: string; id: string; input: unknown }> = [];
  /** Effects completed by the test, in order, with the output they returned. */
  readonly resolved: Array<{ src: string; id: string; input: unknown; output: unknown }> = [];
  readonly #pending = new Map<string, PendingEffect>();

  /** Names of the effects this instance scripts. */
  readonly names = new Set<string>();

  actor<TOutput, TInput>(src: string) {
    this.names.add(src);
    return fromPromise<TOutput, TInput>(
      ({ input, self, signal }) =>
        new Promise<TOutput>((resolve) => {
          this.calls.push({ src, id: self.id, input });
          this.#pending.set(self.id, { src, input, resolve: resolve as (o: unknown) => void });
          signal.addEventListener('abort', () => this.#pending.delete(self.id));
        }),
    );
  }

  /**
   * A node's effect runner (src/engine/effect-runner.ts) whose effects are pending promises like the others, keyed
   * `effects:<effect>` (a node runs one effect at a time); the machine hears `effect.done` when the test resolves one.
   */
  runner() {
    for (const name of NODE_EFFECTS) this.names.add(name);
    return createEffectRunner(
      (effect, input, signal) =>
        new Promise<StepResult<unknown>>((resolve) => {
          const id = runnerEffectId(effect);
          this.calls.push({ src: effect, id, input });
          this.#pending.set(id, { src: effect, input, resolve: resolve as (o: unknown) => void });
          signal.addEventListener('abort', () => this.#pending.delete(id));
        }),
    );
  }

  pending(id: string): PendingEffect | undefined {
    return this.#pending.get(id);
  }

  pendingIds(): string[] {
    return [...this.#pending.keys()];
  }

  resolve(id: string, output: unknown): void {
    const p = this.#pending.get(id);
    if (!p) throw new Error(`no pending effect "${id}" (pending: ${this.pendingIds().join(', ') || 'none'})`);
    this.#pending.delete(id);
    this.resolved.push({ src: p.src, id, input: p.input, output });
    p.resolve(output);
  }
}

export interface World {
  clock: InspectableClock;
  effects: ScriptedEffects;
}

export function newWorld(startAt: number): World {
  return { clock: new InspectableClock(startAt), effects: new ScriptedEffects() };
}

/** Lets every pending promise reaction run (effect resolutions reach the actor through microtasks). */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const DONE_ACTOR = 'xstate.done.actor.';
/** What a node's effect runner sends when an effect finishes (src/engine/effect-runner.ts). */
const EFFECT_DONE = 'effect.done';

/** Invokes of these sources are clock-backed timers (src/engine/timers.ts), not effects. */
export const TIMER_SOURCES: ReadonlySet<string> = new Set(['timer', 'deadline']);

/**
 * The timers the active states' invokes ask for, read from the definition: a `timer` invoke's input says when; a
 * `deadline` invoke (the node's one re-armed deadline) must stand at context.deadline, which every step sets.
 */
export function expectedTimers(snapshot: AnyMachineSnapshot): Array<{ at: number; event: string; state: string }> {
  if (snapshot.status !== 'active') return [];
  const out: Array<{ at: number; event: string; state: string }> = [];
  for (const node of snapshot._nodes) {
    for (const inv of node.invoke) {
      if (!TIMER_SOURCES.has(String(inv.src))) continue;
      const args = { context: snapshot.context, event: undefined, self: undefined } as never;
      const input = (typeof inv.input === 'function' ? inv.input(args) : inv.input) as { at?: number; event: string };
      const at = inv.src === 'deadline' ? (snapshot.context as { deadline: number }).deadline : input.at!;
      out.push({ at, event: input.event, state: node.id });
    }
  }
  return out;
}

/** The pending id of an effect run by a node's effect runner. */
export const runnerEffectId = (effect: string) => `effects:${effect}`;

/** The effect a state runs through the effect runner, as its definition declares it (`meta.effect`). */
export const effectOf = (node: AnyStateNode): NodeEffect | undefined => (node.meta as { effect?: NodeEffect } | undefined)?.effect;

/**
 * Ids of the scripted effects the active states invoke or run (each should be in flight while its state is active).
 */
export function expectedEffects(snapshot: AnyMachineSnapshot, effects: ScriptedEffects): string[] {
  if (snapshot.status !== 'active') return [];
  return snapshot._nodes.flatMap((node) => {
    const run = effectOf(node);
    const invoked = node.invoke.filter((inv) => effects.names.has(String(inv.src))).map((inv) => inv.id);
    return run === undefined ? invoked : [...invoked, runnerEffectId(run)];
  });
}

/** One real actor executing one path. */
export class ModelRun<TEvent extends ModelEvent> {
  readonly spec: ModelSpec<TEvent>;
  readonly world: World;
  readonly actor: Actor<AnyStateMachine>;
  readonly coverage: Coverage;
  /** Events the root actor received, in order. */
  readonly received: EventObject[] = [];
  /** Every microstep snapshot of the root actor, in order (the transient states too). */
  readonly microsteps: AnyMachineSnapshot[] = [];
  readonly violations: string[] = [];

  constructor(spec: ModelSpec<TEvent>, coverage: Coverage) {
    this.spec = spec;
    this.world = newWorld(spec.startAt);
    this.coverage = coverage;
    this.actor = createActor(spec.build(this.world), {
      input: spec.input,
      clock: this.world.clock,
      inspect: (ev) => this.#inspect(ev),
    });
  }

  get snapshot(): AnyMachineSnapshot {
    return this.actor.getSnapshot() as AnyMachineSnapshot;
  }

  start(): void {
    this.actor.start();
    this.#observe(this.snapshot, []);
  }

  #inspect(ev: InspectionEvent): void {
    if (ev.actorRef.sessionId !== ev.rootId) return; // children report too; only the machine under test counts
    if (ev.type === '@xstate.event' && ev.event.type !== 'xstate.init') this.received.push(ev.event);
    if (ev.type === '@xstate.microstep') this.#observe(ev.snapshot as AnyMachineSnapshot, ev._transitions);
  }

  #observe(snapshot: AnyMachineSnapshot, taken: readonly AnyTransitionDefinition[]): void {
    this.coverage.record(snapshot, taken);
    const previous = this.microsteps.at(-1);
    this.microsteps.push(snapshot);
    for (const v of this.spec.invariants?.(this, snapshot, previous) ?? []) this.violations.push(`${stateName(snapshot)}: ${v}`);
  }

  /** Makes the world produce `event` (see the file comment for the three kinds), then lets the actor settle. */
  async deliver(event: TEvent): Promise<void> {
    const { clock, effects } = this.world;
    if (this.spec.deliver?.(this, event)) {
      // handled by the machine's own harness (children, watchers)
    } else if (event.type.startsWith(DONE_ACTOR)) {
      const id = event.type.slice(DONE_ACTOR.length);
      const output = (event as unknown as { output: Record<string, unknown> }).output;
      effects.resolve(id, { ...output, at: clock.now() });
    } else if (event.type === EFFECT_DONE) {
      const { effect, output } = event as unknown as { effect: string; output: Record<string, unknown> };
      effects.resolve(runnerEffectId(effect), { ...output, at: clock.now() });
    } else if (this.spec.timerEvents.has(event.type)) {
      const due = clock.nextDueAt();
      expect(due, `no timer armed to produce ${event.type}`).toBeDefined();
      const before = this.received.length;
      clock.advanceToNext();
      const fired = this.received[before] as (EventObject & { at?: number }) | undefined;
      expect(fired?.type, `advancing the clock to ${due} should deliver ${event.type}`).toBe(event.type);
      expect(fired?.at, `${event.type} should carry the time its timer was armed for`).toBe(due);
    } else {
      const { label: _label, ...command } = event;
      this.actor.send({ ...command, at: clock.now() } as never);
    }
    await settle();
  }

  /** The assertions made after every step. */
  check(expected: AnyMachineSnapshot, event: TEvent | null): void {
    const actual = this.snapshot;
    expect(this.violations.join('\n'), 'invariant violations').toBe('');
    expect(actual.status, 'actor status').toBe(expected.status);
    expect(this.spec.abstract(actual), `state after ${event ? labelOf(event) : 'start'}`).toEqual(this.spec.abstract(expected));
    expect(this.world.effects.pendingIds().sort(), 'effects in flight = effects the active states invoke').toEqual(
      expectedEffects(actual, this.world.effects).sort(),
    );
    const timers = expectedTimers(actual);
    expect(this.world.clock.armed(), `armed timers (${timers.map((t) => `${t.state}:${t.event}`).join(', ')})`).toEqual(
      timers.map((t) => t.at).sort((a, b) => a - b),
    );
    this.spec.afterStep?.(this, expected, event);
  }

  stop(): void {
    this.actor.stop();
  }
}

/** Executes one model path against a fresh running actor. */
export async function runPath<TEvent extends ModelEvent>(
  spec: ModelSpec<TEvent>,
  path: ModelPath<TEvent>,
  coverage: Coverage,
): Promise<ModelRun<TEvent>> {
  const run = new ModelRun(spec, coverage);
  run.start();
  await settle();
  try {
    run.check(path.initial, null);
    for (const [i, step] of path.steps.entries()) {
      try {
        await run.deliver(step.event);
        run.check(step.state, step.event);
      } catch (err) {
        if (err instanceof Error) err.message = `step ${i + 1} (${labelOf(step.event)}): ${err.message}`;
        throw err;
      }
    }
    coverage.paths++;
    return run;
  } finally {
    run.stop();
  }
}

/** The spawned child with this id, for machines that spawn. */
export function childOf(snapshot: AnyMachineSnapshot, id: string): AnyActorRef | undefined {
  return (snapshot.children as Record<string, AnyActorRef | undefined>)[id];
}

// ---------------------------------------------------------------------------------------------------------------------
// The suite a machine's model test file registers
// ---------------------------------------------------------------------------------------------------------------------

/**
 * Plans the paths of every spec, registers one test per path, and a last test that fails unless the running actors
 * together entered every state and took every transition branch of `machine` (and no model state is stuck).
 */
export function describeModel<TEvent extends ModelEvent>(label: string, machine: AnyStateMachine, specs: readonly ModelSpec<TEvent>[]): void {
  const coverage = new Coverage(inventory(machine));
  const unreachable = new Map<string, number>();
  const stuck: string[] = [];
  for (const spec of specs) {
    const plan = planPaths(spec, newWorld(spec.startAt));
    for (const k of plan.unreachable) unreachable.set(k, (unreachable.get(k) ?? 0) + 1);
    stuck.push(...plan.stuck.map((k) => `[${spec.name}] ${k}`));
    describe(`${label} model [${spec.name}] (${plan.modelStates} model states, ${plan.modelEdges} edges, ${plan.paths.length} paths)`, () => {
      for (const path of plan.paths) it(path.title, () => runPath(spec, path, coverage));
    });
  }
  describe(`${label} model coverage`, () => {
    it(`every state and every transition branch of the ${label} machine was taken by a running actor`, () => {
      console.log(coverage.summary(`${label} machine`));
      const neverModelled = [...unreachable].filter(([, n]) => n === specs.length).map(([k]) => k);
      expect(neverModelled.join('\n'), 'branches no model edge takes (dead, or the model misses an event)').toBe('');
      expect(stuck.join('\n'), 'model states from which the machine can never finish').toBe('');
      expect(coverage.missingStates().join('\n'), 'states never entered').toBe('');
      expect(coverage.missingTransitions().join('\n'), 'transition branches never taken').toBe('');
    });
  });
}
