/**
 * One cluster as a front end serves it (the bot makes one per cluster): its Orchestrator (previews, runs, decisions,
 * commands), its Scheduler, its status and scans, its run history and its audit log. A front end reaches the store and
 * the cluster only through this and the functions that take the target (doctor, unstick, reset).
 */
import type { TimerId } from '../engine/clock.ts';
import type { ApprovalRecord, NodeRunRecord, RunRecord } from '../store/types.ts';
import { readClusterStatus, triggerOfRun, type ClusterStatus } from './fleet-status.ts';
import { Orchestrator, type MembershipResolver, type RunEvent } from './orchestrator.ts';
import { scanCluster, type ScanSummary } from './scan.ts';
import { Scheduler, type SchedulerOptions } from './schedules.ts';
import type { ClusterTarget } from './targets.ts';

export interface ClusterServiceOptions {
  /** Resolves group approvers (the bot: Slack user groups). */
  membership?: MembershipResolver;
  onEvent?: (event: RunEvent) => void;
  /** How a scheduled fire asks for its run, and who hears of fires. */
  schedule: Pick<SchedulerOptions, 'fire' | 'onEvent'>;
}

export interface AuditRecord {
  actor: string;
  action: string;
  runId?: string | null;
  details: Record<string, unknown>;
}

export class ClusterService {
  readonly target: ClusterTarget;
  readonly orchestrator: Orchestrator;
  readonly scheduler: Scheduler;
  readonly #scans: { timer: TimerId | undefined; stopped: boolean } = { timer: undefined, stopped: false };

  constructor(target: ClusterTarget, options: ClusterServiceOptions) {
    this.target = target;
    this.orchestrator = new Orchestrator({
      cluster: target.cluster,
      clock: target.clock,
      store: target.store,
      ...(options.membership ? { membership: options.membership } : {}),
      ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    });
    this.scheduler = new Scheduler({ cluster: target.name, store: target.store, clock: target.clock, ...options.schedule });
  }

  get name(): string {
    return this.target.name;
  }

  now(): number {
    return this.target.clock.now();
  }

  /** Whether runs, decisions and the audit log are kept (a store); without, a run lives in memory only. */
  get keepsHistory(): boolean {
    return this.target.store !== null;
  }

  /** Whether the run is in this cluster's history. */
  hasRun(runId: string): boolean {
    return this.target.store?.getRun(runId) != null;
  }

  /** The decision that won for the run, if any. */
  decision(runId: string): ApprovalRecord | null {
    return this.target.store?.getDecision(runId) ?? null;
  }

  /** Appends to the audit log, at the cluster's time (nothing without a store). */
  audit(record: AuditRecord): void {
    this.target.store?.appendAudit({ at: this.now(), actor: record.actor, action: record.action, runId: record.runId ?? null, details: record.details });
  }

  /** The audit log's head as `SEQ:HASH` (what `patchpilot audit verify --anchor` checks), or null while it is empty. */
  auditHead(): string | null {
    const head = this.target.store?.auditHead();
    return head && head.seq > 0 ? `${head.seq}:${head.hash}` : null;
  }

  /** The cluster's runs, newest first. */
  runs(limit: number): RunRecord[] {
    return this.target.store?.listRuns({ cluster: this.name, limit }) ?? [];
  }

  nodeRuns(runId: string): NodeRunRecord[] {
    return this.target.store?.getNodeRuns(runId) ?? [];
  }

  /** The cluster's status, read from its nodes (src/service/fleet-status.ts). */
  status(signal?: AbortSignal): Promise<ClusterStatus> {
    const store = this.target.store;
    return readClusterStatus(this.target.cluster, { labelKey: this.target.plan.labelKey, now: this.now(), ...(signal ? { signal } : {}), ...(store ? { triggerOf: (id: string) => triggerOfRun(store, id) } : {}) });
  }

  /** Scans every Linux node (the agent report-only) and records the findings. */
  scan(): Promise<ScanSummary> {
    const { cluster, plan, clock, store } = this.target;
    return scanCluster({ cluster, plan, clock, store });
  }

  /**
   * Scans the cluster every `everyMs` on its clock until `stop`, the next scan armed when one ends (never two at
   * once); `onScanned` hears each outcome.
   */
  scanEvery(everyMs: number, onScanned: (outcome: { summary: ScanSummary } | { error: unknown }) => void): void {
    if (this.#scans.stopped) return;
    this.#scans.timer = this.target.clock.setTimeout(() => {
      this.scan()
        .then((summary) => onScanned({ summary }), (error: unknown) => onScanned({ error }))
        .finally(() => this.scanEvery(everyMs, onScanned));
    }, everyMs);
  }

  /** Stops the schedule's and the scans' timers (shutdown); runs in flight are the orchestrator's. */
  stop(): void {
    this.scheduler.stop();
    this.#scans.stopped = true;
    if (this.#scans.timer !== undefined) this.target.clock.clearTimeout(this.#scans.timer);
  }
}
