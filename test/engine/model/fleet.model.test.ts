/**
 * Model-based tests of the fleet machine (see support.ts for how a path is planned and executed).
 *
 * The model: in every snapshot, the events that can happen are
 *   - the done event of the invoked effect (listNodes: the cluster, a requested node missing, no Linux node, every node
 *     already patched, transient error, fatal error; prefetch: ok, partly failed, error);
 *   - the earliest armed timer (NOT_BEFORE_REACHED, RETRY);
 *   - `xstate.done.actor.node-<p>` for every node in flight, with a patched or failed NodeOutcome (cancelled too while
 *     cancelling);
 *   - operator commands where a state handles them: APPROVE and REJECT (by an approver, by the requester, by a
 *     stranger), CANCEL, PAUSE, RESUME;
 *   - WINDOW_OPENED / WINDOW_CLOSED from the window watcher while rolling, for plans with a window (changes only).
 * Node machines are replaced by a scripted child (`scriptedNode`) that records the CANCELs it receives and finishes
 * with the outcome the path chose. Several plans are explored and their coverage is united.
 */
import { expect } from 'vitest';
import { assign, fromCallback, setup, type AnyMachineSnapshot } from 'xstate';
import type {
  ClusterHealth,
  ListNodesInput,
  ListNodesOutput,
  ObserveInput,
  ObserveOutput,
  PrefetchInput,
  PrefetchOutput,
  SoakInput,
  SoakOutput,
  StepError,
} from '../../../src/engine/effects.ts';
import { fleetMachine, type FleetContext, type FleetInput, type FleetOutput, type RunOutcome } from '../../../src/engine/fleet.machine.ts';
import { nodeMachine, nodePolicy, type NodeOutcome, type NodeResult, type NodeRunInput } from '../../../src/engine/node.machine.ts';
import { parsePlan, resolveLimits, type PlanInput } from '../../../src/engine/plan.ts';
import { CONTROL_PLANE_LABELS, OS_LABEL, ZONE_LABEL, type NodeView } from '../../../src/engine/selection.ts';
import { createTimerActor } from '../../../src/engine/timers.ts';
import type { MaintenanceWindow } from '../../../src/engine/window.ts';
import {
  childOf,
  describeModel,
  expectedTimers,
  type ModelEvent,
  type ModelRun,
  type ModelSpec,
  type World,
} from './support.ts';

// ---------------------------------------------------------------------------------------------------------------------
// Stand-ins for the node machines and the window watcher
// ---------------------------------------------------------------------------------------------------------------------

type ScriptedNodeEvent = { type: 'CANCEL'; at: number; by: string } | { type: 'test.finish'; outcome: NodeOutcome };

/** A node machine stand-in: runs until the test finishes it, remembering who asked it to cancel. */
const scriptedNode = setup({
  types: {
    input: {} as NodeRunInput,
    context: {} as { input: NodeRunInput; cancels: string[]; outcome: NodeOutcome | null },
    events: {} as ScriptedNodeEvent,
    output: {} as NodeOutcome,
  },
}).createMachine({
  id: 'scriptedNode',
  context: ({ input }) => ({ input, cancels: [], outcome: null }),
  initial: 'running',
  states: {
    running: {
      on: {
        CANCEL: { actions: assign({ cancels: ({ context, event }) => [...context.cancels, event.by] }) },
        'test.finish': { target: 'finished', actions: assign({ outcome: ({ event }) => event.outcome }) },
      },
    },
    finished: { type: 'final' },
  },
  output: ({ context }) => context.outcome!,
});

interface Watcher {
  window: MaintenanceWindow | null;
  send(event: { type: 'WINDOW_OPENED' | 'WINDOW_CLOSED'; at: number }): void;
  live: boolean;
}
const watchers = new WeakMap<World, Watcher[]>();

/** The window watcher stand-in: the test reports openings and closings through it, as the real one would. */
function scriptedWatcher(world: World) {
  const list: Watcher[] = [];
  watchers.set(world, list);
  return fromCallback<{ type: string }, { window: MaintenanceWindow | null }>(({ input, sendBack }) => {
    const w: Watcher = { window: input.window, send: sendBack, live: true };
    list.push(w);
    return () => {
      w.live = false;
    };
  });
}

function buildFleetMachine(world: World) {
  const { effects, clock } = world;
  return fleetMachine.provide({
    actors: {
      // The fleet only needs an actor that takes NodeRunInput, accepts CANCEL and finishes with a NodeOutcome.
      nodeRun: scriptedNode as unknown as typeof nodeMachine,
      listNodes: effects.actor<ListNodesOutput, ListNodesInput>('listNodes'),
      prefetch: effects.actor<PrefetchOutput, PrefetchInput>('prefetch'),
      observeCluster: effects.actor<ObserveOutput, ObserveInput>('observeCluster'),
      soakNodes: effects.actor<SoakOutput, SoakInput>('soakNodes'),
      timer: createTimerActor(clock),
      windowWatcher: scriptedWatcher(world),
    },
  });
}

// ---------------------------------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------------------------------

const CREATED = Date.UTC(2025, 2, 3, 10, 0, 0); // a Monday, 10:00 UTC
const RUN_ID = 'run-9';
const HASH = 'h-51c0';
const REQUESTER = 'bob';
const STRANGER = 'mallory';
const OPERATOR = 'ops';

type Result = { ok: true; value: unknown } | { ok: false; error: StepError };
type FleetModelEvent = ModelEvent & { output?: unknown; by?: string; reason?: string };

const ok = (value: unknown): Result => ({ ok: true, value });
const transient: Result = { ok: false, error: { code: 'API_ERROR', message: '503 from the API server', retryable: true } };
const fatal: Result = { ok: false, error: { code: 'API_ERROR', message: '401 unauthorized', retryable: false } };

function view(name: string, zone: string, controlPlane = false, extra: Record<string, string> = {}): NodeView {
  return {
    name,
    labels: { [OS_LABEL]: 'linux', [ZONE_LABEL]: zone, ...(controlPlane ? { [CONTROL_PLANE_LABELS[0]]: '' } : {}), ...extra },
  };
}

interface FleetCase {
  name: string;
  plan: PlanInput;
  cluster: NodeView[];
  notBefore: number | null;
}

const ctxOf = (s: AnyMachineSnapshot) => s.context as FleetContext;
const nodeChildren = (s: AnyMachineSnapshot) =>
  Object.keys(s.children)
    .filter((id) => id.startsWith('node-'))
    .sort();
const handles = (s: AnyMachineSnapshot, type: string) => s._nodes.some((n) => n.transitions.has(type));

function outcomeOf(name: string, result: NodeResult, at: number): NodeOutcome {
  const error =
    result === 'failed'
      ? { step: 'patch' as const, code: 'LOCK_TIMEOUT' as const, message: 'dpkg lock held' }
      : result === 'cancelled'
        ? { step: 'drain' as const, code: 'CANCELLED' as const, message: `cancelled by ${OPERATOR}` }
        : null;
  return {
    node: name,
    result,
    error,
    note: null,
    report: null,
    rebooted: false,
    rebootPending: false,
    cordonedAtEnd: false,
    phases: {},
    startedAt: at,
    finishedAt: at,
  };
}

function listOutputs(k: FleetCase, c: FleetContext): Array<[string, Result]> {
  const choices: Array<[string, Result]> = [['the cluster', ok(k.cluster)]];
  const requested = c.plan.nodes;
  if (requested && requested.length > 0) {
    choices.push(['a requested node is missing', ok(k.cluster.filter((n) => n.name !== requested.at(-1)))]);
  }
  choices.push(
    ['no Linux node', ok(k.cluster.map((n) => ({ ...n, labels: { ...n.labels, [OS_LABEL]: 'windows' } })))],
    ['every node already carries the hash', ok(k.cluster.map((n) => ({ ...n, labels: { ...n.labels, [c.plan.labelKey]: HASH } })))],
    ['transient error', transient],
    ['fatal error', fatal],
  );
  return choices;
}

/** A node outside the run (not selected), whose health the gate still watches. */
const OUTSIDER = 'db-1';

function observeOutputs(k: FleetCase): Array<[string, Result]> {
  const nodes = [...k.cluster.map((n) => n.name), OUTSIDER].map((name) => ({ name, ready: true, unschedulable: false, cordonedBy: null }));
  const healthy: ClusterHealth = { nodes, controlPlane: { ready: true, detail: 'ok' }, blockingPods: [], alerts: null };
  const sick: ClusterHealth = { ...healthy, nodes: nodes.map((n) => (n.name === OUTSIDER ? { ...n, ready: false } : n)) };
  return [
    ['healthy', ok(healthy)],
    [`${OUTSIDER} NotReady`, ok(sick)],
    ['error', transient],
  ];
}

function soakOutputs(): Array<[string, Result]> {
  return [
    ['the canaries stayed healthy', ok(null)],
    ['a canary went NotReady', { ok: false, error: { code: 'SOAK_FAILED', message: 'node worker-1 went NotReady during its soak', retryable: false } }],
  ];
}

function prefetchOutputs(c: FleetContext): Array<[string, Result]> {
  const names = c.queue;
  return [
    ['ok', ok({ prefetched: names, failed: [] })],
    ['some nodes failed', ok({ prefetched: names.slice(0, 1), failed: names.slice(1) })],
    ['error', fatal],
  ];
}

/** The clock as the model knows it: it only moves when a timer fires. */
function modelNow(s: AnyMachineSnapshot): number {
  const c = ctxOf(s);
  if (s.matches('scheduled')) return c.createdAt;
  const started = c.notBefore ?? c.createdAt;
  return s.matches({ selecting: 'backoff' }) ? started : Math.max(started, c.retryAt);
}

function fleetEvents(k: FleetCase) {
  return (s: AnyMachineSnapshot): FleetModelEvent[] => {
    if (s.status !== 'active') return [];
    const c = ctxOf(s);
    const at = modelNow(s);
    const events: FleetModelEvent[] = [];
    for (const node of s._nodes) {
      for (const inv of node.invoke) {
        const outputs =
          inv.src === 'listNodes'
            ? listOutputs(k, c)
            : inv.src === 'prefetch'
              ? prefetchOutputs(c)
              : inv.src === 'observeCluster'
                ? observeOutputs(k)
                : inv.src === 'soakNodes'
                  ? soakOutputs()
                  : [];
        for (const [label, result] of outputs) {
          events.push({ type: `xstate.done.actor.${inv.id}`, output: { ...result, at }, label: `${String(inv.src)}: ${label}` });
        }
      }
    }
    const [first] = expectedTimers(s).sort((a, b) => a.at - b.at);
    if (first) events.push({ type: first.event, at: first.at });
    const results: NodeResult[] = s.matches('cancelling') ? ['patched', 'failed', 'cancelled'] : ['patched', 'failed'];
    for (const p of c.inFlight) {
      const name = c.queue[p]!;
      for (const r of results) {
        events.push({ type: `xstate.done.actor.node-${p}`, output: outcomeOf(name, r, at), label: `node-${p} (${name}): ${r}` });
      }
    }
    const approver = c.plan.approval.approvers[0] ?? 'alice';
    if (handles(s, 'APPROVE')) {
      for (const by of [approver, REQUESTER, STRANGER]) events.push({ type: 'APPROVE', by, at, label: `APPROVE by ${by}` });
    }
    if (handles(s, 'REJECT')) {
      for (const by of [approver, REQUESTER, STRANGER]) events.push({ type: 'REJECT', by, reason: 'not tonight', at, label: `REJECT by ${by}` });
    }
    // Before the run starts, a cancel is a withdrawal or a veto and comes from anyone; once it runs, from an operator.
    if (handles(s, 'CANCEL') && s.hasTag('decision-open')) {
      for (const by of [approver, REQUESTER, STRANGER]) events.push({ type: 'CANCEL', by, at, label: `CANCEL by ${by}` });
    } else if (handles(s, 'CANCEL')) events.push({ type: 'CANCEL', by: OPERATOR, at });
    for (const type of ['PAUSE', 'RESUME']) if (handles(s, type)) events.push({ type, by: OPERATOR, at });
    if (c.plan.window && s.matches('rolling')) events.push({ type: c.windowOpen ? 'WINDOW_CLOSED' : 'WINDOW_OPENED', at });
    return events;
  };
}

function abstractFleet(s: AnyMachineSnapshot) {
  const c = ctxOf(s);
  const out = s.output as FleetOutput | undefined;
  return {
    value: s.value,
    approval: c.approval?.by ?? null,
    rejection: c.rejection?.by ?? null,
    queue: c.queue.map((name, p) => `${name}:${c.controlPlanes.includes(p) ? 'control-plane' : 'worker'}`),
    excludedCount: c.excludedCount,
    next: c.next,
    inFlight: c.inFlight,
    children: nodeChildren(s),
    tally: c.tally,
    failedNodes: c.failedNodes,
    windowOpen: c.windowOpen,
    pausedBy: c.pausedBy,
    cancelledBy: c.cancelledBy,
    reason: c.reason,
    attempt: c.attempt,
    outcome: c.outcome,
    limits: c.limits,
    blocked: c.blocked?.reason ?? null,
    haltReason: c.haltReason,
    canariesPatched: c.canariesPatched,
    canarySoaked: c.canarySoaked,
    output: out && { outcome: out.outcome, reason: out.reason, selected: out.selected, notStarted: out.notStarted, tally: out.tally },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Invariants and per-step checks
// ---------------------------------------------------------------------------------------------------------------------

/** The run outcome as DESIGN.md defines it, computed from the facts rather than from the machine's helper. */
function designOutcome(c: FleetContext): RunOutcome {
  if (c.cancelledBy !== null || c.rejection !== null) return 'cancelled'; // an operator stopped or refused it
  if (c.reason !== null) return 'failed'; // it could not proceed
  // The error budget ran out, a canary failed, or the run was blocked too long.
  if (c.tally.failed > resolveLimits(c.plan, c.queue.length).maxFailures || c.haltReason !== null) return 'halted';
  return c.tally.failed > 0 ? 'partial' : 'succeeded';
}

interface FleetRunNotes {
  spawnedAt: Map<string, number>;
  failedAt: number;
}
const notes = new WeakMap<object, FleetRunNotes>();
function notesOf(run: ModelRun<FleetModelEvent>): FleetRunNotes {
  let n = notes.get(run);
  if (!n) notes.set(run, (n = { spawnedAt: new Map(), failedAt: NaN }));
  return n;
}

function fleetInvariants(run: ModelRun<FleetModelEvent>, s: AnyMachineSnapshot, prev: AnyMachineSnapshot | undefined): string[] {
  const c = ctxOf(s);
  const v: string[] = [];
  const n = notesOf(run);
  const children = nodeChildren(s);
  const inFlight = c.inFlight.map((p) => `node-${p}`).sort();
  if (s.matches({ selecting: 'backoff' }) && !prev?.matches({ selecting: 'backoff' })) n.failedAt = run.world.clock.now();

  // Decisions come from those the plan allows (DESIGN.md), checked from the facts rather than with the engine's verdicts.
  const { approvers, twoPersonRule } = c.plan.approval;
  const mayApprove = (by: string) => (approvers.length === 0 || approvers.includes(by)) && !(twoPersonRule && by === c.requestedBy);
  if (c.approval && !mayApprove(c.approval.by)) v.push(`approved by ${c.approval.by}, who may not approve`);
  if (c.rejection && c.rejection.by !== c.requestedBy && approvers.length > 0 && !approvers.includes(c.rejection.by)) {
    v.push(`rejected by ${c.rejection.by}, neither an approver nor the requester`);
  }
  const cancelledNow = c.cancelledBy !== null && prev !== undefined && ctxOf(prev).cancelledBy === null;
  if (cancelledNow && prev.hasTag('decision-open') && c.cancelledBy !== c.requestedBy && approvers.length > 0 && !approvers.includes(c.cancelledBy!)) {
    v.push(`cancelled before it started by ${c.cancelledBy}, neither an approver nor the requester`);
  }

  const limits = resolveLimits(c.plan, c.queue.length);
  if (children.length > limits.concurrency) v.push(`${children.length} nodes in flight, concurrency is ${c.plan.concurrency}`);
  const canaries = Math.min(c.plan.canary.nodes, c.queue.length);
  if (c.inFlight.some((p) => p < canaries) && c.inFlight.length > 1) v.push(`a canary in flight beside other nodes: ${c.inFlight}`);
  if (JSON.stringify(children) !== JSON.stringify(inFlight)) v.push(`children ${children} differ from inFlight ${inFlight}`);
  const controlPlanes = c.inFlight.filter((p) => c.controlPlanes.includes(p));
  if (controlPlanes.length > 1) v.push(`two control-plane nodes in flight: ${controlPlanes}`);

  const before = new Set(prev ? nodeChildren(prev) : []);
  const spawned = children.filter((id) => !before.has(id));
  for (const id of spawned) n.spawnedAt.set(id, run.world.clock.now());
  if (spawned.length > 0) {
    if (!s.matches({ rolling: 'active' })) v.push(`spawned ${spawned} outside rolling.active`);
    if (c.tally.failed > limits.maxFailures) v.push(`spawned ${spawned} with the error budget spent`);
    if (c.haltReason !== null) v.push(`spawned ${spawned} after the run was told to halt (${c.haltReason})`);
    const past = spawned.map((id) => Number(id.slice('node-'.length))).filter((p) => p >= canaries);
    if (past.length > 0 && (!c.canarySoaked || c.inFlight.some((p) => p < canaries))) v.push(`spawned ${past} before the canaries finished their soak`);
    if (prev && !prev.matches({ rolling: 'gating' })) v.push(`spawned ${spawned} without asking the health gate first`);
    if (c.pausedBy !== null) v.push(`spawned ${spawned} while paused`);
    if (!c.windowOpen) v.push(`spawned ${spawned} with the window closed`);
    if (c.cancelledBy !== null) v.push(`spawned ${spawned} after a cancel`);
  }

  if (s.status === 'done') {
    const out = s.output as FleetOutput;
    if (c.outcome === null) v.push('done without an outcome');
    if (out.outcome !== designOutcome(c)) v.push(`outcome ${out.outcome}, DESIGN.md says ${designOutcome(c)} for ${JSON.stringify(c.tally)}`);
    const reported = Object.values(c.tally).reduce((a, b) => a + b, 0);
    if (reported !== c.next) v.push(`${c.next} nodes started but ${reported} reported`);
    if (c.inFlight.length > 0) v.push('done with nodes in flight');
    const finishedAll = c.next === c.queue.length;
    if ((out.outcome === 'succeeded' || out.outcome === 'partial') && !finishedAll) v.push(`${out.outcome} with nodes never started`);
    if (out.outcome === 'succeeded' && c.tally.failed > 0) v.push('succeeded with failures');
    if (out.outcome === 'failed' && c.next > 0) v.push('failed (could not proceed) after starting nodes');
  }
  return v;
}

function fleetAfterStep(k: FleetCase, input: FleetInput) {
  return (run: ModelRun<FleetModelEvent>, _expected: AnyMachineSnapshot, event: FleetModelEvent | null): void => {
    const s = run.snapshot;
    const c = ctxOf(s);
    const n = notesOf(run);
    const { clock, effects } = run.world;

    // Timers are armed where the context says.
    if (s.matches('scheduled')) expect(clock.armed(), 'the start timer is armed for notBefore').toEqual([k.notBefore ?? CREATED]);
    if (s.matches({ selecting: 'backoff' })) {
      expect(c.retryAt, 'retryAt = failure time + exponential backoff').toBe(
        n.failedAt + c.plan.retry.backoffSeconds * 1000 * 2 ** (c.attempt - 2),
      );
    }

    // Node machines are started with the right input, when the context says.
    for (const id of nodeChildren(s)) {
      const child = childOf(s, id)!;
      const p = Number(id.slice('node-'.length));
      const childInput = (child.getSnapshot() as AnyMachineSnapshot).context.input as NodeRunInput;
      expect(childInput, `input of ${id}`).toEqual({
        runId: RUN_ID,
        node: c.queue[p]!,
        hash: HASH,
        startedAt: n.spawnedAt.get(id),
        policy: nodePolicy(input.plan),
      });
    }
    // A cancel reaches every node in flight.
    if (event?.type === 'CANCEL') {
      for (const id of nodeChildren(s)) {
        const cancels = (childOf(s, id)!.getSnapshot() as AnyMachineSnapshot).context.cancels as string[];
        expect(cancels, `${id} was told to cancel`).toEqual([OPERATOR]);
      }
    }
    // Effect inputs.
    for (const call of effects.calls) {
      if (call.src === 'listNodes') expect(call.input).toEqual({ runId: RUN_ID });
      if (call.src === 'prefetch') expect(call.input).toMatchObject({ runId: RUN_ID, hash: HASH, nodes: c.queue });
      if (call.src === 'observeCluster') expect(call.input).toEqual({ runId: RUN_ID, podSelector: '', prometheus: null });
      if (call.src === 'soakNodes') {
        expect(call.input).toMatchObject({ runId: RUN_ID, nodes: c.canariesPatched });
      }
    }
    // A blocked run says why, and names the time-out when it halts for it.
    if (s.matches({ rolling: 'blocked' })) expect(c.blocked?.reason).toMatch(/NotReady|cannot observe/);
    if (c.haltReason?.startsWith('BLOCKED_TIMEOUT')) {
      expect(c.haltReason).toContain(`blocked for more than ${c.plan.healthGate.blockedTimeoutSeconds}s`);
    }
    // The window watcher runs exactly while rolling, watching the plan's window.
    const live = (watchers.get(run.world) ?? []).filter((w) => w.live);
    expect(live.length, 'live window watchers').toBe(s.matches('rolling') ? 1 : 0);
    for (const w of live) expect(w.window).toEqual(c.plan.window ?? null);
    if (s.status === 'done') expect(c.finishedAt).toBe(clock.now());
  };
}

/** Children and the window watcher are driven here; everything else by support.ts. */
function fleetDeliver(run: ModelRun<FleetModelEvent>, event: FleetModelEvent): boolean {
  const { clock } = run.world;
  const child = /^xstate\.done\.actor\.(node-\d+)$/.exec(event.type);
  if (child) {
    const ref = childOf(run.snapshot, child[1]!);
    expect(ref, `${child[1]} should be running`).toBeDefined();
    ref!.send({ type: 'test.finish', outcome: { ...(event.output as NodeOutcome), finishedAt: clock.now() } });
    return true;
  }
  if (event.type === 'WINDOW_OPENED' || event.type === 'WINDOW_CLOSED') {
    const live = (watchers.get(run.world) ?? []).filter((w) => w.live);
    expect(live, 'a live window watcher').toHaveLength(1);
    live[0]!.send({ type: event.type, at: clock.now() });
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------------------------------------------------

const CASES: FleetCase[] = [
  {
    name: 'two workers one by one, no failure allowed, named nodes, 2 list attempts',
    plan: { nodes: ['worker-1', 'worker-2'], retry: { attempts: 2, backoffSeconds: 10 } },
    cluster: [view('worker-1', 'a'), view('worker-2', 'b')],
    notBefore: null,
  },
  {
    name: 'approval by alice, prefetch, two control planes, concurrency 2, one failure allowed, notBefore +10 min',
    plan: {
      concurrency: 2,
      maxFailures: 1,
      prefetch: true,
      approval: { required: true, approvers: ['alice'] },
      retry: { attempts: 1, backoffSeconds: 10 },
    },
    cluster: [view('cp-1', 'a', true), view('cp-2', 'b', true), view('worker-1', 'a')],
    notBefore: CREATED + 10 * 60_000,
  },
  {
    name: 'window 08:00-18:00 open at start, anyone but the requester approves, concurrency 2, one failure allowed',
    plan: {
      concurrency: 2,
      maxFailures: 1,
      window: { start: '08:00', end: '18:00' },
      approval: { required: true },
      retry: { attempts: 1, backoffSeconds: 10 },
    },
    cluster: [view('worker-1', 'a'), view('worker-2', 'b')],
    notBefore: null,
  },
  {
    name: 'one canary of three with a 60 s soak, concurrency "67%", maxFailures "34%", blocked for 30 s at most',
    plan: {
      concurrency: '67%',
      maxFailures: '34%',
      canary: { nodes: 1, soakSeconds: 60 },
      healthGate: { blockedTimeoutSeconds: 30 },
      retry: { attempts: 1, backoffSeconds: 10 },
    },
    cluster: [view('worker-1', 'a'), view('worker-2', 'b'), view('worker-3', 'c')],
    notBefore: null,
  },
  {
    name: 'window 22:00-23:00 closed at start',
    plan: { window: { start: '22:00', end: '23:00' }, retry: { attempts: 1, backoffSeconds: 10 } },
    cluster: [view('worker-1', 'a')],
    notBefore: null,
  },
];

function fleetSpec(k: FleetCase): ModelSpec<FleetModelEvent> {
  const input: FleetInput = { runId: RUN_ID, plan: parsePlan(k.plan), hash: HASH, requestedBy: REQUESTER, createdAt: CREATED, notBefore: k.notBefore };
  return {
    name: k.name,
    build: buildFleetMachine,
    input,
    startAt: CREATED,
    events: fleetEvents(k),
    abstract: abstractFleet,
    timerEvents: new Set(['NOT_BEFORE_REACHED', 'RETRY']),
    deliver: fleetDeliver,
    invariants: fleetInvariants,
    afterStep: fleetAfterStep(k, input),
  };
}

const SPECS = CASES.map(fleetSpec);
describeModel('fleet', fleetMachine, SPECS);
