/**
 * The durable state of patchpilot: runs, per-node progress, approvals, engine snapshots and the audit log, in one
 * SQLite file. Every method is synchronous; each write method is one IMMEDIATE transaction, so several processes may
 * share a file (a second writer waits up to the busy timeout instead of failing on a lock upgrade).
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { auditHash, canonicalJson, verifyAuditChain } from './audit.ts';
import type { AuditHead, StoredAuditRow } from './audit.ts';
import { A_LIST_OF_NAMES, A_TRIGGER, AN_OBJECT, readJson, readNullableJson, readNullableTime, readTime } from './columns.ts';
import { corruptDatabaseError, shellQuote, StoreError, translateSqliteError } from './errors.ts';
import { applyMigrations, LATEST_SCHEMA_VERSION } from './migrations.ts';
import { describeErrno } from '../io/user-file.ts';
import type {
  RunClaim,
  RunOwner,
  ApprovalRecord,
  AuditEntry,
  AuditQuery,
  AuditRow,
  AuditVerification,
  CommitBatch,
  ConnectionSettings,
  DeadLetter,
  Decision,
  DecisionResult,
  ListRunsOptions,
  NewRun,
  NodeRunRecord,
  OpenStoreOptions,
  RunOutcome,
  RunRecord,
  RunStatus,
  ScanRecord,
  ScheduleRecord,
  SnapshotRecord,
} from './types.ts';

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const PAGE_SIZE = 1024;
const WAL_AUTOCHECKPOINT_PAGES = 16_384;
const SQLITE_MAGIC = 'SQLite format 3\0';

/**
 * Opens (creating if allowed) the database at `path` and brings its schema up to date. `':memory:'` gives a private
 * in-memory database. Mistakes in the path or the file are reported as StoreErrors before anything is written.
 */
export function openStore(path: string, opts: OpenStoreOptions = {}): Store {
  const inMemory = path === ':memory:';
  if (opts.readOnly && !inMemory) return openReadOnly(path);
  if (!inMemory) checkPathBeforeOpening(path, opts.create ?? true);

  let db: Database.Database;
  try {
    db = new Database(path, { timeout: opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
  } catch (error) {
    throw cannotOpenError(path, error);
  }
  try {
    // Cheap integrity check before anything writes: a linear scan without the index cross-checks of
    // integrity_check, reporting only the first problem. It turns a truncated file into a clear error up front
    // instead of a failure in the middle of a run.
    const integrity = db.pragma('quick_check(1)', { simple: true });
    if (integrity !== 'ok') throw corruptDatabaseError(path, new Error(String(integrity)));
    refuseForeignDatabase(db, path);

    // Takes effect only while the file is still empty (a new database); an existing one keeps its page size.
    // Every commit appends each page it touches to the WAL, and a typical engine commit touches about seven (run,
    // node run, two snapshots, audit row, audit index, audit head) while changing a few hundred bytes in each:
    // 1 KB pages write about a third of the bytes 4 KB pages do. Measured on a 2-core VM: 4096 → ~14.5k,
    // 2048 → ~17.5k, 1024 → ~19.5k commits/s.
    db.pragma(`page_size = ${PAGE_SIZE}`);
    db.pragma('journal_mode = WAL');
    // In WAL mode, NORMAL skips the fsync at each commit but still writes the transaction to the WAL before
    // returning: a committed transaction survives the process crashing or being killed, and the file is never
    // corrupted. Only an OS crash or power loss can lose the last few commits; the engine's effects are idempotent
    // and re-observe the cluster on resume, so that is an acceptable price for the commit rate.
    db.pragma('synchronous = NORMAL');
    // Checkpoint when the WAL reaches 16 MB. Each checkpoint costs two fsyncs and copies pages back, which measured
    // about a tenth of a busy run's commit time at 4 MB; 16 MB of WAL is still quick to read and is truncated when
    // the last connection closes.
    db.pragma(`wal_autocheckpoint = ${WAL_AUTOCHECKPOINT_PAGES}`);
    db.pragma('foreign_keys = ON');
    applyMigrations(db, { dbPath: path, now: opts.now ?? Date.now });
    return new Store(db, path);
  } catch (error) {
    db.close();
    throw translateSqliteError(error, path);
  }
}

/**
 * For commands that only read (runs, audit verify/show): never writes, so it works on a read-only filesystem or a
 * file this user may only read. A WAL database cannot be opened read-only there without its -shm file (SQLite needs
 * to create one), so then the file is read into memory and opened from there: a snapshot of the last checkpoint,
 * which on a read-only filesystem is everything (no writer can be appending to a WAL on it).
 */
function openReadOnly(path: string): Store {
  checkPathBeforeOpening(path, false);
  const open = (source: string | Buffer) => {
    const db = new Database(source, { readonly: true, fileMustExist: true });
    try {
      const integrity = db.pragma('quick_check(1)', { simple: true });
      if (integrity !== 'ok') throw corruptDatabaseError(path, new Error(String(integrity)));
      return db;
    } catch (error) {
      db.close();
      throw error;
    }
  };
  let db: Database.Database;
  try {
    db = open(path);
  } catch (error) {
    if (!(error instanceof Database.SqliteError) || error.code !== 'SQLITE_CANTOPEN') throw translateSqliteError(error, path);
    try {
      const copy = readFileSync(path);
      // Bytes 18 and 19 say "WAL"; an in-memory copy has no WAL, so it is marked as a rollback-journal file.
      if (copy.length > 19) copy[18] = copy[19] = 1;
      db = open(copy);
    } catch (inner) {
      throw translateSqliteError(inner, path);
    }
  }
  try {
    refuseForeignDatabase(db, path);
    if (db.prepare<[], number>("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").pluck().get() === 0) {
      // An empty file (`: > x.db`) is a database with no tables: a command that only reads has nothing to read in it.
      throw new StoreError(
        'DB_NOT_A_DATABASE',
        `Database ${path} is an empty file, not a patchpilot database yet`,
        'Check the path passed with --db; a command that writes (demo, run) makes it a patchpilot database.',
      );
    }
    const version = db.prepare<[], number>('SELECT coalesce(max(version), 0) FROM schema_migrations').pluck().get() ?? 0;
    if (version !== LATEST_SCHEMA_VERSION) {
      throw new StoreError(
        version > LATEST_SCHEMA_VERSION ? 'DB_TOO_NEW' : 'DB_READONLY',
        `Database ${path} has schema version ${version}; this patchpilot reads version ${LATEST_SCHEMA_VERSION}`,
        version > LATEST_SCHEMA_VERSION
          ? 'A newer patchpilot wrote this database: upgrade patchpilot.'
          : 'Run any command that writes (demo, run) on it once where it is writable, to bring it up to date.',
      );
    }
    return new Store(db, path);
  } catch (error) {
    db.close();
    throw translateSqliteError(error, path);
  }
}

function checkPathBeforeOpening(path: string, create: boolean): void {
  const directory = dirname(resolve(path));
  const directoryStats = statOrUndefined(directory);
  if (directoryStats !== undefined && !directoryStats.isDirectory()) {
    throw new StoreError(
      'DB_DIR_MISSING',
      `Cannot open database ${path}: ${directory} is a file, not a directory`,
      'Pass --db with a path inside a directory.',
    );
  }
  if (directoryStats === undefined) {
    throw new StoreError(
      'DB_DIR_MISSING',
      `Cannot open database ${path}: directory ${directory} does not exist`,
      `Create it with mkdir -p ${shellQuote(directory)}, or pass --db PATH to use another location.`,
    );
  }
  const stats = statOrUndefined(path);
  if (stats === undefined) {
    if (create) return;
    throw new StoreError(
      'DB_NOT_FOUND',
      `Database ${path} does not exist`,
      'Check the path passed with --db; this command does not create a new database.',
    );
  }
  if (stats.isDirectory()) {
    throw new StoreError(
      'DB_CANNOT_OPEN',
      `Cannot open database ${path}: it is a directory`,
      'Pass --db with the path of a file, e.g. --db ' + shellQuote(`${path}/patchpilot.db`),
    );
  }
  if (!stats.isFile()) {
    // /dev/null, a FIFO, a socket: SQLite would fail later with "disk I/O error".
    throw new StoreError(
      'DB_CANNOT_OPEN',
      `Cannot open database ${path}: it is not a regular file`,
      'Pass --db with the path of a database file, or of a file that does not exist yet to create one.',
    );
  }
  // An empty file is a valid empty database; anything else must start with the SQLite header. Checked here rather
  // than left to SQLite so that nothing, not even a journal-mode switch, touches someone else's file.
  const header = readFileStart(path, SQLITE_MAGIC.length);
  if (header.length > 0 && header.toString('latin1') !== SQLITE_MAGIC) {
    throw new StoreError(
      'DB_NOT_A_DATABASE',
      `${path} is not a SQLite database`,
      'Pass --db with the path of a patchpilot database, or of a file that does not exist yet to create one.',
    );
  }
}

/** A missing file is undefined; a symlink loop, a path through a file or a denied directory is a StoreError. */
function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') return undefined;
    throw new StoreError(
      'DB_CANNOT_OPEN',
      `Cannot open database ${path}: it ${describeErrno(code) ?? `cannot be read (${code ?? String(error)})`}`,
      'Pass --db with the path of a database file, or of a file that does not exist yet to create one.',
      { cause: error },
    );
  }
}

function readFileStart(path: string, length: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    throw cannotOpenError(path, error);
  }
  try {
    const buffer = Buffer.alloc(length);
    return buffer.subarray(0, readSync(fd, buffer, 0, length, 0));
  } finally {
    closeSync(fd);
  }
}

function cannotOpenError(path: string, cause: unknown): StoreError {
  return new StoreError(
    'DB_CANNOT_OPEN',
    `Cannot open database ${path}: ${cause instanceof Error ? cause.message : String(cause)}`,
    'Check that this user may read and write the file and its directory.',
    { cause },
  );
}

/** A SQLite file with tables but no schema_migrations belongs to another program; migrating it would damage it. */
function refuseForeignDatabase(db: Database.Database, path: string): void {
  const tables = db.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
  // schema_migrations alone is no proof: another program may keep a table of that name (version only, say), and the
  // first migration's INSERT would then fail with SQLite's "has no column named name".
  const columns = tables.includes('schema_migrations') ? db.prepare<[], string>("SELECT name FROM pragma_table_info('schema_migrations')").pluck().all() : [];
  const ours = ['version', 'name', 'applied_at'].every((column) => columns.includes(column));
  if (tables.length > 0 && !ours) {
    throw new StoreError(
      'DB_NOT_A_DATABASE',
      `${path} is a SQLite database, but not a patchpilot one`,
      'Pass --db with the path of a patchpilot database, or of a file that does not exist yet to create one.',
    );
  }
}

/** The rows as SQLite returns them: the records, with their JSON columns still text. */
type RunRow = Omit<RunRecord, 'plan' | 'trigger' | 'queue'> & { planJson: string; triggerJson: string; queueJson: string | null };

type NodeRunRow = Omit<NodeRunRecord, 'report'> & { reportJson: string | null };

interface SnapshotRow {
  actorId: string;
  snapshotJson: string;
  version: number;
  updatedAt: number;
}

const RUN_COLUMNS = `id, cluster, hash, plan_json AS planJson, trigger_json AS triggerJson, requested_by AS requestedBy,
  status, outcome, reason, queue_json AS queueJson, created_at AS createdAt, updated_at AS updatedAt,
  finished_at AS finishedAt`;
const AUDIT_COLUMNS = `seq, at, actor, action, run_id AS runId, node, details_json AS detailsJson,
  prev_hash AS prevHash, hash`;
const NEWEST_FIRST = 'ORDER BY created_at DESC, id DESC';

/** Every statement the store runs, prepared once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    insertRun: db.prepare<{
      id: string;
      cluster: string;
      hash: string;
      planJson: string;
      triggerJson: string;
      requestedBy: string;
      createdAt: number;
    }>(`INSERT INTO runs (id, cluster, hash, plan_json, trigger_json, requested_by, status, created_at, updated_at)
        VALUES (@id, @cluster, @hash, @planJson, @triggerJson, @requestedBy, 'scheduled', @createdAt, @createdAt)`),
    selectRun: db.prepare<[string], RunRow>(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`),
    runExists: db.prepare<[string], number>('SELECT 1 FROM runs WHERE id = ?').pluck(),
    listRuns: db.prepare<[number], RunRow>(`SELECT ${RUN_COLUMNS} FROM runs ${NEWEST_FIRST} LIMIT ?`),
    listActiveRuns: db.prepare<[number], RunRow>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE status <> 'done' ${NEWEST_FIRST} LIMIT ?`,
    ),
    listClusterRuns: db.prepare<[string, number], RunRow>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE cluster = ? ${NEWEST_FIRST} LIMIT ?`,
    ),
    listActiveClusterRuns: db.prepare<[string, number], RunRow>(
      `SELECT ${RUN_COLUMNS} FROM runs WHERE cluster = ? AND status <> 'done' ${NEWEST_FIRST} LIMIT ?`,
    ),
    // One statement for every shape of RunPatch: a column is kept when its value (or its set* flag) says so.
    updateRun: db.prepare<{
      id: string;
      at: number;
      setOutcome: number;
      outcome: RunOutcome | null;
      setReason: number;
      reason: string | null;
      queueJson: string | null;
      setFinishedAt: number;
      finishedAt: number | null;
    }>(`UPDATE runs SET
          outcome = iif(@setOutcome, @outcome, outcome),
          reason = iif(@setReason, @reason, reason),
          queue_json = coalesce(@queueJson, queue_json),
          finished_at = iif(@setFinishedAt, @finishedAt, finished_at),
          updated_at = @at
        WHERE id = @id`),
    // The status has its own statement that writes only a real change: assigning it at all, even the same value,
    // rewrites the row's entry in the runs_active index, one more page in the WAL for every commit.
    updateRunStatus: db.prepare<[RunStatus, string, RunStatus]>(
      'UPDATE runs SET status = ? WHERE id = ? AND status <> ?',
    ),
    upsertNodeRun: db.prepare<NodeRunRow>(
      `INSERT INTO node_runs (run_id, node, position, phase, result, error_code, error_message, report_json,
                              started_at, finished_at, updated_at)
       VALUES (@runId, @node, @position, @phase, @result, @errorCode, @errorMessage, @reportJson,
               @startedAt, @finishedAt, @updatedAt)
       ON CONFLICT (run_id, node) DO UPDATE SET
         position = excluded.position, phase = excluded.phase, result = excluded.result,
         error_code = excluded.error_code, error_message = excluded.error_message, report_json = excluded.report_json,
         started_at = excluded.started_at, finished_at = excluded.finished_at, updated_at = excluded.updated_at`,
    ),
    selectNodeRuns: db.prepare<[string], NodeRunRow>(
      `SELECT run_id AS runId, node, position, phase, result, error_code AS errorCode, error_message AS errorMessage,
              report_json AS reportJson, started_at AS startedAt, finished_at AS finishedAt, updated_at AS updatedAt
       FROM node_runs WHERE run_id = ? ORDER BY position, node`,
    ),
    upsertSnapshot: db.prepare<[string, string, string, number]>(
      `INSERT INTO snapshots (run_id, actor_id, snapshot_json, updated_at, version) VALUES (?, ?, ?, ?, 1)
       ON CONFLICT (run_id, actor_id) DO UPDATE SET
         snapshot_json = excluded.snapshot_json, updated_at = excluded.updated_at, version = version + 1`,
    ),
    deleteSnapshot: db.prepare<[string, string]>('DELETE FROM snapshots WHERE run_id = ? AND actor_id = ?'),
    selectSnapshots: db.prepare<[string], SnapshotRow>(
      `SELECT actor_id AS actorId, snapshot_json AS snapshotJson, version, updated_at AS updatedAt
       FROM snapshots WHERE run_id = ? ORDER BY actor_id`,
    ),
    // The compare-and-set: inserts only while the run has no decision at all, whoever the approver.
    insertFirstDecision: db.prepare<[string, string, Decision, number, string | null, string]>(
      `INSERT INTO approvals (run_id, approver, decision, at, comment)
       SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM approvals WHERE run_id = ?)`,
    ),
    selectDecision: db.prepare<[string], ApprovalRecord>(
      `SELECT run_id AS runId, approver, decision, at, comment FROM approvals WHERE run_id = ?
       ORDER BY at, rowid LIMIT 1`,
    ),
    selectAuditHead: db.prepare<[], AuditHead>('SELECT seq, hash FROM audit_head WHERE id = 1'),
    moveAuditHead: db.prepare<[number, string]>('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1'),
    insertAudit: db.prepare<[number, number, string, string, string | null, string | null, string, string, string]>(
      `INSERT INTO audit (seq, at, actor, action, run_id, node, details_json, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    auditRows: db.prepare<[number, number], StoredAuditRow>(
      `SELECT ${AUDIT_COLUMNS} FROM audit WHERE seq > ? ORDER BY seq LIMIT ?`,
    ),
    runAuditRows: db.prepare<[string, number, number], StoredAuditRow>(
      `SELECT ${AUDIT_COLUMNS} FROM audit WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    ),
    auditChain: db.prepare<[], StoredAuditRow>(`SELECT ${AUDIT_COLUMNS} FROM audit ORDER BY seq`),
    selectRunOwner: db.prepare<[string], { owner: unknown; claimedAt: unknown; heartbeatAt: unknown }>(
      'SELECT owner, claimed_at AS claimedAt, heartbeat_at AS heartbeatAt FROM run_owners WHERE run_id = ?',
    ),
    upsertRunOwner: db.prepare<[string, string, number, number]>(
      `INSERT INTO run_owners (run_id, owner, claimed_at, heartbeat_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (run_id) DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at, heartbeat_at = excluded.heartbeat_at`,
    ),
    heartbeatRunOwner: db.prepare<[number, string, string]>('UPDATE run_owners SET heartbeat_at = ? WHERE run_id = ? AND owner = ?'),
    deleteRunOwner: db.prepare<[string, string]>('DELETE FROM run_owners WHERE run_id = ? AND owner = ?'),
    selectStoreId: db.prepare<[], string>("SELECT value FROM store_meta WHERE key = 'store_id'").pluck(),
    auditHashAt: db.prepare<[number], string>('SELECT hash FROM audit WHERE seq = ?').pluck(),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

/** PRAGMA synchronous reports a number; these are its names, by value. */
const SYNCHRONOUS_LEVELS = ['off', 'normal', 'full', 'extra'] as const;

/** Passed as LIMIT when the caller gives none: SQLite treats a negative limit as no limit. */
const NO_LIMIT = -1;

/** Use {@link openStore}; the constructor expects a configured, migrated connection. */
export class Store {
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #sql: Statements;
  readonly #createRunTx: Database.Transaction<(run: NewRun) => RunRecord>;
  readonly #commitTx: Database.Transaction<(batch: CommitBatch) => void>;
  readonly #decideTx: Database.Transaction<
    (runId: string, approver: string, decision: Decision, at: number, comment: string | undefined) => DecisionResult
  >;
  readonly #appendAuditTx: Database.Transaction<(entry: AuditEntry) => AuditRow>;
  readonly #verifyAuditTx: Database.Transaction<() => AuditVerification>;
  readonly #auditListeners = new Set<() => void>();
  readonly #claimRunTx: Database.Transaction<(runId: string, owner: string, now: number, isGone: (owner: RunOwner) => boolean) => RunClaim>;

  constructor(db: Database.Database, path: string) {
    this.#db = db;
    this.#path = path;
    this.#sql = prepareStatements(db);
    this.#createRunTx = db.transaction((run: NewRun) => this.#createRun(run));
    this.#commitTx = db.transaction((batch: CommitBatch) => this.#commit(batch));
    this.#decideTx = db.transaction(
      (runId: string, approver: string, decision: Decision, at: number, comment: string | undefined) =>
        this.#decide(runId, approver, decision, at, comment),
    );
    this.#appendAuditTx = db.transaction((entry: AuditEntry) => toAuditRow(this.#appendAuditEntry(entry), path));
    this.#claimRunTx = db.transaction((runId: string, owner: string, now: number, isGone: (current: RunOwner) => boolean) => {
      const current = this.#runOwner(runId);
      if (current && current.owner !== owner && !isGone(current)) return { ok: false, owner: current } as const;
      this.#sql.upsertRunOwner.run(runId, owner, current?.owner === owner ? current.claimedAt : now, now);
      return { ok: true, tookOverFrom: current && current.owner !== owner ? current : null } as const;
    });
    // One read transaction, so the head and the rows come from the same snapshot while writers carry on.
    this.#verifyAuditTx = db.transaction(() => {
      const head = this.#sql.selectAuditHead.get();
      return verifyAuditChain(this.#sql.auditChain.iterate(), head);
    });
  }

  get path(): string {
    return this.#path;
  }

  /** Records a new run in status 'scheduled' and audits `run.created`. */
  createRun(run: NewRun): RunRecord {
    return this.#audited(this.#guard(() => this.#createRunTx.immediate(run)));
  }

  /**
   * Calls `listener` after every committed write that may have added audit records (to anchor the head outside the
   * database). Returns the way to stop.
   */
  onAuditChanged(listener: () => void): () => void {
    this.#auditListeners.add(listener);
    return () => this.#auditListeners.delete(listener);
  }

  #audited<T>(result: T): T {
    for (const listener of this.#auditListeners) listener();
    return result;
  }

  getRun(id: string): RunRecord | null {
    const row = this.#guard(() => this.#sql.selectRun.get(id));
    return row === undefined ? null : toRunRecord(row, this.#path);
  }

  requireRun(id: string): RunRecord {
    const run = this.getRun(id);
    if (run === null) throw runNotFoundError(id);
    return run;
  }

  /** Newest first. */
  listRuns(opts: ListRunsOptions = {}): RunRecord[] {
    const limit = opts.limit ?? NO_LIMIT;
    const rows = this.#guard(() => {
      if (opts.cluster === undefined) {
        return (opts.active ? this.#sql.listActiveRuns : this.#sql.listRuns).all(limit);
      }
      return (opts.active ? this.#sql.listActiveClusterRuns : this.#sql.listClusterRuns).all(opts.cluster, limit);
    });
    return rows.map((row) => toRunRecord(row, this.#path));
  }

  /**
   * Whether any run has not finished, and the clusters the runs name: what `audit verify` needs, read without the
   * runs' JSON columns, so that a run row another program damaged does not stop the audit log being checked.
   */
  hasActiveRun(): boolean {
    return this.#guard(() => this.#db.prepare<[], number>("SELECT 1 FROM runs WHERE status <> 'done' LIMIT 1").pluck().get() !== undefined);
  }

  /** Newest run's cluster first. */
  runClusters(): string[] {
    return this.#guard(() => this.#db.prepare<[], string>('SELECT cluster FROM runs GROUP BY cluster ORDER BY max(created_at) DESC, cluster').pluck().all());
  }

  /** Writes everything one engine transition produced, or nothing. RUN_NOT_FOUND if the run does not exist. */
  commit(batch: CommitBatch): void {
    this.#audited(this.#guard(() => this.#commitTx.immediate(batch)));
  }

  /**
   * Makes `owner` the one process driving the run, in one write transaction (of two processes claiming at once,
   * exactly one wins): granted when nobody owns it, when `owner` already does, or when `isGone` says the current
   * owner is dead (its heartbeat is too old, or its pid is gone on this host). Refused: the live owner.
   */
  claimRun(runId: string, owner: string, now: number, isGone: (current: RunOwner) => boolean): RunClaim {
    return this.#guard(() => this.#claimRunTx.immediate(runId, owner, now, isGone));
  }

  /** The owner's proof of life; false when it no longer owns the run (someone took it over). */
  heartbeatRun(runId: string, owner: string, now: number): boolean {
    return this.#guard(() => this.#sql.heartbeatRunOwner.run(now, runId, owner).changes === 1);
  }

  /** Lets go of a run (finished, or handed back on shutdown); only its owner can. */
  releaseRun(runId: string, owner: string): void {
    this.#guard(() => this.#sql.deleteRunOwner.run(runId, owner));
  }

  /** This database's identity (random, made when it was created or migrated): the key of its audit anchors. */
  storeId(): string {
    return this.#guard(() => this.#sql.selectStoreId.get() ?? 'unknown');
  }

  /** The newest audit record's seq and hash (seq 0 and the genesis hash while the log is empty). */
  auditHead(): AuditHead {
    return this.#guard(() => this.#sql.selectAuditHead.get() ?? { seq: 0, hash: '' });
  }

  /** The hash stored for audit record `seq`, or null when there is no such record. */
  auditHashAt(seq: number): string | null {
    return this.#guard(() => this.#sql.auditHashAt.get(seq) ?? null);
  }

  /** Who drives the run now, or null. RUN_OWNER_CORRUPT when the row cannot be read as one. */
  runOwner(runId: string): RunOwner | null {
    return this.#guard(() => this.#runOwner(runId));
  }

  #runOwner(runId: string): RunOwner | null {
    const row = this.#sql.selectRunOwner.get(runId);
    if (row === undefined) return null;
    const { owner, claimedAt, heartbeatAt } = row;
    if (typeof owner !== 'string' || owner === '' || !Number.isSafeInteger(claimedAt) || !Number.isSafeInteger(heartbeatAt)) {
      throw new StoreError(
        'RUN_OWNER_CORRUPT',
        `the owner record of run ${runId} in ${this.#path} is unreadable (owner ${JSON.stringify(owner)}, heartbeat ${JSON.stringify(heartbeatAt)})`,
        `nobody can tell whether a process drives this run, so it is not resumed; once you are sure none does: sqlite3 ${shellQuote(this.#path)} "DELETE FROM run_owners WHERE run_id = '${runId}'"`,
      );
    }
    return { owner, claimedAt: claimedAt as number, heartbeatAt: heartbeatAt as number };
  }

  /** Ordered by position. */
  getNodeRuns(runId: string): NodeRunRecord[] {
    return this.#guard(() => this.#sql.selectNodeRuns.all(runId)).map((row) => toNodeRunRecord(row, this.#path));
  }

  /** The persisted snapshot of each actor of a run, by actor id. SNAPSHOT_CORRUPT if one cannot be parsed. */
  loadSnapshots(runId: string): Map<string, unknown> {
    return new Map(this.snapshotRecords(runId).map((record) => [record.actorId, record.snapshot]));
  }

  snapshotRecords(runId: string): SnapshotRecord[] {
    return this.#guard(() => this.#sql.selectSnapshots.all(runId)).map((row) => ({
      actorId: row.actorId,
      snapshot: parseSnapshot(runId, row),
      version: row.version,
      updatedAt: row.updatedAt,
    }));
  }

  /**
   * Records an approval decision if the run has none yet; the first decision wins, across processes too. A later
   * one, by anyone and even with the same value, is refused with who decided what and when.
   */
  decide(runId: string, approver: string, decision: Decision, at: number, comment?: string): DecisionResult {
    return this.#audited(this.#guard(() => this.#decideTx.immediate(runId, approver, decision, at, comment)));
  }

  /** The decision that won for the run, if any. */
  getDecision(runId: string): ApprovalRecord | null {
    const row = this.#guard(() => this.#sql.selectDecision.get(runId));
    return row === undefined ? null : toApproval(row, this.#path);
  }

  appendAudit(entry: AuditEntry): AuditRow {
    return this.#audited(this.#guard(() => this.#appendAuditTx.immediate(entry)));
  }

  /** In ascending seq order. */
  auditRows(opts: AuditQuery = {}): AuditRow[] {
    const afterSeq = opts.afterSeq ?? 0;
    const limit = opts.limit ?? NO_LIMIT;
    const rows = this.#guard(() =>
      opts.runId === undefined
        ? this.#sql.auditRows.all(afterSeq, limit)
        : this.#sql.runAuditRows.all(opts.runId, afterSeq, limit),
    );
    return rows.map((row) => toAuditRow(row, this.#path));
  }

  /** Recomputes the whole hash chain, row by row, and compares its end with audit_head. */
  verifyAudit(): AuditVerification {
    return this.#guard(() => this.#verifyAuditTx.deferred());
  }

  /** The connection's durability and locking settings, for diagnostics. */
  connectionSettings(): ConnectionSettings {
    return this.#guard(() => ({
      journalMode: String(this.#db.pragma('journal_mode', { simple: true })),
      pageSize: Number(this.#db.pragma('page_size', { simple: true })),
      walAutocheckpointPages: Number(this.#db.pragma('wal_autocheckpoint', { simple: true })),
      synchronous: SYNCHRONOUS_LEVELS[Number(this.#db.pragma('synchronous', { simple: true }))] ?? 'unknown',
      foreignKeys: this.#db.pragma('foreign_keys', { simple: true }) === 1,
      busyTimeoutMs: Number(this.#db.pragma('busy_timeout', { simple: true })),
    }));
  }

  /** One scan's findings for one node (history; the node's annotations hold the latest). */
  recordScan(row: ScanRecord): void {
    this.#guard(() =>
      this.#db
        .prepare(
          `INSERT OR REPLACE INTO scans (scan_id, cluster, node, at, pending, packages_json, reboot_required, error)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(row.scanId, row.cluster, row.node, row.at, row.pending, JSON.stringify(row.packages), row.rebootRequired === null ? null : Number(row.rebootRequired), row.error),
    );
  }

  /** A cluster's scan rows since `since`, oldest first. */
  scanHistory(cluster: string, since = 0): ScanRecord[] {
    type Row = Omit<ScanRecord, 'packages' | 'rebootRequired'> & { packagesJson: string; rebootRequired: number | null };
    const rows = this.#guard(() =>
      this.#db
        .prepare<[string, number], Row>(
          `SELECT scan_id AS scanId, cluster, node, at, pending, packages_json AS packagesJson, reboot_required AS rebootRequired, error
           FROM scans WHERE cluster = ? AND at >= ? ORDER BY at, node`,
        )
        .all(cluster, since),
    );
    return rows.map(({ packagesJson, rebootRequired, ...rest }) => {
      const row = { db: this.#path, table: 'scans', key: { scan_id: rest.scanId, cluster: rest.cluster, node: rest.node } };
      return {
        ...rest,
        at: readTime(row, 'at', rest.at),
        packages: readJson(row, 'packages_json', packagesJson, A_LIST_OF_NAMES) as string[],
        rebootRequired: rebootRequired === null ? null : rebootRequired === 1,
      };
    });
  }

  /** A notification that could not be delivered after every retry. */
  addDeadLetter(letter: Omit<DeadLetter, 'id'>): DeadLetter {
    const id = this.#guard(() =>
      this.#db
        .prepare('INSERT INTO dead_letters (sink, event, body_json, attempts, last_error, failed_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(letter.sink, letter.event, letter.body, letter.attempts, letter.lastError, letter.failedAt).lastInsertRowid,
    );
    return { id: Number(id), ...letter };
  }

  /** Oldest first. ROW_CORRUPT when a row's body is not JSON or its time is not one. */
  deadLetters(): DeadLetter[] {
    const rows = this.#guard(() =>
      this.#db
        .prepare<[], DeadLetter>('SELECT id, sink, event, body_json AS body, attempts, last_error AS lastError, failed_at AS failedAt FROM dead_letters ORDER BY id')
        .all(),
    );
    return rows.map((letter) => {
      const row = { db: this.#path, table: 'dead_letters', key: { id: letter.id } };
      readJson(row, 'body_json', letter.body);
      return { ...letter, failedAt: readTime(row, 'failed_at', letter.failedAt) };
    });
  }

  /** Sets a cluster's schedule, replacing the one it had. */
  setSchedule(record: ScheduleRecord): void {
    const specJson = JSON.stringify(record.spec);
    if (specJson === undefined) throw new TypeError(`the schedule of cluster ${record.cluster} is not JSON-serializable`);
    this.#guard(() =>
      this.#db
        .prepare(
          `INSERT INTO schedules (cluster, spec_json, channel, requested_by, updated_at) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (cluster) DO UPDATE SET spec_json = excluded.spec_json, channel = excluded.channel,
             requested_by = excluded.requested_by, updated_at = excluded.updated_at`,
        )
        .run(record.cluster, specJson, record.channel, record.requestedBy, record.updatedAt),
    );
  }

  /** Removes a cluster's schedule; false when it had none. */
  deleteSchedule(cluster: string): boolean {
    return this.#guard(() => this.#db.prepare('DELETE FROM schedules WHERE cluster = ?').run(cluster).changes === 1);
  }

  /** A cluster's schedule, or null. SCHEDULE_CORRUPT when its row cannot be read. */
  getSchedule(cluster: string): ScheduleRecord | null {
    type Row = Omit<ScheduleRecord, 'spec'> & { specJson: string };
    const row = this.#guard(() =>
      this.#db
        .prepare<[string], Row>('SELECT cluster, spec_json AS specJson, channel, requested_by AS requestedBy, updated_at AS updatedAt FROM schedules WHERE cluster = ?')
        .get(cluster),
    );
    if (row === undefined) return null;
    const { specJson, ...rest } = row;
    try {
      return { ...rest, spec: JSON.parse(specJson) as unknown };
    } catch (error) {
      throw new StoreError(
        'SCHEDULE_CORRUPT',
        `the schedule of cluster ${cluster} in ${this.#path} is unreadable`,
        `set it again with /patch schedule ${cluster} ..., or remove it: sqlite3 ${shellQuote(this.#path)} "DELETE FROM schedules WHERE cluster = '${cluster}'"`,
        { cause: error },
      );
    }
  }

  /**
   * Throws a StoreError (DB_READONLY, DB_LOCKED, ...) unless this connection can write, by a write in a transaction
   * that is rolled back: SQLite opens a file it may not write (chattr +i, a read-only mount) read-only without a word
   * and only refuses the first write. Commands that change the cluster and then audit it call this before touching
   * anything, so that such a database refuses the command instead of losing the audit record of a change made.
   */
  assertWritable(): void {
    this.#guard(() => {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        // Refused on a read-only connection even though it matches no row.
        this.#db.exec('UPDATE audit_head SET hash = hash WHERE id = -1');
      } finally {
        this.#db.exec('ROLLBACK');
      }
    });
  }

  close(): void {
    this.#db.close();
  }

  #guard<T>(operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      throw translateSqliteError(error, this.#path);
    }
  }

  #createRun(run: NewRun): RunRecord {
    try {
      this.#sql.insertRun.run({
        id: run.id,
        cluster: run.cluster,
        hash: run.hash,
        planJson: JSON.stringify(run.plan),
        triggerJson: JSON.stringify(run.trigger),
        requestedBy: run.requestedBy,
        createdAt: run.createdAt,
      });
    } catch (error) {
      if (error instanceof Database.SqliteError && error.code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new StoreError(
          'RUN_EXISTS',
          `Run ${run.id} already exists`,
          'Each run needs a new id; list existing runs with `patchpilot runs`.',
          { cause: error },
        );
      }
      throw error;
    }
    this.#appendAuditEntry({
      at: run.createdAt,
      actor: run.requestedBy,
      action: 'run.created',
      runId: run.id,
      details: { cluster: run.cluster, hash: run.hash },
    });
    const created = this.#sql.selectRun.get(run.id);
    if (created === undefined) throw runNotFoundError(run.id);
    return toRunRecord(created, this.#path);
  }

  #commit(batch: CommitBatch): void {
    const { runId, at } = batch;
    const patch = batch.run ?? {};
    // Most engine commits change nothing on the run itself; rewriting its row (and page) for updated_at alone would
    // cost a page write per commit, so those only check that the run exists.
    if (Object.keys(patch).length === 0) {
      if (this.#sql.runExists.get(runId) === undefined) throw runNotFoundError(runId);
    } else {
      this.#updateRun(runId, at, patch);
    }
    this.#writeBatchRows(batch);
  }

  #updateRun(runId: string, at: number, patch: NonNullable<CommitBatch['run']>): void {
    const updated = this.#sql.updateRun.run({
      id: runId,
      at,
      setOutcome: patch.outcome === undefined ? 0 : 1,
      outcome: patch.outcome ?? null,
      setReason: patch.reason === undefined ? 0 : 1,
      reason: patch.reason ?? null,
      queueJson: patch.queue === undefined ? null : JSON.stringify(patch.queue),
      setFinishedAt: patch.finishedAt === undefined ? 0 : 1,
      finishedAt: patch.finishedAt ?? null,
    });
    if (updated.changes === 0) throw runNotFoundError(runId);
    if (patch.status !== undefined) this.#sql.updateRunStatus.run(patch.status, runId, patch.status);
  }

  #writeBatchRows(batch: CommitBatch): void {
    const { runId, at } = batch;
    for (const nodeRun of batch.nodeRuns ?? []) {
      this.#sql.upsertNodeRun.run({
        runId,
        node: nodeRun.node,
        position: nodeRun.position,
        phase: nodeRun.phase,
        result: nodeRun.result,
        errorCode: nodeRun.errorCode,
        errorMessage: nodeRun.errorMessage,
        reportJson: nodeRun.report == null ? null : JSON.stringify(nodeRun.report),
        startedAt: nodeRun.startedAt,
        finishedAt: nodeRun.finishedAt,
        updatedAt: at,
      });
    }
    for (const { actorId, snapshot } of batch.snapshots ?? []) {
      this.#sql.upsertSnapshot.run(runId, actorId, snapshotJson(runId, actorId, snapshot), at);
    }
    for (const actorId of batch.deleteSnapshots ?? []) {
      this.#sql.deleteSnapshot.run(runId, actorId);
    }
    this.#appendAuditEntries((batch.audit ?? []).map((entry) => (entry.runId === undefined ? { ...entry, runId } : entry)));
  }

  #decide(
    runId: string,
    approver: string,
    decision: Decision,
    at: number,
    comment: string | undefined,
  ): DecisionResult {
    if (this.#sql.runExists.get(runId) === undefined) throw runNotFoundError(runId);
    const inserted = this.#sql.insertFirstDecision.run(runId, approver, decision, at, comment ?? null, runId);
    if (inserted.changes === 0) {
      const row = this.#sql.selectDecision.get(runId);
      if (row === undefined) throw new Error(`approvals of run ${runId} changed inside a write transaction`);
      const winner = toApproval(row, this.#path);
      return {
        ok: false,
        reason: `already ${winner.decision} by ${winner.approver} at ${new Date(winner.at).toISOString()}`,
        decidedBy: winner.approver,
        decision: winner.decision,
      };
    }
    this.#appendAuditEntry({
      at,
      actor: approver,
      action: `approval.${decision}`,
      runId,
      details: comment === undefined ? {} : { comment },
    });
    return { ok: true };
  }

  /** Extends the chain by one row and moves the head; must run inside a write transaction. */
  #appendAuditEntry(entry: AuditEntry): StoredAuditRow {
    const [row] = this.#appendAuditEntries([entry]);
    if (row === undefined) throw new Error('appending one audit entry produced no row');
    return row;
  }

  /**
   * Extends the chain by several rows, reading the head once and moving it once to the last of them (an engine commit
   * often carries several entries); must run inside a write transaction.
   */
  #appendAuditEntries(entries: readonly AuditEntry[]): StoredAuditRow[] {
    if (entries.length === 0) return [];
    const head = this.#sql.selectAuditHead.get();
    if (head === undefined) throw corruptDatabaseError(this.#path, new Error('the audit_head row is missing'));
    let { seq, hash: prevHash } = head;
    const rows: StoredAuditRow[] = [];
    for (const entry of entries) {
      seq += 1;
      // SQLite stores text as UTF-8, where a lone surrogate becomes U+FFFD: hash exactly the text that will be read back.
      const actor = entry.actor.toWellFormed();
      const action = entry.action.toWellFormed();
      const runId = entry.runId?.toWellFormed() ?? null;
      const node = entry.node?.toWellFormed() ?? null;
      const at = entry.at;
      const detailsJson = canonicalJson(entry.details ?? {});
      const hash = auditHash(prevHash, { seq, at, actor, action, runId, node, detailsJson });
      this.#sql.insertAudit.run(seq, at, actor, action, runId, node, detailsJson, prevHash, hash);
      rows.push({ seq, at, actor, action, runId, node, detailsJson, prevHash, hash });
      prevHash = hash;
    }
    this.#sql.moveAuditHead.run(seq, prevHash);
    return rows;
  }
}

function runNotFoundError(runId: string): StoreError {
  // Echoed in part only: a pasted page is not a run id, and not worth printing back.
  const shown = runId.length > 80 ? `${runId.slice(0, 80)}… (${runId.length} characters)` : runId;
  return new StoreError('RUN_NOT_FOUND', runId.trim() === '' ? 'no run id given' : `Run ${shown} not found`, 'List runs with `patchpilot runs`.');
}

function snapshotJson(runId: string, actorId: string, snapshot: unknown): string {
  const json = JSON.stringify(snapshot);
  if (json === undefined) throw new TypeError(`snapshot of actor ${actorId} in run ${runId} is not JSON-serializable`);
  return json;
}

function parseSnapshot(runId: string, row: SnapshotRow): unknown {
  try {
    return JSON.parse(row.snapshotJson);
  } catch (error) {
    throw new StoreError(
      'SNAPSHOT_CORRUPT',
      `The saved state of actor ${row.actorId} in run ${runId} is corrupt`,
      `Run ${runId} cannot be resumed. Its nodes keep the labels and annotations patchpilot set in the cluster, ` +
        'which show how far each got; check them with kubectl before starting a new run.',
      { cause: error },
    );
  }
}

/** The JSON and time columns are read by columns.ts, which names the row when another program broke one. */
function toRunRecord(row: RunRow, db: string): RunRecord {
  const ref = { db, table: 'runs', key: { id: row.id } };
  return {
    id: row.id,
    cluster: row.cluster,
    hash: row.hash,
    plan: readJson(ref, 'plan_json', row.planJson),
    trigger: readJson(ref, 'trigger_json', row.triggerJson, A_TRIGGER),
    requestedBy: row.requestedBy,
    createdAt: readTime(ref, 'created_at', row.createdAt),
    status: row.status,
    outcome: row.outcome,
    reason: row.reason,
    queue: readNullableJson(ref, 'queue_json', row.queueJson, A_LIST_OF_NAMES) as string[] | null,
    updatedAt: readTime(ref, 'updated_at', row.updatedAt),
    finishedAt: readNullableTime(ref, 'finished_at', row.finishedAt),
  };
}

function toNodeRunRecord(row: NodeRunRow, db: string): NodeRunRecord {
  const { reportJson, ...rest } = row;
  const ref = { db, table: 'node_runs', key: { run_id: row.runId, node: row.node } };
  return {
    ...rest,
    report: readNullableJson(ref, 'report_json', reportJson),
    startedAt: readNullableTime(ref, 'started_at', row.startedAt),
    finishedAt: readNullableTime(ref, 'finished_at', row.finishedAt),
    updatedAt: readTime(ref, 'updated_at', row.updatedAt),
  };
}

function toAuditRow(row: StoredAuditRow, db: string): AuditRow {
  const { detailsJson, ...rest } = row;
  const ref = { db, table: 'audit', key: { seq: row.seq } };
  return { ...rest, at: readTime(ref, 'at', row.at), details: readJson(ref, 'details_json', detailsJson, AN_OBJECT) as Record<string, unknown> };
}

function toApproval(row: ApprovalRecord, db: string): ApprovalRecord {
  return { ...row, at: readTime({ db, table: 'approvals', key: { run_id: row.runId, approver: row.approver } }, 'at', row.at) };
}
