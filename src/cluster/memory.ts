/**
 * MemoryCluster: a small, exact ClusterPort held in memory, for the engine's tests, the benchmark and `npm start`.
 * Time passes on the injected clock (virtual or real); behaviour per node is data (how long each step takes, whether
 * the drain is blocked, whether the node comes back). Its whole state is one JSON-serialisable object, so a test can
 * keep it in a file and let the orchestrator process die and come back while "the cluster" carries on.
 * The simulator (src/sim) models real faults in depth; this is deliberately simple.
 */
import type { Clock } from '../engine/clock.ts';
import { EffectError } from '../engine/effects.ts';
import { applyMetadataPatch, claimLease, releasedLease, sleep, untilAborted, type HeldLease } from './in-process.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import type { AgentReport } from '../engine/report.ts';
import { CONTROL_PLANE_LABELS, OS_LABEL, ZONE_LABEL } from '../engine/selection.ts';
import type {
  ClusterNode,
  ClusterPort,
  CordonResult,
  DrainOptions,
  DrainResult,
  LeaseRequest,
  Fence,
  StoredAuditAnchor,
  LeaseResult,
  MetadataPatch,
  PatchJobSpec,
  PodInfo,
  ScanSpec,
  UncordonResult,
} from './port.ts';
import { unhealthyOf } from './port.ts';
import type { NodeHealth } from '../engine/effects.ts';
import { scanJobSpec } from './jobs.ts';

export interface NodeTimings {
  drainMs: number;
  patchMs: number;
  rebootMs: number;
  prefetchMs: number;
  scanMs: number;
}

export interface NodeBehaviour {
  /** The agent report the patch Job produces (defaults: one security update, kubelet held). */
  report?: Partial<AgentReport>;
  /** A PodDisruptionBudget never allows the last eviction. */
  drainBlocked?: boolean;
  /** The node never comes back after a reboot. */
  neverRejoins?: boolean;
  /** Kubelet version after the next reboot (an accidental Kubernetes upgrade). */
  kubeletAfterReboot?: string;
  /** The next N API calls touching this node fail with a retryable 500. */
  apiErrors?: number;
  /** The Job's pod dies without printing a report. */
  jobDiesWithoutReport?: boolean;
  /** The scan's report (the agent's dry run); by default it announces what the patch report will upgrade. */
  scan?: Partial<AgentReport>;
}

export interface MemoryNodeSpec {
  name: string;
  role?: 'control-plane' | 'worker';
  zone?: string;
  os?: 'linux' | 'windows' | null;
  osImage?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  unschedulable?: boolean;
  ready?: boolean;
  kubeletVersion?: string;
  timings?: Partial<NodeTimings>;
  behaviour?: NodeBehaviour;
}

interface NodeRecord {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  unschedulable: boolean;
  ready: boolean;
  bootCount: number;
  kubeletVersion: string;
  osImage: string;
  timings: NodeTimings;
  behaviour: NodeBehaviour;
  rebootKeys: string[];
  /** When the reboot in progress completes; null when none is (or the node will never return). */
  backAt: number | null;
}

interface JobRecord {
  name: string;
  node: string;
  runId: string;
  createdAt: number;
  durationMs: number;
  downloadOnly: boolean;
  report: AgentReport;
  diesWithoutReport: boolean;
  /** The version hash it patches to (absent in states saved before it was recorded). */
  hash?: string;
  generation?: number;
}

export interface MemoryClusterState {
  name: string;
  nodes: NodeRecord[];
  jobs: Record<string, JobRecord>;
  lease: HeldLease | null;
  /** Audit anchors by database id (ClusterPort.writeAuditAnchor). */
  auditAnchors?: Record<string, StoredAuditAnchor>;
  /** Patch Jobs created per node and hash: a node patched twice for one hash is a bug. */
  patchJobsCreated: Record<string, number>;
  /** The most nodes ever cordoned by patchpilot at the same time. */
  maxCordonedByUs: number;
}

export const DEFAULT_TIMINGS: NodeTimings = { drainMs: 30_000, patchMs: 90_000, rebootMs: 60_000, prefetchMs: 20_000, scanMs: 10_000 };

/** The dry run's report: what the patch would upgrade, nothing changed; `behaviour.scan` overrides it. */
function scanReport(behaviour: NodeBehaviour): AgentReport {
  const patch = defaultReport(behaviour);
  const none = patch.result === 'no-updates';
  return {
    ...patch,
    result: none ? 'no-updates' : 'patched',
    upgraded: none ? [] : patch.upgraded,
    error: null,
    ...behaviour.scan,
  };
}

function defaultReport(behaviour: NodeBehaviour): AgentReport {
  const base: AgentReport = {
    result: 'patched',
    upgraded: [{ name: 'openssl', from: '3.0.2-0ubuntu1.15', to: '3.0.2-0ubuntu1.18' }],
    held: ['kubelet', 'kubeadm', 'kubectl'],
    rebootRequired: false,
    rebootPackages: [],
    error: null,
    durationSeconds: 0,
  };
  return { ...base, ...behaviour.report };
}

export function nodeRecord(spec: MemoryNodeSpec): NodeRecord {
  const labels: Record<string, string> = { 'kubernetes.io/hostname': spec.name };
  const os = spec.os === undefined ? 'linux' : spec.os;
  if (os !== null) labels[OS_LABEL] = os;
  if (spec.role === 'control-plane') labels[CONTROL_PLANE_LABELS[0]] = '';
  if (spec.zone) labels[ZONE_LABEL] = spec.zone;
  return {
    name: spec.name,
    labels: { ...labels, ...spec.labels },
    annotations: { ...spec.annotations },
    unschedulable: spec.unschedulable ?? false,
    ready: spec.ready ?? true,
    bootCount: 1,
    kubeletVersion: spec.kubeletVersion ?? 'v1.30.4',
    osImage: spec.osImage ?? (os === 'windows' ? 'Windows Server 2022' : 'Ubuntu 22.04.4 LTS'),
    timings: { ...DEFAULT_TIMINGS, ...spec.timings },
    behaviour: { ...spec.behaviour },
    rebootKeys: [],
    backAt: null,
  };
}

export function initialState(name: string, nodes: readonly MemoryNodeSpec[]): MemoryClusterState {
  return { name, nodes: nodes.map(nodeRecord), jobs: {}, lease: null, patchJobsCreated: {}, maxCordonedByUs: 0 };
}

export interface MemoryClusterOptions {
  clock: Clock;
  /** Called after every change, synchronously, with the live state (persist it to survive a process crash). */
  onChange?: (state: MemoryClusterState) => void;
}

export class MemoryCluster implements ClusterPort {
  readonly #clock: Clock;
  readonly #state: MemoryClusterState;
  readonly #onChange: ((state: MemoryClusterState) => void) | undefined;
  /** The same records as state.nodes, by name (the state stays a plain array so that it serialises as it is). */
  readonly #byName: Map<string, NodeRecord>;
  /** Nodes cordoned by patchpilot right now (derived from the state, kept as a count so a cordon stays O(1)). */
  #cordonedByUs: number;

  constructor(state: MemoryClusterState, options: MemoryClusterOptions) {
    this.#state = state;
    this.#clock = options.clock;
    this.#onChange = options.onChange;
    this.#byName = new Map(state.nodes.map((n) => [n.name, n]));
    this.#cordonedByUs = state.nodes.filter((n) => n.unschedulable && n.annotations[ANNOTATIONS.cordonedBy] !== undefined).length;
  }

  static create(name: string, nodes: readonly MemoryNodeSpec[], options: MemoryClusterOptions): MemoryCluster {
    return new MemoryCluster(initialState(name, nodes), options);
  }

  get name(): string {
    return this.#state.name;
  }

  /** The live state; tests read it to check invariants. */
  get state(): Readonly<MemoryClusterState> {
    return this.#state;
  }

  addNode(spec: MemoryNodeSpec): void {
    if (this.#byName.has(spec.name)) throw new Error(`node ${spec.name} already exists in cluster ${this.name}`);
    const record = nodeRecord(spec);
    this.#state.nodes.push(record);
    this.#byName.set(record.name, record);
    this.#changed();
  }

  async listNodes(): Promise<ClusterNode[]> {
    return this.#state.nodes.map((n) => this.#view(n));
  }

  async getNode(name: string): Promise<ClusterNode | null> {
    const node = this.#find(name);
    return node ? this.#view(node) : null;
  }

  async cordon(name: string, owner: string, _signal?: AbortSignal, fence?: Fence): Promise<CordonResult> {
    const node = this.#require(name);
    this.#maybeApiError(node);
    if (node.unschedulable) return node.annotations[ANNOTATIONS.cordonedBy] === owner ? 'already-ours' : 'foreign';
    node.unschedulable = true;
    node.annotations[ANNOTATIONS.cordonedBy] = owner;
    if (fence) node.annotations[ANNOTATIONS.cordonGeneration] = String(fence.generation);
    this.#cordonedByUs += 1;
    this.#state.maxCordonedByUs = Math.max(this.#state.maxCordonedByUs, this.#cordonedByUs);
    this.#changed();
    return 'cordoned';
  }

  async uncordon(name: string, owner: string): Promise<UncordonResult> {
    const node = this.#require(name);
    this.#maybeApiError(node);
    if (!node.unschedulable) return 'not-cordoned';
    if (node.annotations[ANNOTATIONS.cordonedBy] !== owner) return 'not-ours';
    node.unschedulable = false;
    delete node.annotations[ANNOTATIONS.cordonedBy];
    delete node.annotations[ANNOTATIONS.cordonGeneration];
    this.#cordonedByUs -= 1;
    this.#changed();
    return 'uncordoned';
  }

  async drain(name: string, options: DrainOptions): Promise<DrainResult> {
    const node = this.#require(name);
    if (node.behaviour.drainBlocked) {
      // Every other pod goes; the last one's PodDisruptionBudget never allows it.
      await sleep(this.#clock, Math.max(0, options.giveUpAt - this.#clock.now()), options.signal);
      return {
        evicted: 3,
        blocked: [{ pod: 'web-0', namespace: 'shop', reason: 'PodDisruptionBudget shop/web allows 0 disruptions (1 of 1 replicas required)' }],
      };
    }
    await sleep(this.#clock, node.timings.drainMs, options.signal);
    return { evicted: 4, blocked: [] };
  }

  async startPatchJob(spec: PatchJobSpec): Promise<{ jobName: string; created: boolean }> {
    const node = this.#require(spec.node);
    // This run's Job, started again after a crash, is reused; an earlier run's finished Job bearing the name is replaced.
    const existing = this.#state.jobs[spec.jobName];
    if (existing?.runId === spec.runId) return { jobName: spec.jobName, created: false };
    // Another run's Job of the same patch (a holder that lost the cluster mid-node): waited for, or its report read,
    // unless it failed (the same rule as the Kubernetes adapter's).
    const failed = existing !== undefined && (existing.diesWithoutReport || existing.report.result === 'failed');
    if (existing && existing.hash === spec.hash && existing.downloadOnly === spec.downloadOnly && !failed) return { jobName: spec.jobName, created: false };
    this.#maybeApiError(node);
    const report = spec.reportOnly ? scanReport(node.behaviour) : defaultReport(node.behaviour);
    const durationMs = spec.reportOnly ? node.timings.scanMs : spec.downloadOnly ? node.timings.prefetchMs : node.timings.patchMs;
    this.#state.jobs[spec.jobName] = {
      name: spec.jobName,
      node: spec.node,
      runId: spec.runId,
      createdAt: this.#clock.now(),
      durationMs,
      downloadOnly: spec.downloadOnly,
      report: { ...report, durationSeconds: Math.round(durationMs / 1000) },
      diesWithoutReport: node.behaviour.jobDiesWithoutReport === true,
      hash: spec.hash,
      ...(spec.generation !== undefined ? { generation: spec.generation } : {}),
    };
    if (!spec.downloadOnly && !spec.reportOnly) {
      const key = `${spec.node}@${spec.hash}`;
      this.#state.patchJobsCreated[key] = (this.#state.patchJobsCreated[key] ?? 0) + 1;
    }
    this.#changed();
    return { jobName: spec.jobName, created: true };
  }

  /** MemoryCluster models no pods: nothing blocks, and a soak only watches the nodes' Ready condition. */
  async unhealthyNodes(): Promise<NodeHealth[]> {
    return unhealthyOf(await this.listNodes());
  }

  async listPods(): Promise<PodInfo[]> {
    return [];
  }

  async controlPlaneReady(): Promise<{ ready: boolean; detail: string }> {
    return { ready: true, detail: 'ok' };
  }

  async scanNode(spec: ScanSpec, signal: AbortSignal): Promise<AgentReport> {
    const job = scanJobSpec(spec);
    await this.startPatchJob(job);
    return this.awaitAgentReport(job.jobName, signal);
  }

  async awaitAgentReport(jobName: string, signal: AbortSignal): Promise<AgentReport> {
    const job = this.#state.jobs[jobName];
    if (!job) throw new EffectError('JOB_FAILED', `job ${jobName} does not exist`);
    const remaining = job.createdAt + job.durationMs - this.#clock.now();
    if (remaining > 0) await sleep(this.#clock, remaining, signal);
    if (job.diesWithoutReport) throw new EffectError('JOB_FAILED', `job ${jobName}: the agent pod exited without a report`);
    return job.report;
  }

  async reboot(name: string, key: string): Promise<void> {
    const node = this.#require(name);
    if (node.rebootKeys.includes(key)) return;
    node.rebootKeys.push(key);
    node.ready = false;
    node.backAt = node.behaviour.neverRejoins ? null : this.#clock.now() + node.timings.rebootMs;
    this.#changed();
  }

  async awaitReady(name: string, notBootId: string, signal: AbortSignal): Promise<ClusterNode> {
    for (;;) {
      const node = this.#require(name);
      const view = this.#view(node);
      if (view.ready && view.bootId !== notBootId) return view;
      if (node.backAt === null) return untilAborted(signal);
      await sleep(this.#clock, Math.max(0, node.backAt - this.#clock.now()), signal);
    }
  }

  async patchNodeMetadata(name: string, patch: MetadataPatch): Promise<void> {
    const node = this.#require(name);
    this.#maybeApiError(node);
    applyMetadataPatch(node, patch);
    this.#changed();
  }

  async acquireLease(request: LeaseRequest): Promise<LeaseResult> {
    const { result, lease } = claimLease(this.#state.lease, request, this.#clock.now());
    if (result.acquired) {
      this.#state.lease = lease;
      this.#changed();
    }
    return result;
  }

  async renewLease(request: LeaseRequest): Promise<LeaseResult> {
    return this.acquireLease(request);
  }

  readonly auditAnchorLocation = 'the in-memory cluster';

  async writeAuditAnchor(storeId: string, anchor: StoredAuditAnchor): Promise<void> {
    const anchors = (this.#state.auditAnchors ??= {});
    if ((anchors[storeId]?.seq ?? -1) >= anchor.seq) return;
    anchors[storeId] = anchor;
    this.#changed();
  }

  async readAuditAnchor(storeId: string): Promise<StoredAuditAnchor | null> {
    return this.#state.auditAnchors?.[storeId] ?? null;
  }

  async releaseLease(_name: string, holder: string): Promise<void> {
    if (this.#state.lease?.holder === holder) {
      this.#state.lease = releasedLease(this.#state.lease, holder, this.#clock.now());
      this.#changed();
    }
  }

  #find(name: string): NodeRecord | undefined {
    return this.#byName.get(name);
  }

  #require(name: string): NodeRecord {
    const node = this.#find(name);
    if (!node) throw new EffectError('NODE_GONE', `node "${name}" does not exist in cluster ${this.#state.name}`);
    this.#settleReboot(node);
    return node;
  }

  /** A reboot finishes by itself once its time has come; nobody has to call anything. */
  #settleReboot(node: NodeRecord): void {
    if (node.backAt === null || this.#clock.now() < node.backAt) return;
    node.backAt = null;
    node.ready = true;
    node.bootCount += 1;
    if (node.behaviour.kubeletAfterReboot) node.kubeletVersion = node.behaviour.kubeletAfterReboot;
    this.#changed();
  }

  #maybeApiError(node: NodeRecord): void {
    if ((node.behaviour.apiErrors ?? 0) <= 0) return;
    node.behaviour.apiErrors = (node.behaviour.apiErrors ?? 0) - 1;
    this.#changed();
    throw new EffectError('API_ERROR', `HTTP 500 from the API server while updating node ${node.name}`, true);
  }

  #view(node: NodeRecord): ClusterNode {
    this.#settleReboot(node);
    return {
      name: node.name,
      labels: { ...node.labels },
      annotations: { ...node.annotations },
      unschedulable: node.unschedulable,
      ready: node.ready,
      bootId: `${node.name}-boot-${node.bootCount}`,
      kubeletVersion: node.kubeletVersion,
      osImage: node.osImage,
    };
  }

  #changed(): void {
    this.#onChange?.(this.#state);
  }
}
