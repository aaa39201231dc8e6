/**
 * ClusterPort: everything patchpilot needs from a cluster, and nothing more. Implementations: MemoryCluster (tests),
 * the simulator (src/sim) and the Kubernetes adapter. Every method is idempotent, because after a crash the engine
 * repeats the step it was in: a second cordon, drain, job start or reboot with the same key must change nothing.
 */
import type { DrainOutcome, NodeHealth, PatchJobInput } from '../engine/effects.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import type { DrainFlags } from './drain-rules.ts';
import type { AgentReport } from '../engine/report.ts';
import type { PaletteArtifacts } from './palette.ts';

export interface ClusterNode {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  unschedulable: boolean;
  ready: boolean;
  bootId: string;
  kubeletVersion: string;
  osImage: string;
  /** status.nodeInfo.kernelVersion, where the adapter knows it. */
  kernelVersion?: string;
}

export interface DrainOptions extends DrainFlags {
  gracePeriodSeconds: number;
  podSelector: string;
  /** Clock time at which to stop retrying refused evictions and return what refused them. */
  giveUpAt: number;
  signal: AbortSignal;
}

export type DrainResult = DrainOutcome;

/** What the engine asks of the patch (PatchJobInput), plus the Job's name and whether it only downloads. */
export interface PatchJobSpec extends PatchJobInput {
  jobName: string;
  /** Download only (prefetch): change nothing on the node. */
  downloadOnly: boolean;
  /**
   * Report only (scan): the agent's `--dry-run`, which lists the updates that would be applied and whether a reboot
   * would follow, and changes nothing on the node (no holds, no package lists, no cache).
   */
  reportOnly?: boolean;
  /** The lease generation the Job was decided under (label patchpilot.io/lease-generation). */
  generation?: number;
}

/**
 * What a scan needs: which node, and the package policy the patch would apply (security only, holds). `runId` and
 * `hash` name the Job (a scan of the same node for the same hash by the same run is found again after a crash).
 */
export type ScanSpec = Pick<PatchJobInput, 'runId' | 'node' | 'hash' | 'mode' | 'securityOnly' | 'holdPackages' | 'lockTimeoutSeconds'>;

export interface LeaseRequest {
  name: string;
  holder: string;
  durationSeconds: number;
}

/**
 * The answer to a lease request. `generation` is the fencing token: the Lease's leaseTransitions once we hold it, so
 * it grows with every change of holder and a write decided under an older one is recognisably stale.
 */
export type LeaseResult =
  | {
      acquired: true;
      generation: number;
      /**
       * Who the record named before this answer ('' when it was released or new). A resumed run compares it with the
       * owner it took over from: anyone else in between may have acted on the run's nodes.
       */
      previousHolder: string;
    }
  | {
      acquired: false;
      holder: string;
      /** When the holder took the lease (its acquireTime), or null when the record does not say. */
      since: number | null;
      /**
       * When we will consider the lease expired unless we see it renewed first: the time we last saw the record
       * change plus its duration, on our own clock (never the holder's renewTime against our wall clock).
       */
      expiresAt: number;
      /** Something wrong with the record that we worked around (a negative duration, a missing spec), or null. */
      problem?: string | null;
    };

/** Where a cluster-changing effect was decided: under which lease generation (fencing), for which run. */
export interface Fence {
  generation: number;
}

export type UncordonResult = 'uncordoned' | 'not-cordoned' | 'not-ours';
export type CordonResult = 'cordoned' | 'already-ours' | 'foreign';

export interface MetadataPatch {
  labels?: Record<string, string | null>;
  annotations?: Record<string, string | null>;
  /**
   * Label values the patch must not overwrite: a label in `labels` whose current value equals `keepLabelValues[key]`
   * is left as it is (an operator's "disabled" set while the node was in maintenance). One request: the Kubernetes
   * adapter sends a JSON Patch whose `test` operations fail with 422 in that case, and then drops those labels.
   */
  keepLabelValues?: Record<string, string>;
}

/** A pod as the soak and the blockers see it. */
export interface PodInfo {
  namespace: string;
  name: string;
  node: string | null;
  /** Pending, Running, Succeeded, Failed, Unknown. */
  phase: string;
  /** Its Ready condition is True. */
  ready: boolean;
  /** Owned by a DaemonSet, or a mirror pod: stays on a cordoned node. */
  daemon: boolean;
}

export interface PodQuery {
  /** Label selector (kubectl syntax); empty: every pod. */
  selector?: string;
  /** Only the pods bound to this node. */
  node?: string;
}

export interface ClusterPort {
  readonly name: string;
  listNodes(signal?: AbortSignal): Promise<ClusterNode[]>;
  /** The nodes that are NotReady or unschedulable (the health gate's question), from one list of the nodes. */
  unhealthyNodes(signal?: AbortSignal): Promise<NodeHealth[]>;
  /** null when the node does not exist. */
  getNode(name: string, signal?: AbortSignal): Promise<ClusterNode | null>;
  /** Marks the node unschedulable and records `owner` in the cordoned-by annotation, in one patch. */
  cordon(name: string, owner: string, signal?: AbortSignal, fence?: Fence): Promise<CordonResult>;
  /** Lifts a cordon only if `owner` made it: someone else's cordon is never touched. */
  uncordon(name: string, owner: string, signal?: AbortSignal): Promise<UncordonResult>;
  /**
   * Evicts every pod but DaemonSet and mirror pods through the Eviction API, so PodDisruptionBudgets are honoured;
   * refused evictions are retried until `giveUpAt`, and then returned in `blocked` (the PDB outcome).
   */
  drain(name: string, options: DrainOptions): Promise<DrainResult>;
  /**
   * Creates the patch Job unless this run's Job (same name, same run) exists, which is then reused (a step repeated
   * after a crash). A finished Job of an earlier run that bears the same name is replaced: Palette's names carry no
   * hash, and a node that failed is retried by the next run of the same trigger, with the same hash.
   */
  startPatchJob(spec: PatchJobSpec, signal?: AbortSignal): Promise<{ jobName: string; created: boolean }>;
  /** Waits for the Job's agent report (its last log line). */
  awaitAgentReport(jobName: string, signal: AbortSignal): Promise<AgentReport>;
  /**
   * Runs the agent report-only on the node as a Job (`--dry-run`, see `scanJobSpec`) and returns its report: result
   * `patched` when updates apply (listed in `upgraded` as they would be), `no-updates` when none do, `failed` when the
   * agent could not tell (a repository unreachable); `rebootRequired` says whether applying them would need a reboot.
   * Nothing on the node changes. Idempotent like startPatchJob: this run's scan Job is reused.
   */
  scanNode(spec: ScanSpec, signal: AbortSignal): Promise<AgentReport>;
  /** Reboots the node once per key. */
  reboot(name: string, key: string, signal?: AbortSignal): Promise<void>;
  /** Waits until the node is Ready with a boot id other than `notBootId`. */
  awaitReady(name: string, notBootId: string, signal: AbortSignal): Promise<ClusterNode>;
  patchNodeMetadata(name: string, patch: MetadataPatch, signal?: AbortSignal): Promise<void>;
  /** Pods in every namespace matching the query (the blockers' selector, a node's pods for its soak). */
  listPods(query: PodQuery, signal?: AbortSignal): Promise<PodInfo[]>;
  /** The control plane's readiness endpoint (`GET /readyz`): ready, or what it answered. */
  controlPlaneReady(signal?: AbortSignal): Promise<{ ready: boolean; detail: string }>;
  acquireLease(request: LeaseRequest): Promise<LeaseResult>;
  /** The same decision as acquireLease (a holder renews by acquiring again); the generation tells it nobody else held it meanwhile. */
  renewLease(request: LeaseRequest): Promise<LeaseResult>;
  releaseLease(name: string, holder: string): Promise<void>;
  /**
   * Installs the fence every cluster write must pass: `check` returns null while the lease is valid by our own clock,
   * else why not; a write is then refused (the Kubernetes adapter checks it right before each mutating request, so a
   * process that was paused while its lease ran out sends nothing when it wakes). Optional: in-process clusters are
   * fenced by the service's wrapper alone. null removes the fence (the lease was given up; tools that take no lease,
   * such as reset, write as before).
   */
  guardWrites?(check: (() => string | null) | null): void;
  /**
   * Keeps a database's audit head in the cluster (outside the database's reach), forward only. Optional: a cluster
   * without it is simply not an anchor.
   */
  writeAuditAnchor?(storeId: string, anchor: StoredAuditAnchor, signal?: AbortSignal): Promise<void>;
  /** The anchor written for a database, null when none, 'unreadable' when the record is not one. */
  readAuditAnchor?(storeId: string, signal?: AbortSignal): Promise<StoredAuditAnchor | 'unreadable' | null>;
  /** Where the anchors are kept, for messages ("ConfigMap os-patch/patchpilot-audit-prod"). */
  readonly auditAnchorLocation?: string;
}

/** A database's audit head as kept in a cluster. */
export interface StoredAuditAnchor {
  seq: number;
  hash: string;
  /** When it was written (clock ms). */
  at: number;
}

/** One of patchpilot's Jobs as `doctor` sees it: its state, and the agent's report when its pod left one. */
export interface DiagnosticJob {
  name: string;
  /** The node it ran on (from its annotation), or null when it carries none. */
  node: string | null;
  runId: string | null;
  /** `patch`, `prefetch` or `reboot` (the patchpilot.io/action label). */
  action: string;
  status: 'running' | 'succeeded' | 'failed';
  startedAt: number | null;
  finishedAt: number | null;
  /** The Failed condition's reason and message (DeadlineExceeded, BackoffLimitExceeded), or null. */
  failure: string | null;
  /** The agent report (the log's last JSON line), or null: still running, no pod, or the agent printed none. */
  report: AgentReport | null;
  /** Log lines worth showing: gpg/keyserver/lock lines and the last few lines, without the report. */
  logLines: string[];
}

export interface LeaseInfo {
  name: string;
  /** null when released. */
  holder: string | null;
  renewedAt: number | null;
  /** renewTime + leaseDurationSeconds; null when never renewed. */
  expiresAt: number | null;
}

export interface AgentConfigMapInfo {
  name: string;
  namespace: string;
  /** The script digest the ConfigMap announces, or null when the ConfigMap does not exist. */
  sha256: string | null;
  /** The digest of the script this build of patchpilot ships. */
  expectedSha256: string;
}

export interface DeploymentInfo {
  name: string;
  namespace: string;
  replicas: number;
  readyReplicas: number;
  /** The Available condition's message when it is not True. */
  problem: string | null;
}

/**
 * What `doctor` reads beyond ClusterPort: patchpilot's own objects in its namespace. Read-only; every method answers
 * what is there (null or empty when it is not) rather than failing on a missing object.
 */
export interface DiagnosticsPort {
  /** The namespace patchpilot's Jobs, Lease, ConfigMap and Deployment live in. */
  readonly namespace: string;
  /** patchpilot's Jobs (label app.kubernetes.io/managed-by=patchpilot), oldest first, with the reports of finished ones. */
  recentJobs(signal?: AbortSignal): Promise<DiagnosticJob[]>;
  readLease(name: string, signal?: AbortSignal): Promise<LeaseInfo | null>;
  agentConfigMap(signal?: AbortSignal): Promise<AgentConfigMapInfo>;
  /** The orchestrator's Deployment (deploy/deployment.yaml), or null when it is not deployed. */
  deployment(signal?: AbortSignal): Promise<DeploymentInfo | null>;
  /** Palette's own patching objects (its SpectroSystemTasks, crony Jobs and logs, agent pods), or why there are none. */
  paletteArtifacts(signal?: AbortSignal): Promise<PaletteArtifacts>;
}

/** What `unhealthyNodes` answers from a list of the nodes: those NotReady or unschedulable, as the health gate sees them. */
export function unhealthyOf(nodes: readonly ClusterNode[]): NodeHealth[] {
  return nodes
    .filter((n) => !n.ready || n.unschedulable)
    .map((n) => ({ name: n.name, ready: n.ready, unschedulable: n.unschedulable, cordonedBy: n.annotations[ANNOTATIONS.cordonedBy] ?? null }));
}
