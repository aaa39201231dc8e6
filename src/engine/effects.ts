/**
 * What the engine needs from the world, as data. The machines invoke named actors whose inputs and outputs are typed
 * here; real implementations (a Kubernetes cluster, the simulator, the in-memory cluster) are provided at the edge with
 * `machine.provide({ actors })`. Every effect output carries `at`, the clock time it finished, because the engine has
 * no clock of its own: deadlines are computed from the times events carry.
 *
 * Effects never reject: a failure is a value (`ok: false`) so that it is persisted like any other outcome.
 */
import { fromPromise } from 'xstate';
import type { AgentReport, ErrorCode } from './report.ts';
import type { NodeView } from './selection.ts';

export interface StepError {
  code: ErrorCode;
  message: string;
  /** Transient failures (API 429/5xx, conflicts) are retried with backoff; everything else fails the step at once. */
  retryable: boolean;
}

export type StepResult<T> = ({ ok: true; value: T } | { ok: false; error: StepError }) & { at: number };

/** What preflight and rejoin observe of a node. */
export interface NodeState extends NodeView {
  exists: boolean;
  ready: boolean;
  unschedulable: boolean;
  /** Value of the cordoned-by annotation: which run cordoned it, if patchpilot did. */
  cordonedBy: string | null;
  bootId: string;
  kubeletVersion: string;
}

/** Identifies one side effect; implementations use it as an idempotency key. */
export interface EffectKey {
  runId: string;
  node: string;
}

export interface DrainInput extends EffectKey {
  gracePeriodSeconds: number;
  podSelector: string;
  /** The plan's drain.force and drain.deleteEmptyDirData (absent in runs persisted before they existed: false). */
  force?: boolean;
  deleteEmptyDirData?: boolean;
  /** When to stop retrying blocked evictions and report what blocked them (just before the step's deadline). */
  giveUpAt: number;
}

/** A pod whose eviction was still refused when the drain gave up, and why (usually a PodDisruptionBudget). */
export interface BlockedEviction {
  pod: string;
  namespace: string;
  reason: string;
}

/** A drain either empties the node (`blocked` empty) or gives up at `giveUpAt` and names what was in the way. */
export interface DrainOutcome {
  evicted: number;
  blocked: BlockedEviction[];
  /** The drain refused to start (kubectl drain's checks: a pod with no controller, emptyDir data) and evicted nothing. */
  refused?: boolean;
}

export interface PatchJobInput extends EffectKey {
  hash: string;
  mode: 'native' | 'palette';
  agent: 'modern' | 'legacy';
  securityOnly: boolean;
  holdPackages: string[];
  lockTimeoutSeconds: number;
  rebootIfRequired: boolean;
}

export interface RebootInput extends EffectKey {
  bootIdBefore: string;
}

export interface RejoinInput extends EffectKey {
  bootIdBefore: string;
}

export interface MarkInput extends EffectKey {
  labels: Record<string, string>;
  annotations: Record<string, string | null>;
}

export interface ListNodesInput {
  runId: string;
}

/** Download-only run of the agent on every node, with the same package policy as the patch itself. */
export interface PrefetchInput extends Omit<PatchJobInput, 'node'> {
  nodes: string[];
}

/** The scan: the agent report-only on the node, with the patch's package policy. */
export type ScanInput = Omit<PatchJobInput, 'agent' | 'rebootIfRequired'>;

/** Watch nodes until `until`: each must stay Ready, and its pods be Ready at the end (per-node and canary soak). */
export interface SoakInput {
  runId: string;
  nodes: string[];
  until: number;
}

/** What the health gate and the blockers ask of the cluster before a node starts. */
export interface ObserveInput {
  runId: string;
  /** Pods matching it block (empty: no pod blocker). */
  podSelector: string;
  /** Prometheus to ask for firing alerts, or null. */
  prometheus: { url: string } | null;
}

/** A node as the health gate sees it. */
export interface NodeHealth {
  name: string;
  ready: boolean;
  unschedulable: boolean;
  cordonedBy: string | null;
}

export interface ClusterHealth {
  /** The nodes that are NotReady or unschedulable (healthy ones need not be listed). */
  nodes: NodeHealth[];
  /** The control plane's readiness endpoint (/readyz): ready, and what it said otherwise. */
  controlPlane: { ready: boolean; detail: string };
  /** `namespace/name` of running pods matching the blockers' selector. */
  blockingPods: string[];
  /** Firing alerts (names), or why Prometheus could not be asked (which blocks: unknown is not healthy). */
  alerts: { firing: string[] } | { error: string } | null;
}

/** Input of the durable timer actor: the absolute time it fires and the event it sends back. */
export interface TimerInput {
  at: number;
  event: 'STEP_TIMEOUT' | 'RETRY' | 'NOT_BEFORE_REACHED';
}

export type PreflightOutput = StepResult<NodeState>;
export type CordonOutput = StepResult<null>;
export type DrainOutput = StepResult<DrainOutcome>;
export type PatchOutput = StepResult<AgentReport>;
export type RebootOutput = StepResult<null>;
export type RejoinOutput = StepResult<NodeState>;
export type UncordonOutput = StepResult<null>;
export type MarkOutput = StepResult<null>;
export type ListNodesOutput = StepResult<NodeView[]>;
export type PrefetchOutput = StepResult<{ prefetched: string[]; failed: string[] }>;
export type ScanOutput = StepResult<AgentReport>;
export type SoakOutput = StepResult<null>;
export type ObserveOutput = StepResult<ClusterHealth>;

/** The async functions an adapter implements; `src/service` turns them into the named actors. */
export interface EngineEffects {
  inspectNode(input: EffectKey, signal: AbortSignal): Promise<NodeState>;
  cordonNode(input: EffectKey, signal: AbortSignal): Promise<null>;
  drainNode(input: DrainInput, signal: AbortSignal): Promise<DrainOutcome>;
  runPatchJob(input: PatchJobInput, signal: AbortSignal): Promise<AgentReport>;
  rebootNode(input: RebootInput, signal: AbortSignal): Promise<null>;
  awaitRejoin(input: RejoinInput, signal: AbortSignal): Promise<NodeState>;
  uncordonNode(input: EffectKey, signal: AbortSignal): Promise<null>;
  markNode(input: MarkInput, signal: AbortSignal): Promise<null>;
  listNodes(input: ListNodesInput, signal: AbortSignal): Promise<NodeView[]>;
  prefetch(input: PrefetchInput, signal: AbortSignal): Promise<{ prefetched: string[]; failed: string[] }>;
  scanNode(input: ScanInput, signal: AbortSignal): Promise<AgentReport>;
  /** Resolves at `until` when every node stayed healthy; throws SOAK_FAILED naming what was not. */
  soakNodes(input: SoakInput, signal: AbortSignal): Promise<null>;
  observeCluster(input: ObserveInput, signal: AbortSignal): Promise<ClusterHealth>;
}

/** An error an effect throws to say how the engine should classify it. Anything else is a retryable API_ERROR. */
export class EffectError extends Error {
  override readonly name = 'EffectError';
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, retryable = false) {
    super(message);
    this.code = code;
    this.retryable = retryable;
  }
}

export function toStepError(err: unknown): StepError {
  if (err instanceof EffectError) return { code: err.code, message: err.message, retryable: err.retryable };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'API_ERROR', message, retryable: true };
}

/** The time an event happened: effect outputs, timer events and commands all carry it. */
export function timeOf(event: unknown, fallback: number): number {
  if (event && typeof event === 'object') {
    const e = event as { at?: unknown; output?: { at?: unknown; finishedAt?: unknown }; input?: { startedAt?: unknown } };
    if (typeof e.at === 'number') return e.at;
    if (typeof e.output?.at === 'number') return e.output.at;
    // A node machine's output (the fleet hears it when a node finishes).
    if (typeof e.output?.finishedAt === 'number') return e.output.finishedAt;
    if (typeof e.input?.startedAt === 'number') return e.input.startedAt;
  }
  return fallback;
}

/**
 * The engine's stand-in for an effect: typed as the real one will be, and failing loudly if a machine is run without
 * `provide({ actors })`. The machines can thus be built and analysed (xstate/graph) with no world attached.
 */
export function unprovidedEffect<I, O>(name: string) {
  return fromPromise<never, I>(async () => {
    throw new Error(`effect "${name}" was not provided: use machine.provide({ actors }) at the edge`);
  }) as unknown as ReturnType<typeof fromPromise<O, I>>;
}
