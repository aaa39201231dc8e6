/** Records the store reads and writes. Timestamps are epoch milliseconds chosen by the caller. */

/** `blocked`: waiting for the health gate or a blocker (the run's reason says which) before the next node starts. */
export type RunStatus = 'scheduled' | 'awaiting-approval' | 'selecting' | 'rolling' | 'paused' | 'blocked' | 'cancelling' | 'done';
export type RunOutcome = 'succeeded' | 'partial' | 'halted' | 'failed' | 'cancelled';

export interface NewRun {
  id: string;
  cluster: string;
  hash: string;
  plan: unknown;
  trigger: unknown;
  requestedBy: string;
  createdAt: number;
}

export interface RunRecord extends NewRun {
  status: RunStatus;
  outcome: RunOutcome | null;
  reason: string | null;
  queue: string[] | null;
  /** When the run record itself last changed (status, outcome, queue...); node progress does not move it. */
  updatedAt: number;
  finishedAt: number | null;
}

export type NodeRunResult =
  | 'pending'
  | 'in-progress'
  | 'patched'
  | 'no-updates'
  | 'failed'
  | 'cancelled'
  | 'skipped'
  | 'not-started';

export interface NodeRunRecord {
  runId: string;
  node: string;
  position: number;
  phase: string;
  result: NodeRunResult;
  errorCode: string | null;
  errorMessage: string | null;
  report: unknown | null;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
}

export interface AuditEntry {
  at: number;
  actor: string;
  action: string;
  runId?: string | null;
  node?: string | null;
  details?: Record<string, unknown>;
}

export interface AuditRow {
  seq: number;
  at: number;
  actor: string;
  action: string;
  runId: string | null;
  node: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** Absent fields are left unchanged; `null` clears a nullable field. */
export interface RunPatch {
  status?: RunStatus;
  outcome?: RunOutcome | null;
  reason?: string | null;
  queue?: string[];
  finishedAt?: number | null;
}

/** Everything one engine transition produced; written in ONE transaction. */
export interface CommitBatch {
  runId: string;
  at: number;
  run?: RunPatch;
  nodeRuns?: Omit<NodeRunRecord, 'runId' | 'updatedAt'>[];
  snapshots?: { actorId: string; snapshot: unknown }[];
  deleteSnapshots?: string[];
  audit?: AuditEntry[];
}

export type Decision = 'approved' | 'rejected';
export type DecisionResult = { ok: true } | { ok: false; reason: string; decidedBy?: string; decision?: Decision };

/** The decision that won the compare-and-set for a run. */
export interface ApprovalRecord {
  runId: string;
  approver: string;
  decision: Decision;
  at: number;
  comment: string | null;
}

export interface SnapshotRecord {
  actorId: string;
  snapshot: unknown;
  /** 1 on the first write, incremented by each later write of the same actor's snapshot. */
  version: number;
  updatedAt: number;
}

export interface ListRunsOptions {
  cluster?: string;
  /** Only runs whose status is not 'done'. */
  active?: boolean;
  limit?: number;
}

export interface AuditQuery {
  runId?: string;
  /** Rows with a seq strictly greater than this; for paging. */
  afterSeq?: number;
  limit?: number;
}

export interface AuditProblem {
  seq: number;
  problem: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Rows read from the audit table. */
  checked: number;
  /** The newest seq that audit_head records; null while the log is empty. */
  headSeq: number | null;
  problems: AuditProblem[];
}

export interface OpenStoreOptions {
  /** Create the database file if it does not exist (default true). The directory must exist either way. */
  create?: boolean;
  /** Clock for bookkeeping the caller does not time itself (when a migration was applied). Default Date.now. */
  now?: () => number;
  /** How long to wait for another process's write lock before failing with DB_LOCKED (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Never write (commands that only read): the file must exist and be up to date; works on a read-only filesystem. */
  readOnly?: boolean;
}

export interface ConnectionSettings {
  journalMode: string;
  pageSize: number;
  walAutocheckpointPages: number;
  synchronous: 'off' | 'normal' | 'full' | 'extra' | 'unknown';
  foreignKeys: boolean;
  busyTimeoutMs: number;
}

/** One node's findings in one scan (`patchpilot scan`). */
export interface ScanRecord {
  scanId: string;
  cluster: string;
  node: string;
  at: number;
  /** null when the scan failed. */
  pending: number | null;
  packages: string[];
  rebootRequired: boolean | null;
  error: string | null;
}

/**
 * A cluster's schedule of runs. `spec` is the schedule as the engine's schema reads it (src/engine/schedule.ts); the
 * store keeps it as given. `channel` is where each run asks for approval, `requestedBy` who set it (each run's
 * requester).
 */
export interface ScheduleRecord {
  cluster: string;
  spec: unknown;
  channel: string;
  requestedBy: string;
  updatedAt: number;
}

/** A notification every retry failed to deliver. `body` is the JSON that was sent (it carries no secret). */
export interface DeadLetter {
  id: number;
  sink: string;
  event: string;
  body: string;
  attempts: number;
  lastError: string;
  failedAt: number;
}
/** The process driving a run (src/service/holder.ts identity) and its last heartbeat. */
export interface RunOwner {
  owner: string;
  claimedAt: number;
  heartbeatAt: number;
}

export type RunClaim = { ok: true; tookOverFrom: RunOwner | null } | { ok: false; owner: RunOwner };
