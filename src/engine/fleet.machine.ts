/**
 * The fleet machine: one run over a cluster.
 *   scheduled (durable timer to notBefore) -> awaitingApproval -> selecting -> [prefetching] -> rolling -> done
 * `rolling` starts node machines (children) up to `concurrency`, never two control-plane nodes at once, and stops
 * starting new ones when the error budget is spent (halting), an operator pauses, or the maintenance window closes.
 * Nodes already in flight always finish: stopping a node half-patched is the one thing worse than waiting.
 */
import { assign, enqueueActions, fromCallback, setup } from 'xstate';
import { timeOf, unprovidedEffect, type ListNodesInput, type ListNodesOutput, type PrefetchInput, type PrefetchOutput, type StepResult, type TimerInput } from './effects.ts';
import { idleTimer, nodeMachine, nodePolicy, type NodeOutcome, type NodeResult } from './node.machine.ts';
import type { Plan } from './plan.ts';
import { noMatchingNodes, selectNodes } from './selection.ts';
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
}

export type FleetEvent =
  /** `memberOf`: the plan's approver entries (user groups) that `by` belongs to, as the injected resolver found. */
  | { type: 'APPROVE'; by: string; at: number; memberOf?: readonly string[] }
  | { type: 'REJECT'; by: string; at: number; reason?: string }
  | { type: 'PAUSE'; by: string; at: number }
  | { type: 'RESUME'; by: string; at: number }
  | { type: 'CANCEL'; by: string; at: number }
  | { type: 'WINDOW_OPENED'; at: number }
  | { type: 'WINDOW_CLOSED'; at: number }
  | { type: 'NOT_BEFORE_REACHED'; at: number }
  | { type: 'RETRY'; at: number }
  /** A node machine (spawned child `node-<position>`) finished. */
  | { type: `xstate.done.actor.node-${number}`; output: NodeOutcome };

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
  const { approvers, twoPersonRule } = plan.approval;
  if (twoPersonRule && approver === requestedBy) {
    return { ok: false, reason: `${approver} requested this run and cannot approve it (two-person rule)` };
  }
  if (approvers.length > 0 && !approvers.includes(approver) && !memberOf.some((group) => approvers.includes(group))) {
    return { ok: false, reason: `${approver} is not an approver for cluster ${plan.cluster}` };
  }
  return { ok: true };
}

export const childId = (position: number) => `node-${position}`;

/** Which queued nodes to start now: fill free slots in order, at most one control-plane node in flight. */
export function nextBatch(context: Pick<FleetContext, 'queue' | 'controlPlanes' | 'next' | 'inFlight' | 'plan'>): number[] {
  const picks: number[] = [];
  const isControlPlane = (p: number) => context.controlPlanes.includes(p);
  let controlPlaneBusy = context.inFlight.some(isControlPlane);
  for (let p = context.next; p < context.queue.length; p++) {
    if (context.inFlight.length + picks.length >= context.plan.concurrency) break;
    if (isControlPlane(p)) {
      if (controlPlaneBusy) break;
      controlPlaneBusy = true;
    }
    picks.push(p);
  }
  return picks;
}

function budgetExhausted(context: FleetContext): boolean {
  return context.tally.failed > context.plan.maxFailures;
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
  },
  actors: {
    nodeRun: nodeMachine,
    listNodes: unprovidedEffect<ListNodesInput, ListNodesOutput>('listNodes'),
    prefetch: unprovidedEffect<PrefetchInput, PrefetchOutput>('prefetch'),
    timer: idleTimer as unknown as ReturnType<typeof fromCallback<{ type: string }, TimerInput>>,
    windowWatcher: idleWindowWatcher,
  },
  guards: {
    canApprove: ({ context, event }) =>
      event.type === 'APPROVE' && approvalVerdict(context.plan, context.requestedBy, event.by, event.memberOf).ok,
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
      const selection = selectNodes(out.value, {
        labelKey: context.plan.labelKey,
        hash: context.hash,
        nodeSelector: context.plan.nodeSelector,
        nodes: context.plan.nodes,
      });
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
      return {
        queue: selection.selected.map((t) => t.name),
        controlPlanes: selection.selected.flatMap((t, p) => (t.role === 'control-plane' ? [p] : [])),
        excludedCount: selection.excluded.length,
        attempt: 1,
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
      enqueue.assign({
        inFlight: context.inFlight.filter((p) => p !== position),
        tally: { ...context.tally, [outcome.result]: context.tally[outcome.result] + 1 },
        failedNodes: outcome.result === 'failed' ? [...context.failedNodes, outcome.node] : context.failedNodes,
      });
    }),
    cancelInFlight: enqueueActions(({ context, event, enqueue }) => {
      const at = timeOf(event, context.createdAt);
      const by = context.cancelledBy ?? 'operator';
      for (const position of context.inFlight) enqueue.sendTo(childId(position), { type: 'CANCEL', at, by });
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
  }),
  initial: 'scheduled',
  output: ({ context }) => ({
    runId: context.runId,
    outcome: context.outcome ?? concludedOutcome(context),
    reason: context.reason ?? (context.rejection ? `rejected by ${context.rejection.by}: ${context.rejection.reason}` : null),
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
      invoke: {
        src: 'timer',
        input: ({ context }) => ({ at: context.notBefore ?? context.createdAt, event: 'NOT_BEFORE_REACHED' as const }),
      },
      on: {
        NOT_BEFORE_REACHED: 'gate',
        // An approval may arrive before notBefore; it is kept and the run starts on time.
        APPROVE: { guard: 'canApprove', actions: 'recordApproval' },
        REJECT: { target: 'done', actions: 'recordRejection' },
        CANCEL: { target: 'done', actions: 'recordCancel' },
      },
    },
    gate: {
      always: [{ guard: 'needsApproval', target: 'awaitingApproval' }, { target: 'selecting' }],
    },
    awaitingApproval: {
      on: {
        APPROVE: { guard: 'canApprove', target: 'selecting', actions: 'recordApproval' },
        REJECT: { target: 'done', actions: 'recordRejection' },
        CANCEL: { target: 'done', actions: 'recordCancel' },
      },
    },
    selecting: {
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
      always: [
        { guard: ({ context }) => context.reason !== null, target: 'done' },
        { guard: 'nothingSelected', target: 'done' },
        { guard: 'wantsPrefetch', target: 'prefetching' },
        { target: 'rolling' },
      ],
    },
    prefetching: {
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
            { target: 'active' },
          ],
        },
        active: { entry: 'startNodes' },
        paused: {},
        waitingForWindow: {},
        /** The error budget is spent: in-flight nodes finish, nothing new starts. */
        halting: { always: { guard: 'idle', target: '#fleet.done' } },
      },
    },
    cancelling: {
      on: { 'xstate.done.actor.*': { actions: 'recordNode' } },
      always: { guard: 'idle', target: 'done' },
    },
    done: { type: 'final', entry: 'conclude' },
  },
});
