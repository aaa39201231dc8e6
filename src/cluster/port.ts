/**
 * ClusterPort: everything patchpilot needs from a cluster, and nothing more. Implementations: MemoryCluster (tests),
 * the simulator (src/sim) and the Kubernetes adapter. Every method is idempotent, because after a crash the engine
 * repeats the step it was in: a second cordon, drain, job start or reboot with the same key must change nothing.
 */
import type { DrainOutcome, PatchJobInput } from '../engine/effects.ts';
import type { AgentReport } from '../engine/report.ts';

export interface ClusterNode {
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  unschedulable: boolean;
  ready: boolean;
  bootId: string;
  kubeletVersion: string;
  osImage: string;
}

export interface DrainOptions {
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
}

export interface LeaseRequest {
  name: string;
  holder: string;
  durationSeconds: number;
}

export type LeaseResult = { acquired: true } | { acquired: false; holder: string; expiresAt: number };

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

export interface ClusterPort {
  readonly name: string;
  listNodes(signal?: AbortSignal): Promise<ClusterNode[]>;
  /** null when the node does not exist. */
  getNode(name: string, signal?: AbortSignal): Promise<ClusterNode | null>;
  /** Marks the node unschedulable and records `owner` in the cordoned-by annotation, in one patch. */
  cordon(name: string, owner: string, signal?: AbortSignal): Promise<CordonResult>;
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
  /** Reboots the node once per key. */
  reboot(name: string, key: string, signal?: AbortSignal): Promise<void>;
  /** Waits until the node is Ready with a boot id other than `notBootId`. */
  awaitReady(name: string, notBootId: string, signal: AbortSignal): Promise<ClusterNode>;
  patchNodeMetadata(name: string, patch: MetadataPatch, signal?: AbortSignal): Promise<void>;
  acquireLease(request: LeaseRequest): Promise<LeaseResult>;
  renewLease(request: LeaseRequest): Promise<boolean>;
  releaseLease(name: string, holder: string): Promise<void>;
}
