/**
 * The node machine: one node, one run. preflight -> cordon -> drain -> patch -> [reboot -> rejoin] -> uncordon -> mark.
 *
 * Every step runs a named effect through the node's one effect runner (effect-runner.ts) and has a durable deadline:
 * XState drops pending `after` timers when a snapshot is restored, so deadlines live in context, and the node's one
 * deadline actor (timers.ts) is re-armed from it by each step and persists its armed time. Transient errors are
 * retried with exponential backoff inside the step's deadline. Any failure goes to `recovering`, which applies the failure
 * policy: give the node back if it is healthy and we cordoned it, otherwise leave it cordoned and say so.
 */
import { and, assign, emit, fromCallback, sendTo, setup } from 'xstate';
import {
  timeOf,
  type DrainOutput,
  type EffectKey,
  type MarkInput,
  type NodeState,
  type PatchOutput,
  type PreflightOutput,
  type RejoinOutput,
  type ScanOutput,
  type StepResult,
  type TimerInput,
} from './effects.ts';
import { markMetadata } from './metadata.ts';
import type { Plan } from './plan.ts';
import type { AgentReport, ErrorCode } from './report.ts';
import { DISABLED } from './selection.ts';
import { createDeadlineActor, type ArmEvent } from './timers.ts';
import {
  createEffectRunner,
  EFFECTS_ACTOR_ID,
  type AbortEffectEvent,
  type EffectDoneEvent,
  type NodeEffect,
  type RunEffectEvent,
} from './effect-runner.ts';

export const NODE_STEPS = ['preflight', 'scan', 'cordon', 'drain', 'patch', 'reboot', 'rejoin', 'uncordon', 'soak', 'mark', 'recover'] as const;
export type NodeStep = (typeof NODE_STEPS)[number];

/**
 * The phases a node is reported in (node.step events, the audit log, the simulator's timelines), one tag on each state
 * a node machine rests in: the NodeSteps, except that lifting a cordon someone else left is `release` and the failure
 * policy is `recovering`. Consumers read the tag (`nodePhaseOf`) or the emitted `node.step`, never the state's name.
 */
export const NODE_PHASES = ['preflight', 'scan', 'cordon', 'drain', 'patch', 'reboot', 'rejoin', 'uncordon', 'release', 'soak', 'mark', 'recovering'] as const;
export type NodePhase = (typeof NODE_PHASES)[number];

/** What a node machine tells its observers (`actor.on`): it entered a phase (`at`: when; `startedAt`: its start). */
export type NodeEmitted = { type: 'node.step'; node: string; step: NodePhase; startedAt: number; at: number };

/** The phase a node machine's snapshot is in; null once it has finished. */
export function nodePhaseOf(snapshot: { hasTag(tag: NodePhase): boolean }): NodePhase | null {
  return NODE_PHASES.find((phase) => snapshot.hasTag(phase)) ?? null;
}

export interface NodePolicy {
  labelKey: string;
  mode: Plan['mode'];
  agent: Plan['agent'];
  securityOnly: boolean;
  holdPackages: string[];
  lockTimeoutSeconds: number;
  rebootIfRequired: boolean;
  gracePeriodSeconds: number;
  podSelector: string;
  drainForce?: boolean;
  deleteEmptyDirData?: boolean;
  drainOnTimeout: Plan['drain']['onTimeout'];
  timeoutsMs: Record<NodeStep, number>;
  retryAttempts: number;
  retryBackoffMs: number;
  /** Scan (the agent's dry run) before the cordon; a node with nothing to apply is marked and never cordoned. */
  scanFirst: boolean;
  /** Per-node soak after uncordon (0: none). */
  soakMs: number;
}

/**
 * A drain gives up this long before its step's deadline, so that its report of what blocked it (a PDB) arrives
 * before the step's own timer and the failure can name the pod and the budget.
 */
export const DRAIN_REPORT_MARGIN_MS = 1000;

/** API-only steps get two minutes including retries; the long ones come from the plan. */
const API_STEP_TIMEOUT_MS = 120_000;

export function nodePolicy(plan: Plan): NodePolicy {
  return {
    labelKey: plan.labelKey,
    mode: plan.mode,
    agent: plan.agent,
    securityOnly: plan.securityOnly,
    holdPackages: [...plan.holdPackages],
    lockTimeoutSeconds: plan.lockTimeoutSeconds,
    rebootIfRequired: plan.rebootIfRequired,
    gracePeriodSeconds: plan.drain.gracePeriodSeconds,
    podSelector: plan.drain.podSelector,
    drainForce: plan.drain.force,
    deleteEmptyDirData: plan.drain.deleteEmptyDirData,
    drainOnTimeout: plan.drain.onTimeout,
    timeoutsMs: {
      preflight: API_STEP_TIMEOUT_MS,
      scan: plan.patchTimeoutSeconds * 1000,
      soak: plan.soakSeconds * 1000 + API_STEP_TIMEOUT_MS,
      cordon: API_STEP_TIMEOUT_MS,
      drain: plan.drainTimeoutSeconds * 1000,
      patch: plan.patchTimeoutSeconds * 1000,
      reboot: API_STEP_TIMEOUT_MS,
      rejoin: plan.readyTimeoutSeconds * 1000,
      uncordon: API_STEP_TIMEOUT_MS,
      mark: API_STEP_TIMEOUT_MS,
      recover: API_STEP_TIMEOUT_MS * 3,
    },
    retryAttempts: plan.retry.attempts,
    retryBackoffMs: plan.retry.backoffSeconds * 1000,
    scanFirst: plan.scanFirst,
    soakMs: plan.soakSeconds * 1000,
  };
}

/** The error a step reports when its deadline passes. */
const TIMEOUT_CODES: Record<NodeStep, ErrorCode> = {
  preflight: 'API_ERROR',
  scan: 'JOB_FAILED',
  soak: 'SOAK_FAILED',
  cordon: 'API_ERROR',
  drain: 'DRAIN_TIMEOUT',
  patch: 'JOB_FAILED',
  reboot: 'API_ERROR',
  rejoin: 'REJOIN_TIMEOUT',
  uncordon: 'API_ERROR',
  mark: 'API_ERROR',
  recover: 'API_ERROR',
};

/** Failures after which the node must wait for a human even if it looks healthy. */
const KEEP_CORDONED: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['KUBELET_CHANGED', 'DPKG_INTERRUPTED']);

export interface NodeRunInput {
  runId: string;
  node: string;
  hash: string;
  startedAt: number;
  policy: NodePolicy;
}

export type NodeResult = 'patched' | 'no-updates' | 'failed' | 'cancelled' | 'skipped';

export interface NodeFailure {
  step: NodeStep;
  code: ErrorCode;
  message: string;
}

export interface NodeOutcome {
  node: string;
  result: NodeResult;
  error: NodeFailure | null;
  /** Why a skipped node was skipped. */
  note: string | null;
  report: AgentReport | null;
  rebooted: boolean;
  rebootPending: boolean;
  /** Still cordoned by us when the machine finished (only when the failure policy kept it so). */
  cordonedAtEnd: boolean;
  /** Milliseconds spent per step. */
  phases: Partial<Record<NodeStep, number>>;
  startedAt: number;
  finishedAt: number;
}

export interface BootIdentity {
  bootId: string;
  kubeletVersion: string;
}

const bootOf = (node: NodeState): BootIdentity => ({ bootId: node.bootId, kubeletVersion: node.kubeletVersion });

/**
 * Kept to at most 18 top-level fields: XState copies the context with Object.assign on every assign, and V8 turns a
 * copied object with more properties into a slow dictionary (measured: about 20% of a 10,000-node simulation).
 * What the fleet gave the node and never changes is therefore one field, `input`.
 */
export interface NodeContext {
  input: NodeRunInput;
  step: NodeStep;
  stepStartedAt: number;
  attempt: number;
  deadline: number;
  retryAt: number;
  /** What must not change across the patch (kubelet) or must change across the reboot (boot id). */
  before: BootIdentity | null;
  cordonedByOthers: boolean;
  cordonedByUs: boolean;
  report: AgentReport | null;
  rebooted: boolean;
  failure: NodeFailure | null;
  cancelRequested: boolean;
  result: NodeResult | null;
  note: string | null;
  phases: Partial<Record<NodeStep, number>>;
  finishedAt: number;
}

export type NodeEvent =
  | EffectDoneEvent
  | { type: 'STEP_TIMEOUT'; at: number }
  | { type: 'RETRY'; at: number }
  | { type: 'CANCEL'; at: number; by: string };

function outputOf(event: unknown): StepResult<unknown> | undefined {
  return (event as { output?: StepResult<unknown> }).output;
}

/** What an inspectNode (or awaitRejoin) result carries: the node as just read. */
const readingOf = (event: EffectDoneEvent) => event.output as PreflightOutput;
/** What a scanNode or runPatchJob result carries: the agent's report. */
const reportOf = (event: EffectDoneEvent) => event.output as PatchOutput;

function valueOf<T>(output: StepResult<T>): T {
  if (!output.ok) throw new Error(`engine bug: read the value of a failed step (${output.error.code})`);
  return output.value;
}

/** Placeholder so the machine can be analysed alone (xstate/graph); the runner provides a clock-backed timer. */
export const idleTimer = fromCallback<{ type: string }, TimerInput>(() => () => {});

/** The node's effects, until the edge provides them (runtime.ts): each fails the node machine, naming itself. */
const unprovidedEffects = createEffectRunner(async (name) => {
  throw new Error(`effect "${name}" was not provided: use machine.provide({ actors: { effects } }) at the edge`);
});

/** The same for the node's deadline: a clock that never fires. */
const idleDeadline = createDeadlineActor({ now: () => 0, setTimeout: () => 0, clearTimeout: () => {} });

/** The id of the node's one deadline actor (timers.ts), re-armed at each step's deadline. */
export const DEADLINE_ACTOR_ID = 'deadline';

const key = (c: NodeContext): EffectKey => ({ runId: c.input.runId, node: c.input.node });

/** What the agent is told of the packages, for its dry run (the scan) and for the patch alike. */
const packagesInput = (c: NodeContext) => ({
  ...key(c),
  hash: c.input.hash,
  mode: c.input.policy.mode,
  securityOnly: c.input.policy.securityOnly,
  holdPackages: c.input.policy.holdPackages,
  lockTimeoutSeconds: c.input.policy.lockTimeoutSeconds,
});

/** An update needs a reboot that did not happen (the plan forbade it, or the node has not got there). */
const rebootPending = (c: NodeContext): boolean => c.report?.rebootRequired === true && !c.rebooted;

/** The final mark on the node: its hash label on success, and the status annotations either way. */
function markInput(c: NodeContext, status: 'patched' | 'no-updates' | 'failed', error: string | null): MarkInput {
  return {
    ...key(c),
    ...markMetadata({ labelKey: c.input.policy.labelKey, hash: c.input.hash, runId: c.input.runId, status, at: c.stepStartedAt, error, rebootPending: rebootPending(c) }),
  };
}

/**
 * Whether the cordon on the node is ours, from what was just read when there is a reading. After a failure our
 * belief can be wrong both ways: a cordon request may have reached the API server just as its step timed out or was
 * cancelled, and a node may be gone. The cordoned-by annotation is the truth; the belief is only a fallback.
 */
function soaks(context: NodeContext, report: AgentReport | null): boolean {
  return context.input.policy.soakMs > 0 && report?.result === 'patched';
}

function ownsCordon(context: NodeContext, reading: PreflightOutput): boolean {
  if (!reading.ok) return context.cordonedByUs;
  const node = reading.value;
  return node.exists && node.unschedulable && node.cordonedBy === context.input.runId;
}

const nodeSetup = setup({
  types: {
    context: {} as NodeContext,
    events: {} as NodeEvent,
    input: {} as NodeRunInput,
    output: {} as NodeOutcome,
    tags: {} as NodePhase,
    emitted: {} as NodeEmitted,
  },
  actors: {
    effects: unprovidedEffects,
    timer: idleTimer,
    deadline: idleDeadline,
  },
  guards: {
    stepOk: ({ event }) => outputOf(event)?.ok === true,
    canRetry: ({ context, event }) => {
      const out = outputOf(event);
      return out !== undefined && !out.ok && out.error.retryable && context.attempt < context.input.policy.retryAttempts;
    },
    /** Recovery retries transient errors for as long as its deadline allows, however many attempts that takes. */
    transientFailure: ({ event }) => {
      const out = outputOf(event);
      return out !== undefined && !out.ok && out.error.retryable;
    },
    nodeGone: ({ event }) => {
      const out = outputOf(event) as PreflightOutput;
      return out.ok && !out.value.exists;
    },
    /** An operator set the task label to "disabled" after the run selected the node: their opt-out wins. */
    optedOut: ({ context, event }) => {
      const out = outputOf(event) as PreflightOutput;
      return out.ok && out.value.labels[context.input.policy.labelKey] === DISABLED;
    },
    alreadyPatched: ({ context, event }) => {
      const out = outputOf(event) as PreflightOutput;
      return out.ok && out.value.labels[context.input.policy.labelKey] === context.input.hash;
    },
    patchedUnderOurCordon: ({ context, event }) => {
      const out = outputOf(event) as PreflightOutput;
      return out.ok && out.value.labels[context.input.policy.labelKey] === context.input.hash && out.value.unschedulable && out.value.cordonedBy === context.input.runId;
    },
    notReady: ({ event }) => {
      const out = outputOf(event) as PreflightOutput;
      return out.ok && !out.value.ready;
    },
    cordonedByOthers: ({ context, event }) => {
      const out = outputOf(event) as PreflightOutput;
      return out.ok && out.value.unschedulable && out.value.cordonedBy !== context.input.runId;
    },
    drainBlocked: ({ event }) => {
      const out = outputOf(event) as DrainOutput;
      return out.ok && out.value.blocked.length > 0;
    },
    agentFailed: ({ event }) => {
      const out = outputOf(event) as PatchOutput;
      return out.ok && out.value.result === 'failed';
    },
    mustReboot: ({ context, event }) => {
      const out = outputOf(event) as PatchOutput;
      return out.ok && out.value.rebootRequired && context.input.policy.rebootIfRequired;
    },
    kubeletChanged: ({ context, event }) => {
      const out = outputOf(event) as RejoinOutput;
      return out.ok && context.before !== null && out.value.kubeletVersion !== context.before.kubeletVersion;
    },
    weCordoned: ({ context }) => context.cordonedByUs,
    weDidNotCordon: ({ context }) => !context.cordonedByOthers,
    scanFirst: ({ context }) => context.input.policy.scanFirst,
    /** Only a node that was patched soaks: nothing changed on one without updates. */
    wantsSoak: ({ context }) => soaks(context, context.report),
    /** The same, for a result that brings the report the transition is about to keep. */
    reportWantsSoak: ({ context, event }) => {
      const out = outputOf(event) as PatchOutput;
      return out.ok && soaks(context, out.value);
    },
    /** The scan found nothing to apply. */
    /** A soak that saw the node fail is not retried: it is the answer. */
    soakFailed: ({ event }) => {
      const out = outputOf(event);
      return out !== undefined && !out.ok && out.error.code === 'SOAK_FAILED';
    },
    nothingToApply: ({ event }) => {
      const out = outputOf(event) as ScanOutput;
      return out.ok && out.value.result === 'no-updates';
    },
    /** The failure policy: hand the node back only if it is healthy, the cordon is ours, and the failure allows it. */
    mayUncordon: ({ context, event }) => {
      const out = outputOf(event) as PreflightOutput;
      const code = context.failure?.code;
      if (!ownsCordon(context, out) || !out.ok || !out.value.ready || code === undefined) return false;
      if (KEEP_CORDONED.has(code)) return false;
      return !(code === 'DRAIN_TIMEOUT' && context.input.policy.drainOnTimeout === 'keep-cordoned');
    },
  },
  actions: {
    beginStep: assign(({ context, event }, params: { step: NodeStep }) => {
      const at = timeOf(event, context.input.startedAt);
      return {
        step: params.step,
        stepStartedAt: at,
        attempt: 1,
        deadline: at + context.input.policy.timeoutsMs[params.step],
        retryAt: at,
      };
    }),
    /** After beginStep: the node's deadline actor now waits for this step's deadline. */
    armDeadline: sendTo(DEADLINE_ACTOR_ID, ({ context }): ArmEvent => ({ type: 'ARM', at: context.deadline })),
    endStep: assign(({ context, event }) => {
      const spent = timeOf(event, context.stepStartedAt) - context.stepStartedAt;
      return { phases: { ...context.phases, [context.step]: (context.phases[context.step] ?? 0) + spent } };
    }),
    scheduleRetry: assign(({ context, event }) => {
      const at = timeOf(event, context.stepStartedAt);
      return { attempt: context.attempt + 1, retryAt: at + context.input.policy.retryBackoffMs * 2 ** (context.attempt - 1) };
    }),
    failFromOutput: assign(({ context, event }) => {
      const out = outputOf(event);
      const error = out && !out.ok ? out.error : { code: 'API_ERROR' as const, message: 'step failed without an error' };
      return { failure: { step: context.step, code: error.code, message: error.message } };
    }),
    failFromReport: assign(({ context, event }) => {
      const report = valueOf(outputOf(event) as PatchOutput);
      return {
        report,
        failure: {
          step: context.step,
          code: (report.error?.code ?? 'JOB_FAILED') as ErrorCode,
          message: report.error?.message ?? 'the agent reported a failure without details',
        },
      };
    }),
    failDrainBlocked: assign(({ context, event }) => {
      const { blocked, refused } = valueOf(outputOf(event) as DrainOutput);
      const what = blocked.map((b) => `${b.namespace}/${b.pod}: ${b.reason}`).join('; ');
      return {
        failure: {
          step: context.step,
          code: 'DRAIN_TIMEOUT' as const,
          message: refused
            ? `drain refused to start, nothing was evicted: ${what}`
            : `drain did not finish within ${Math.round(context.input.policy.timeoutsMs.drain / 1000)}s; evictions still refused: ${what}`,
        },
      };
    }),
    failOnTimeout: assign(({ context }) => ({
      failure: {
        step: context.step,
        code: TIMEOUT_CODES[context.step],
        message: `${context.step} did not finish within ${Math.round(context.input.policy.timeoutsMs[context.step] / 1000)}s`,
      },
    })),
    failWith: assign(({ context }, params: { code: ErrorCode; message: string }) => ({
      failure: { step: context.step, code: params.code, message: params.message },
    })),
    cancel: assign(({ context, event }) => ({
      failure: {
        step: context.step,
        code: 'CANCELLED' as const,
        message: `cancelled by ${(event as { by?: string }).by ?? 'operator'} during ${context.step}`,
      },
    })),
    requestCancel: assign({ cancelRequested: true }),
    /** After beginStep, whose stepStartedAt it reports. */
    reportPhase: emit(({ context }, params: { phase: NodePhase }) => ({
      type: 'node.step' as const,
      node: context.input.node,
      step: params.phase,
      startedAt: context.input.startedAt,
      at: context.stepStartedAt,
    })),
    finish: assign(({ context, event }, params: { result: NodeResult }) => ({
      result: params.result === 'failed' && context.failure?.code === 'CANCELLED' ? 'cancelled' : params.result,
      finishedAt: timeOf(event, context.stepStartedAt),
    })),
  },
});

type NodeStateConfig = Parameters<typeof nodeSetup.createStateConfig>[0];

/**
 * What a CANCEL does in a step: `abort` gives the node back (recovering), `finish` lets the step and the rest of the
 * node run to the end (a package manager is never stopped half-way), `ignore` for the last steps.
 */
type CancelPolicy = 'abort' | 'finish' | 'ignore';

const CANCEL_HANDLERS = {
  abort: { CANCEL: { target: '#node.recovering', actions: 'cancel' } },
  finish: { CANCEL: { actions: 'requestCancel' } },
  ignore: {},
} as const;

/** What every step does with a failed result, after its own branches: retry after a backoff if allowed, else fail. */
const RETRY_OR_FAIL = [
  { guard: 'canRetry', target: 'backoff', actions: 'scheduleRetry' },
  { target: '#node.recovering', actions: 'failFromOutput' },
] as const;

type EffectBranches = NonNullable<NodeStateConfig['on']>['effect.done'];
type EffectBranch = Extract<EffectBranches, readonly unknown[]>[number];
type BranchActions = Exclude<EffectBranch, string | undefined>['actions'];

/*
 * Where a result takes a node between steps. These were eventless states (afterPreflight, maintenance, afterPatch,
 * afterUncordon) until each proved a microstep too many for a large fleet (issue 13): now the branch that led there
 * is split by the same guards. A guard is read before the branch's own actions run, so where a branch changes what a
 * guard reads, its path is written out: preflight knows whose cordon it saw, and a branch that keeps a new report
 * decides the soak from the report it brings (`reportWantsSoak`); a node without updates never soaks.
 */

/** After preflight: scan first (before anything is cordoned), unless the plan says not to; then our cordon, or
 * someone else's left in place and straight to the drain. */
function afterPreflight(guard: 'stepOk' | 'cordonedByOthers', actions: BranchActions): EffectBranch[] {
  return [
    { guard: and([guard, 'scanFirst']), target: '#node.scan', actions },
    { guard, target: guard === 'cordonedByOthers' ? '#node.drain' : '#node.cordon', actions },
  ];
}

/** After the scan, into maintenance: our cordon, or someone else's left in place. */
function afterScan(): EffectBranch[] {
  return [
    { guard: and(['stepOk', 'weDidNotCordon']), target: '#node.cordon' },
    { guard: 'stepOk', target: '#node.drain' },
  ];
}

/** Once the node is patched (or needs nothing): only a cordon we made is ours to lift; then the soak, then the mark. */
function afterPatch(guard: 'stepOk' | 'nothingToApply', soak: 'wantsSoak' | 'reportWantsSoak' | null, actions?: BranchActions): EffectBranch[] {
  return [{ guard: and([guard, 'weCordoned']), target: '#node.uncordon', actions }, ...afterUncordon(guard, soak, actions)];
}

function afterUncordon(guard: 'stepOk' | 'nothingToApply', soak: 'wantsSoak' | 'reportWantsSoak' | null, actions?: BranchActions): EffectBranch[] {
  return [...(soak ? [{ guard: and([guard, soak]), target: '#node.soak', actions }] : []), { guard, target: '#node.mark', actions }];
}

/**
 * A state that runs one effect through the node's effect runner (effect-runner.ts): RUN on entry, ABORT on exit, so
 * only the state that asked for a result hears it, as with an invoke. `onDone` says where each result takes the node.
 * `meta.effect` names the effect for whoever inspects the definition (the model tests).
 */
function runs(effect: NodeEffect, input: (args: { context: NodeContext }) => unknown, onDone: EffectBranches): NodeStateConfig {
  return nodeSetup.createStateConfig({
    meta: { effect },
    entry: sendTo(EFFECTS_ACTOR_ID, ({ context }): RunEffectEvent => ({ type: 'RUN', effect, input: input({ context }) })),
    exit: sendTo(EFFECTS_ACTOR_ID, { type: 'ABORT' } satisfies AbortEffectEvent),
    on: { 'effect.done': onDone },
  });
}

/** A recovery substate's wait before `target` is tried again (the recovery deadline still applies). */
function retryLater(target: 'inspecting' | 'uncordoning' | 'reporting'): NodeStateConfig {
  return nodeSetup.createStateConfig({
    invoke: { src: 'timer', input: ({ context }) => ({ at: context.retryAt, event: 'RETRY' as const }) },
    on: { RETRY: target },
  });
}

/**
 * One step of a node: its bookkeeping (beginStep/endStep), its durable deadline (the node's deadline actor, re-armed
 * at context.deadline), and a `backoff` substate that waits for context.retryAt before `running` is tried again.
 * `running` runs the step's effect; its `effect.done` branches say where a result takes the node, and RETRY_OR_FAIL is
 * appended for the results none of them takes.
 */
function step(name: Exclude<NodeStep, 'recover'>, cancel: CancelPolicy, running: NodeStateConfig, phase: NodePhase = name): NodeStateConfig {
  const on = running.on as Record<'effect.done', readonly unknown[]>;
  const runningWithRetries = { ...running, on: { ...on, 'effect.done': [...on['effect.done'], ...RETRY_OR_FAIL] } } as unknown as NodeStateConfig;
  return nodeSetup.createStateConfig({
    tags: [phase],
    entry: [{ type: 'beginStep', params: { step: name } }, 'armDeadline', { type: 'reportPhase', params: { phase } }],
    exit: 'endStep',
    on: { STEP_TIMEOUT: { target: '#node.recovering', actions: 'failOnTimeout' }, ...CANCEL_HANDLERS[cancel] },
    initial: 'running',
    states: {
      running: runningWithRetries,
      backoff: {
        invoke: { src: 'timer', input: ({ context }) => ({ at: context.retryAt, event: 'RETRY' as const }) },
        on: { RETRY: 'running' },
      },
    },
  });
}

export const nodeMachine = nodeSetup.createMachine({
  id: 'node',
  context: ({ input }) => ({
    input,
    step: 'preflight',
    stepStartedAt: input.startedAt,
    attempt: 1,
    deadline: input.startedAt,
    retryAt: input.startedAt,
    before: null,
    cordonedByOthers: false,
    cordonedByUs: false,
    report: null,
    rebooted: false,
    failure: null,
    cancelRequested: false,
    result: null,
    note: null,
    phases: {},
    finishedAt: input.startedAt,
  }),
  // One deadline for the node's whole life, moved by each step's entry (armDeadline) to that step's deadline.
  // One effect runner for its whole life, told by each effect state what to run.
  invoke: [
    { id: DEADLINE_ACTOR_ID, src: 'deadline', input: () => ({ event: 'STEP_TIMEOUT' as const }) },
    { id: EFFECTS_ACTOR_ID, src: 'effects' },
  ],
  initial: 'preflight',
  output: ({ context }) => ({
    node: context.input.node,
    result: context.result ?? 'failed',
    error: context.failure,
    note: context.note ?? (context.cancelRequested ? 'the cancel arrived during the patch: the node was finished first' : null),
    report: context.report,
    rebooted: context.rebooted,
    rebootPending: rebootPending(context),
    cordonedAtEnd: context.cordonedByUs,
    phases: context.phases,
    startedAt: context.input.startedAt,
    finishedAt: context.finishedAt,
  }),
  states: {
    preflight: step('preflight', 'abort', runs('inspectNode', ({ context }) => key(context), [
      { guard: 'nodeGone', target: '#node.skipped', actions: assign({ note: 'the node no longer exists' }) },
      { guard: 'optedOut', target: '#node.skipped', actions: assign({ note: 'its task label is "disabled": excluded by an operator' }) },
      {
        // Patched under this hash by a holder that lost the cluster before it could lift its cordon, which
        // preflight has just adopted: the cordon is lifted, the node counted as skipped (its patch was not ours).
        guard: 'patchedUnderOurCordon',
        target: '#node.release',
        actions: assign({
          cordonedByUs: true,
          note: 'already carried the current hash, still cordoned by a holder that lost the cluster: its cordon was lifted',
        }),
      },
      {
        guard: 'alreadyPatched',
        target: '#node.skipped',
        actions: assign({ note: 'already carries the current hash (patched by an earlier attempt)' }),
      },
      {
        guard: 'notReady',
        target: '#node.recovering',
        actions: [
          assign({
            before: ({ event }) => bootOf(valueOf(readingOf(event))),
            cordonedByUs: ({ context, event }) => ownsCordon(context, readingOf(event)),
          }),
          { type: 'failWith', params: { code: 'NODE_NOT_READY', message: 'node is not Ready; patching it could make things worse' } },
        ],
      },
      ...afterPreflight(
        'cordonedByOthers',
        assign({
          before: ({ event }) => bootOf(valueOf(readingOf(event))),
          cordonedByOthers: true,
          note: 'was already cordoned by someone else: patched, and their cordon left in place',
        }),
      ),
      ...afterPreflight(
        'stepOk',
        assign({
          before: ({ event }) => bootOf(valueOf(readingOf(event))),
          // A cordon carrying our run id survives a crash between cordon and persist: it is still ours.
          cordonedByUs: ({ context, event }) => {
            const s = valueOf(readingOf(event));
            return s.unschedulable && s.cordonedBy === context.input.runId;
          },
        }),
      ),
    ])),
    scan: step('scan', 'abort', runs('scanNode', ({ context }) => packagesInput(context), [
      { guard: 'agentFailed', target: '#node.recovering', actions: 'failFromReport' },
      // Nothing applies: marked no-updates, never cordoned nor drained. The scan's report is the node's report.
      // (Through afterPatch: a run resumed after a crash may find its own cordon there, which it lifts.)
      ...afterPatch('nothingToApply', null, assign({ report: ({ event }) => valueOf(reportOf(event)) })),
      ...afterScan(),
    ])),
    cordon: step('cordon', 'abort', runs('cordonNode', ({ context }) => key(context), [
      { guard: 'stepOk', target: '#node.drain', actions: assign({ cordonedByUs: true }) },
    ])),
    drain: step('drain', 'abort', runs('drainNode', ({ context }) => ({
      ...key(context),
      gracePeriodSeconds: context.input.policy.gracePeriodSeconds,
      podSelector: context.input.policy.podSelector,
      force: context.input.policy.drainForce ?? false,
      deleteEmptyDirData: context.input.policy.deleteEmptyDirData ?? false,
      giveUpAt: Math.max(context.stepStartedAt, context.deadline - DRAIN_REPORT_MARGIN_MS),
    }), [
      { guard: 'drainBlocked', target: '#node.recovering', actions: 'failDrainBlocked' },
      { guard: 'stepOk', target: '#node.patch' },
    ])),
    patch: step('patch', 'finish', runs('runPatchJob', ({ context }) => ({
      ...packagesInput(context),
      agent: context.input.policy.agent,
      rebootIfRequired: context.input.policy.rebootIfRequired,
    }), [
      { guard: 'agentFailed', target: '#node.recovering', actions: 'failFromReport' },
      {
        guard: 'mustReboot',
        target: '#node.reboot',
        actions: assign({ report: ({ event }) => valueOf(reportOf(event)) }),
      },
      ...afterPatch('stepOk', 'reportWantsSoak', assign({ report: ({ event }) => valueOf(reportOf(event)) })),
    ])),
    reboot: step('reboot', 'finish', runs('rebootNode', ({ context }) => ({ ...key(context), bootIdBefore: context.before?.bootId ?? '' }), [
      { guard: 'stepOk', target: '#node.rejoin', actions: assign({ rebooted: true }) },
    ])),
    rejoin: step('rejoin', 'finish', runs('awaitRejoin', ({ context }) => ({ ...key(context), bootIdBefore: context.before?.bootId ?? '' }), [
      {
        guard: 'kubeletChanged',
        target: '#node.recovering',
        actions: {
          type: 'failWith',
          params: {
            code: 'KUBELET_CHANGED',
            message: 'the kubelet version changed across the reboot: Kubernetes was upgraded by the OS patch',
          },
        },
      },
      ...afterPatch('stepOk', 'wantsSoak'),
    ])),
    uncordon: step('uncordon', 'ignore', runs('uncordonNode', ({ context }) => key(context), [
      ...afterUncordon('stepOk', 'wantsSoak', assign({ cordonedByUs: false })),
    ])),
    /** A node someone else finished, whose leftover cordon preflight adopted: lifted, then the node is skipped. */
    release: step(
      'uncordon',
      'ignore',
      runs('uncordonNode', ({ context }) => key(context), [{ guard: 'stepOk', target: '#node.skipped', actions: assign({ cordonedByUs: false }) }]),
      'release',
    ),
    /** The node must stay Ready, and its pods come back Ready, for soakSeconds after it is handed back. */
    soak: step('soak', 'ignore', runs('soakNodes', ({ context }) => ({ runId: context.input.runId, nodes: [context.input.node], until: context.stepStartedAt + context.input.policy.soakMs }), [
      { guard: 'stepOk', target: '#node.mark' },
      { guard: 'soakFailed', target: '#node.recovering', actions: 'failFromOutput' },
    ])),
    mark: step('mark', 'ignore', runs('markNode', ({ context }) => markInput(context, context.report?.result === 'no-updates' ? 'no-updates' : 'patched', null), [
      {
        guard: 'stepOk',
        target: '#node.done',
        actions: {
          type: 'finish',
          params: ({ context }) => ({ result: context.report?.result === 'no-updates' ? 'no-updates' : 'patched' }),
        },
      },
    ])),
    /**
     * The failure policy. Re-read the node (never trust what we saw before the failure), lift our own cordon only if
     * the node is healthy, then record the failure on the node so a human sees it with kubectl.
     */
    recovering: {
      tags: ['recovering'],
      entry: [{ type: 'beginStep', params: { step: 'recover' } }, 'armDeadline', { type: 'reportPhase', params: { phase: 'recovering' } }],
      exit: 'endStep',
      on: { STEP_TIMEOUT: { target: 'failed', actions: { type: 'finish', params: { result: 'failed' } } } },
      initial: 'inspecting',
      states: {
        inspecting: runs('inspectNode', ({ context }) => key(context), [
          // A transient API error must not decide the node's fate: look again until the recovery deadline.
          { guard: 'transientFailure', target: 'inspectingLater', actions: 'scheduleRetry' },
          {
            guard: 'mayUncordon',
            target: 'uncordoning',
            actions: assign({ cordonedByUs: ({ context, event }) => ownsCordon(context, readingOf(event)) }),
          },
          { target: 'reporting', actions: assign({ cordonedByUs: ({ context, event }) => ownsCordon(context, readingOf(event)) }) },
        ]),
        inspectingLater: retryLater('inspecting'),
        uncordoning: runs('uncordonNode', ({ context }) => key(context), [
          { guard: 'stepOk', target: 'reporting', actions: assign({ cordonedByUs: false }) },
          { guard: 'transientFailure', target: 'uncordoningLater', actions: 'scheduleRetry' },
          { target: 'reporting' },
        ]),
        uncordoningLater: retryLater('uncordoning'),
        reporting: runs(
          'markNode',
          ({ context }) => markInput(context, 'failed', context.failure ? `${context.failure.code}: ${context.failure.message}` : 'unknown failure'),
          [
            { guard: 'transientFailure', target: 'reportingLater', actions: 'scheduleRetry' },
            { target: '#node.failed', actions: { type: 'finish', params: { result: 'failed' } } },
          ],
        ),
        reportingLater: retryLater('reporting'),
      },
    },
    done: { type: 'final' },
    skipped: { type: 'final', entry: { type: 'finish', params: { result: 'skipped' } } },
    failed: { type: 'final' },
  },
});
