/**
 * The fleet machine: one run over a cluster.
 *   scheduled (durable timer to notBefore) -> awaitingApproval -> selecting -> [prefetching] -> rolling -> done
 * `rolling` starts node machines (children) up to `concurrency`, never two control-plane nodes at once, and stops
 * starting new ones when the error budget is spent (halting), an operator pauses, or the maintenance window closes.
 * Nodes already in flight always finish: stopping a node half-patched is the one thing worse than waiting.
 */
import { assign, enqueueActions, fromCallback, setup } from 'xstate';
import {
  timeOf,
  unprovidedEffect,
  type ListNodesInput,
  type ListNodesOutput,
  type ObserveInput,
  type ObserveOutput,
  type PrefetchInput,
  type PrefetchOutput,
  type SoakInput,
  type SoakOutput,
  type StepResult,
  type TimerInput,
} from './effects.ts';
import { gateVerdict, type GateContext } from './gate.ts';
import { idleTimer, nodeMachine, nodePolicy, type NodeOutcome, type NodeResult } from './node.machine.ts';
import { resolveLimits, type Plan } from './plan.ts';
import { noMatchingNodes, selectForRun } from './selection.ts';
import { isWithinWindow, type MaintenanceWindow } from './window.ts';

export type RunOutcome = 'succeeded' | 'partial' | 'halted' | 'failed' | 'cancelled';

export interface FleetInput {
  runId: string;
  plan: Plan;
  hash: string;
  requestedBy: string;
  createdAt: number;
  /** Earliest start (on-demand triggers default to now + 10 min); null starts at once. */
  notBefore: number | null;
}

export type Tally = Record<NodeResult, number>;

export interface FleetContext extends FleetInput {
  approval: { by: string; at: number } | null;
  rejection: { by: string; at: number; reason: string } | null;
  /** Selected node names, in patching order. Names only: the fleet snapshot is persisted often. */
  queue: string[];
  /** Positions in `queue` of control-plane nodes (never two of them in flight). */
  controlPlanes: number[];
  excludedCount: number;
  /** Index in `queue` of the next node to start. */
  next: number;
  /** Positions in `queue` of the nodes being patched now. */
  inFlight: number[];
  tally: Tally;
  failedNodes: string[];
  windowOpen: boolean;
  pausedBy: string | null;
  cancelledBy: string | null;
  reason: string | null;
  attempt: number;
  retryAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  outcome: RunOutcome | null;
  /** concurrency and maxFailures as numbers (percentages resolved against the selection). */
  limits: { concurrency: number; maxFailures: number };
  /** Why the run is waiting in `blocked` (health gate, blockers), and since when; null when it is not. */
  blocked: { reason: string; since: number; checkAt: number } | null;
  /** Why the run halted when it was not the error budget: BLOCKED_TIMEOUT, a failed canary. */
  haltReason: string | null;
  /** Canary nodes this run patched (watched during the canary soak). */
  canariesPatched: string[];
  /** The canary soak is over (or there is none). */
  canarySoaked: boolean;
  /**
   * Selected nodes a holder that lost the cluster left cordoned (they go first in the queue): their cordons are this
   * run's to finish, so they do not close the health gate. Absent in snapshots saved before it existed.
   */
  adopting?: string[];
}

export type FleetEvent =
  /** `memberOf`: the plan's approver entries (user groups) that `by` belongs to, as the injected resolver found. */
  | { type: 'APPROVE'; by: string; at: number; memberOf?: readonly string[] }
  | { type: 'REJECT'; by: string; at: number; reason?: string; memberOf?: readonly string[] }
  | { type: 'PAUSE'; by: string; at: number }
  | { type: 'RESUME'; by: string; at: number }
  | { type: 'CANCEL'; by: string; at: number; memberOf?: readonly string[] }
  | { type: 'WINDOW_OPENED'; at: number }
  | { type: 'WINDOW_CLOSED'; at: number }
  | { type: 'NOT_BEFORE_REACHED'; at: number }
  | { type: 'RETRY'; at: number }
  /** A node machine (spawned child `node-<position>`) finished. */
  | { type: `xstate.done.actor.node-${number}`; output: NodeOutcome };

/**
 * What a run is doing, as tags on the fleet machine's states. The journal, the live views, the bot, notifications and
 * the simulator read these (`snapshot.hasTag`, or the `tags` of a run.state event), never the states' names, which
 * stay the engine's to rearrange. Every state a run can rest in carries exactly one of FLEET_PHASES; the others refine
 * it.
 */
export const FLEET_PHASES = ['scheduled', 'awaiting-approval', 'selecting', 'rolling', 'cancelling', 'finished'] as const;
export type FleetPhase = (typeof FLEET_PHASES)[number];
export type FleetTag =
  | FleetPhase
  /** APPROVE and REJECT are taken (before notBefore too: an early approval is kept). */
  | 'decision-open'
  /** The health gate and the blockers are asked before the next node starts. */
  | 'gating'
  /** The gate is closed: nothing new starts until it opens (or blockedTimeoutSeconds passes). */
  | 'blocked'
  | 'canary-soak'
  /** Paused by an operator (or by the orchestrator while it has lost the cluster's lease). */
  | 'paused'
  | 'waiting-for-window'
  /** The error budget is spent, a canary failed or the gate stayed closed too long: in-flight nodes finish, then done. */
  | 'halting'
  /** Idle by rule while rolling: a pause, a closed window or gate, the canaries' soak. Nothing new starts. */
  | 'waiting';

/** What the fleet machine tells its observers (`actor.on`), so none of them reads child ids or done-event names. */
export type FleetEmitted =
  /** A node machine is about to start, as child `actorId` of the fleet: its `node.step` events come from there. */
  | { type: 'node.started'; position: number; node: string; actorId: string }
  | { type: 'node.finished'; position: number; outcome: NodeOutcome };

export interface FleetOutput {
  runId: string;
  outcome: RunOutcome;
  reason: string | null;
  selected: string[];
  /** Nodes left out by selection (not Linux, already patched, disabled, not matching the selector or the list). */
  excludedCount: number;
  notStarted: string[];
  failedNodes: string[];
  tally: Tally;
  startedAt: number | null;
  finishedAt: number | null;
}

export type ApprovalVerdict = { ok: true } | { ok: false; reason: string };

/**
 * The approval rules: the machine's guard decides with them, and the Orchestrator explains a refusal with them. An
 * approver entry may be a group (a Slack user group); the engine stays pure, so membership arrives resolved with the
 * event (`memberOf`, from the resolver injected into the Orchestrator) and is recorded with it.
 */
export function approvalVerdict(plan: Plan, requestedBy: string, approver: string, memberOf: readonly string[] = []): ApprovalVerdict {
  if (plan.approval.twoPersonRule && approver === requestedBy) {
    return { ok: false, reason: `${approver} requested this run and cannot approve it (two-person rule)` };
  }
  if (!isApprover(plan, approver, memberOf)) return { ok: false, reason: `${approver} is not an approver for cluster ${plan.cluster}` };
  return { ok: true };
}

/**
 * Who may reject a run that waits for a decision: an approver of the plan (named, or through a group; anyone when the
 * plan names none) and the person who requested the run. A veto must come from someone with a say in the change: an
 * approver, whose "no" is the decision the approval step exists for, or the requester, who withdraws their own request
 * (the two-person rule keeps a requester from approving their own change; withdrawing it makes nothing riskier).
 * Anyone else in the channel could otherwise close a request the approvers were about to let through.
 */
export function rejectionVerdict(plan: Plan, requestedBy: string, rejecter: string, memberOf: readonly string[] = []): ApprovalVerdict {
  if (rejecter === requestedBy || isApprover(plan, rejecter, memberOf)) return { ok: true };
  return { ok: false, reason: `${rejecter} is neither an approver for cluster ${plan.cluster} nor the requester of this run, and cannot reject it` };
}

/**
 * Who may cancel a run: before it has touched the cluster (scheduled, or waiting for its approval), cancelling is a
 * veto under another name, so the rejection rule applies (the stop button must not be a way round it). Once the run
 * is selecting or rolling, anyone who can reach its controls may stop it: a stop never makes the cluster less safe
 * (nodes in flight finish their step and are handed back), and the one who sees a rollout go wrong is not always an
 * approver. Who cancelled is recorded either way.
 */
export function cancelVerdict(plan: Plan, requestedBy: string, canceller: string, memberOf: readonly string[] = []): ApprovalVerdict {
  if (canceller === requestedBy || isApprover(plan, canceller, memberOf)) return { ok: true };
  return {
    ok: false,
    reason: `${canceller} is neither an approver for cluster ${plan.cluster} nor the requester of this run, and cannot cancel it before it starts (once it runs, anyone may stop it)`,
  };
}

/** On the plan's approver list, by name or through a group; a plan that names no approvers lets anyone approve. */
function isApprover(plan: Plan, who: string, memberOf: readonly string[]): boolean {
  const { approvers } = plan.approval;
  return approvers.length === 0 || approvers.includes(who) || memberOf.some((group) => approvers.includes(group));
}

export const childId = (position: number) => `node-${position}`;

/** How often a blocked run looks at the cluster again. */
export const GATE_POLL_MS = 30_000;

/** The canary nodes: the first canary.nodes of the queue. */
const canaryCount = (context: Pick<FleetContext, 'plan' | 'queue'>) => Math.min(context.plan.canary.nodes, context.queue.length);

/** Which queued nodes to start now: fill free slots in order, at most one control-plane node in flight. */
export function nextBatch(
  context: Pick<FleetContext, 'queue' | 'controlPlanes' | 'next' | 'inFlight' | 'plan' | 'limits' | 'canarySoaked'>,
): number[] {
  const picks: number[] = [];
  const isControlPlane = (p: number) => context.controlPlanes.includes(p);
  let controlPlaneBusy = context.inFlight.some(isControlPlane);
  const canaries = canaryCount(context);
  for (let p = context.next; p < context.queue.length; p++) {
    const busy = context.inFlight.length + picks.length;
    if (p < canaries) {
      // Canaries go one at a time.
      if (busy >= 1) break;
    } else {
      // Nothing after the canaries until they have all finished and soaked.
      if (context.inFlight.some((q) => q < canaries) || picks.some((q) => q < canaries) || !context.canarySoaked) break;
      if (busy >= context.limits.concurrency) break;
    }
    if (isControlPlane(p)) {
      if (controlPlaneBusy) break;
      controlPlaneBusy = true;
    }
    picks.push(p);
  }
  return picks;
}

function gateContext(context: FleetContext, starting: string[]): GateContext {
  return {
    plan: context.plan,
    inFlight: context.inFlight.map((p) => context.queue[p]!),
    starting,
    failedHere: context.failedNodes,
    adopting: context.adopting ?? [],
  };
}

function budgetExhausted(context: FleetContext): boolean {
  return context.tally.failed > context.limits.maxFailures || context.haltReason !== null;
}

function concludedOutcome(context: FleetContext): RunOutcome {
  if (context.cancelledBy !== null || context.rejection !== null) return 'cancelled';
  if (context.reason !== null) return 'failed';
  if (budgetExhausted(context)) return 'halted';
  return context.tally.failed > 0 ? 'partial' : 'succeeded';
}

const emptyTally = (): Tally => ({ patched: 0, 'no-updates': 0, failed: 0, cancelled: 0, skipped: 0 });


/** Placeholder; the runner provides one that watches the window on the clock and reports each change. */
export const idleWindowWatcher = fromCallback<{ type: string }, { window: MaintenanceWindow | null }>(() => () => {});

function outputOf(event: unknown): StepResult<unknown> | undefined {
  return (event as { output?: StepResult<unknown> }).output;
}

export const fleetMachine = setup({
  types: {
    context: {} as FleetContext,
    events: {} as FleetEvent,
    input: {} as FleetInput,
    output: {} as FleetOutput,
    tags: {} as FleetTag,
    emitted: {} as FleetEmitted,
  },
  actors: {
    nodeRun: nodeMachine,
    listNodes: unprovidedEffect<ListNodesInput, ListNodesOutput>('listNodes'),
    observeCluster: unprovidedEffect<ObserveInput, ObserveOutput>('observeCluster'),
    soakNodes: unprovidedEffect<SoakInput, SoakOutput>('soakNodes'),
    prefetch: unprovidedEffect<PrefetchInput, PrefetchOutput>('prefetch'),
    timer: idleTimer as unknown as ReturnType<typeof fromCallback<{ type: string }, TimerInput>>,
    windowWatcher: idleWindowWatcher,
  },
  guards: {
    canApprove: ({ context, event }) =>
      event.type === 'APPROVE' && approvalVerdict(context.plan, context.requestedBy, event.by, event.memberOf).ok,
    canReject: ({ context, event }) =>
      event.type === 'REJECT' && rejectionVerdict(context.plan, context.requestedBy, event.by, event.memberOf).ok,
    canWithdraw: ({ context, event }) =>
      event.type === 'CANCEL' && cancelVerdict(context.plan, context.requestedBy, event.by, event.memberOf).ok,
    needsApproval: ({ context }) => context.plan.approval.required && context.approval === null,
    stepOk: ({ event }) => outputOf(event)?.ok === true,
    canRetry: ({ context, event }) => {
      const out = outputOf(event);
      return out !== undefined && !out.ok && out.error.retryable && context.attempt < context.plan.retry.attempts;
    },
    nothingSelected: ({ context }) => context.queue.length === 0,
    wantsPrefetch: ({ context }) => context.plan.prefetch,
    budgetExhausted: ({ context }) => budgetExhausted(context),
    paused: ({ context }) => context.pausedBy !== null,
    windowClosed: ({ context }) => !context.windowOpen,
    allDone: ({ context }) => context.next >= context.queue.length && context.inFlight.length === 0,
    idle: ({ context }) => context.inFlight.length === 0,
    /** No free slot, or nothing left to start: wait for a node to finish. */
    nothingToStart: ({ context }) => nextBatch(context).length === 0,
    /** Every canary finished and none is in flight: soak them before anything else starts. */
    canarySoakDue: ({ context }) => {
      const canaries = canaryCount(context);
      return !context.canarySoaked && context.next >= canaries && !context.inFlight.some((p) => p < canaries);
    },
    gateOpen: ({ context, event }) => {
      const out = outputOf(event) as ObserveOutput;
      if (!out.ok) return false;
      const starting = nextBatch(context).map((p) => context.queue[p]!);
      return gateVerdict(out.value, gateContext(context, starting)).open;
    },
    blockedTooLong: ({ context, event }) =>
      context.blocked !== null && timeOf(event, context.createdAt) >= context.blocked.since + context.plan.healthGate.blockedTimeoutSeconds * 1000,
  },
  actions: {
    recordApproval: assign(({ event }) => (event.type === 'APPROVE' ? { approval: { by: event.by, at: event.at } } : {})),
    recordRejection: assign(({ event }) =>
      event.type === 'REJECT' ? { rejection: { by: event.by, at: event.at, reason: event.reason ?? 'rejected' } } : {},
    ),
    recordCancel: assign(({ context, event }) => (event.type === 'CANCEL' ? { cancelledBy: event.by } : { cancelledBy: context.cancelledBy })),
    applySelection: assign(({ context, event }) => {
      const out = outputOf(event) as ListNodesOutput;
      if (!out.ok) return {};
      const selection = selectForRun(context.plan, context.hash, out.value);
      if (selection.unknown.length > 0) {
        return { reason: `unknown node(s): ${selection.unknown.join(', ')}; check the names with kubectl get nodes` };
      }
      if (noMatchingNodes(selection)) {
        return {
          reason:
            'no matching nodes: no node carries kubernetes.io/os=linux' +
            (Object.keys(context.plan.nodeSelector).length > 0 ? ' and matches the node selector' : ''),
        };
      }
      const canaries = Math.min(context.plan.canary.nodes, selection.selected.length);
      return {
        queue: selection.selected.map((t) => t.name),
        controlPlanes: selection.selected.flatMap((t, p) => (t.role === 'control-plane' ? [p] : [])),
        excludedCount: selection.excluded.length,
        attempt: 1,
        limits: resolveLimits(context.plan, selection.selected.length),
        canarySoaked: canaries === 0 || context.plan.canary.soakSeconds === 0,
        adopting: out.value.filter((n) => n.unfinished).map((n) => n.name).filter((name) => selection.selected.some((t) => t.name === name)),
      };
    }),
    failSelection: assign(({ event }) => {
      const out = outputOf(event);
      const why = out && !out.ok ? `${out.error.code}: ${out.error.message}` : 'unknown error';
      return { reason: `could not list the cluster's nodes (${why})` };
    }),
    scheduleRetry: assign(({ context, event }) => ({
      attempt: context.attempt + 1,
      retryAt: timeOf(event, context.createdAt) + context.plan.retry.backoffSeconds * 1000 * 2 ** (context.attempt - 1),
    })),
    noteWindow: assign(({ context, event }) => ({
      windowOpen: context.plan.window ? isWithinWindow(context.plan.window, timeOf(event, context.createdAt)) : true,
    })),
    startNodes: enqueueActions(({ context, event, enqueue }) => {
      const picks = nextBatch(context);
      if (picks.length === 0) return;
      const at = timeOf(event, context.createdAt);
      const policy = nodePolicy(context.plan);
      enqueue.assign({
        next: context.next + picks.length,
        inFlight: [...context.inFlight, ...picks],
        startedAt: context.startedAt ?? at,
      });
      for (const position of picks) {
        // Emitted before the spawn, whose start is deferred after it: an observer can listen to the child's first step.
        enqueue.emit({ type: 'node.started', position, node: context.queue[position]!, actorId: childId(position) });
        enqueue.spawnChild('nodeRun', {
          id: childId(position),
          input: { runId: context.runId, node: context.queue[position]!, hash: context.hash, startedAt: at, policy },
        });
      }
    }),
    recordNode: enqueueActions(({ context, event, enqueue }) => {
      const outcome = (event as unknown as { output: NodeOutcome }).output;
      const position = context.inFlight.find((p) => context.queue[p] === outcome.node);
      if (position === undefined) return;
      enqueue.stopChild(childId(position));
      enqueue.emit({ type: 'node.finished', position, outcome });
      const canary = position < canaryCount(context);
      const canaryFailed = canary && outcome.result === 'failed' && context.haltReason === null;
      enqueue.assign({
        inFlight: context.inFlight.filter((p) => p !== position),
        tally: { ...context.tally, [outcome.result]: context.tally[outcome.result] + 1 },
        failedNodes: outcome.result === 'failed' ? [...context.failedNodes, outcome.node] : context.failedNodes,
        canariesPatched: canary && outcome.result === 'patched' ? [...context.canariesPatched, outcome.node] : context.canariesPatched,
        haltReason: canaryFailed
          ? `canary ${outcome.node} failed (${outcome.error?.code ?? 'failed'}): the run halts whatever maxFailures allows`
          : context.haltReason,
      });
    }),
    cancelInFlight: enqueueActions(({ context, event, enqueue }) => {
      const at = timeOf(event, context.createdAt);
      const by = context.cancelledBy ?? 'operator';
      for (const position of context.inFlight) enqueue.sendTo(childId(position), { type: 'CANCEL', at, by });
    }),
    noteBlocked: assign(({ context, event }) => {
      const out = outputOf(event) as ObserveOutput;
      const at = timeOf(event, context.createdAt);
      const starting = nextBatch(context).map((p) => context.queue[p]!);
      const verdict = out.ok
        ? gateVerdict(out.value, gateContext(context, starting))
        : { open: false as const, reason: `cannot observe the cluster (${out.error.code}: ${out.error.message})` };
      const reason = verdict.open ? 'unknown' : verdict.reason;
      const since = context.blocked?.since ?? at;
      const deadline = since + context.plan.healthGate.blockedTimeoutSeconds * 1000;
      return { blocked: { reason, since, checkAt: Math.min(at + GATE_POLL_MS, deadline) } };
    }),
    clearBlocked: assign({ blocked: null }),
    blockedTimeout: assign(({ context }) => ({
      haltReason: `BLOCKED_TIMEOUT: blocked for more than ${context.plan.healthGate.blockedTimeoutSeconds}s (healthGate.blockedTimeoutSeconds): ${context.blocked?.reason ?? 'unknown'}`,
      blocked: null,
    })),
    canarySoakFailed: assign(({ event }) => {
      const out = outputOf(event) as SoakOutput;
      const why = out.ok ? 'unknown' : `${out.error.code}: ${out.error.message}`;
      return { haltReason: `canary soak failed (${why}): the run halts whatever maxFailures allows` };
    }),
    conclude: assign(({ context, event }) => ({
      outcome: concludedOutcome(context),
      finishedAt: timeOf(event, context.createdAt),
    })),
  },
}).createMachine({
  id: 'fleet',
  context: ({ input }) => ({
    runId: input.runId,
    plan: input.plan,
    hash: input.hash,
    requestedBy: input.requestedBy,
    createdAt: input.createdAt,
    notBefore: input.notBefore,
    approval: null,
    rejection: null,
    queue: [],
    controlPlanes: [],
    excludedCount: 0,
    next: 0,
    inFlight: [],
    tally: emptyTally(),
    failedNodes: [],
    windowOpen: true,
    pausedBy: null,
    cancelledBy: null,
    reason: null,
    attempt: 1,
    retryAt: input.createdAt,
    startedAt: null,
    finishedAt: null,
    outcome: null,
    limits: resolveLimits(input.plan, 0),
    blocked: null,
    haltReason: null,
    canariesPatched: [],
    canarySoaked: true,
  }),
  initial: 'scheduled',
  output: ({ context }) => ({
    runId: context.runId,
    outcome: context.outcome ?? concludedOutcome(context),
    reason:
      context.reason ?? context.haltReason ?? (context.rejection ? `rejected by ${context.rejection.by}: ${context.rejection.reason}` : null),
    selected: context.queue,
    excludedCount: context.excludedCount,
    notStarted: context.queue.slice(context.next),
    failedNodes: context.failedNodes,
    tally: context.tally,
    startedAt: context.startedAt,
    finishedAt: context.finishedAt,
  }),
  states: {
    scheduled: {
      tags: ['scheduled', 'decision-open'],
      invoke: {
        src: 'timer',
        input: ({ context }) => ({ at: context.notBefore ?? context.createdAt, event: 'NOT_BEFORE_REACHED' as const }),
      },
      on: {
        NOT_BEFORE_REACHED: 'gate',
        // An approval may arrive before notBefore; it is kept and the run starts on time.
        APPROVE: { guard: 'canApprove', actions: 'recordApproval' },
        REJECT: { guard: 'canReject', target: 'done', actions: 'recordRejection' },
        CANCEL: { guard: 'canWithdraw', target: 'done', actions: 'recordCancel' },
      },
    },
    gate: {
      tags: ['scheduled'],
      always: [{ guard: 'needsApproval', target: 'awaitingApproval' }, { target: 'selecting' }],
    },
    awaitingApproval: {
      tags: ['awaiting-approval', 'decision-open'],
      on: {
        APPROVE: { guard: 'canApprove', target: 'selecting', actions: 'recordApproval' },
        REJECT: { guard: 'canReject', target: 'done', actions: 'recordRejection' },
        CANCEL: { guard: 'canWithdraw', target: 'done', actions: 'recordCancel' },
      },
    },
    selecting: {
      tags: ['selecting'],
      on: { CANCEL: { target: 'done', actions: 'recordCancel' } },
      initial: 'listing',
      states: {
        listing: {
          invoke: {
            src: 'listNodes',
            input: ({ context }) => ({ runId: context.runId }),
            onDone: [
              { guard: 'stepOk', target: '#fleet.selected', actions: 'applySelection' },
              { guard: 'canRetry', target: 'backoff', actions: 'scheduleRetry' },
              { target: '#fleet.done', actions: 'failSelection' },
            ],
          },
        },
        backoff: {
          invoke: { src: 'timer', input: ({ context }) => ({ at: context.retryAt, event: 'RETRY' as const }) },
          on: { RETRY: 'listing' },
        },
      },
    },
    selected: {
      tags: ['selecting'],
      always: [
        { guard: ({ context }) => context.reason !== null, target: 'done' },
        { guard: 'nothingSelected', target: 'done' },
        { guard: 'wantsPrefetch', target: 'prefetching' },
        { target: 'rolling' },
      ],
    },
    prefetching: {
      tags: ['selecting'],
      on: { CANCEL: { target: 'done', actions: 'recordCancel' } },
      invoke: {
        src: 'prefetch',
        input: ({ context }) => ({
          runId: context.runId,
          nodes: context.queue,
          hash: context.hash,
          mode: context.plan.mode,
          agent: context.plan.agent,
          securityOnly: context.plan.securityOnly,
          holdPackages: context.plan.holdPackages,
          lockTimeoutSeconds: context.plan.lockTimeoutSeconds,
          rebootIfRequired: context.plan.rebootIfRequired,
        }),
        // A failed prefetch only costs time later: the patch step downloads what is missing.
        onDone: 'rolling',
      },
    },
    rolling: {
      tags: ['rolling'],
      entry: 'noteWindow',
      invoke: { src: 'windowWatcher', input: ({ context }) => ({ window: context.plan.window ?? null }) },
      on: {
        'xstate.done.actor.*': { target: '.route', actions: 'recordNode' },
        PAUSE: { target: '.route', actions: assign({ pausedBy: ({ event }) => event.by }) },
        RESUME: { target: '.route', actions: assign({ pausedBy: null }) },
        WINDOW_OPENED: { target: '.route', actions: assign({ windowOpen: true }) },
        WINDOW_CLOSED: { target: '.route', actions: assign({ windowOpen: false }) },
        CANCEL: { target: 'cancelling', actions: ['recordCancel', 'cancelInFlight'] },
      },
      initial: 'route',
      states: {
        /** Decides, after every event, whether new nodes may start. */
        route: {
          always: [
            { guard: 'allDone', target: '#fleet.done' },
            { guard: 'budgetExhausted', target: 'halting' },
            { guard: 'paused', target: 'paused' },
            { guard: 'windowClosed', target: 'waitingForWindow' },
            { guard: 'canarySoakDue', target: 'canarySoak' },
            { guard: 'nothingToStart', target: 'active' },
            { target: 'gating' },
          ],
        },
        /** Before any node starts: the health gate and the blockers (gate.ts). */
        gating: {
          tags: ['gating'],
          invoke: {
            src: 'observeCluster',
            input: ({ context }) => ({
              runId: context.runId,
              podSelector: context.plan.blockers.podSelector,
              prometheus: context.plan.blockers.prometheus ? { url: context.plan.blockers.prometheus.url } : null,
            }),
            onDone: [
              { guard: 'gateOpen', target: 'active', actions: 'clearBlocked' },
              { target: 'blocked', actions: 'noteBlocked' },
            ],
          },
        },
        /** Nothing new starts (in-flight nodes finish); look again every GATE_POLL_MS until the timeout. */
        blocked: {
          tags: ['blocked', 'waiting'],
          invoke: { src: 'timer', input: ({ context }) => ({ at: context.blocked?.checkAt ?? context.createdAt, event: 'RETRY' as const }) },
          on: {
            RETRY: [
              { guard: 'blockedTooLong', target: 'halting', actions: 'blockedTimeout' },
              { target: 'gating' },
            ],
          },
        },
        /** The canaries are done: nothing starts for canary.soakSeconds while they are watched. */
        canarySoak: {
          tags: ['canary-soak', 'waiting'],
          invoke: {
            src: 'soakNodes',
            input: ({ context, event }) => ({
              runId: context.runId,
              nodes: context.canariesPatched,
              until: timeOf(event, context.createdAt) + context.plan.canary.soakSeconds * 1000,
            }),
            onDone: [
              { guard: 'stepOk', target: 'route', actions: assign({ canarySoaked: true }) },
              { target: 'halting', actions: ['canarySoakFailed', assign({ canarySoaked: true })] },
            ],
          },
        },
        active: { entry: 'startNodes' },
        paused: { tags: ['paused', 'waiting'] },
        waitingForWindow: { tags: ['waiting-for-window', 'waiting'] },
        /** The error budget is spent: in-flight nodes finish, nothing new starts. */
        halting: { tags: ['halting'], always: { guard: 'idle', target: '#fleet.done' } },
      },
    },
    cancelling: {
      tags: ['cancelling'],
      on: { 'xstate.done.actor.*': { actions: 'recordNode' } },
      always: { guard: 'idle', target: 'done' },
    },
    done: { type: 'final', tags: ['finished'], entry: 'conclude' },
  },
});
