/**
 * Schema migrations. A migration, once released, is never edited: change the schema by appending a new one with the
 * next version. Each is applied in its own transaction together with its schema_migrations row, so a database is
 * always at exactly one known version.
 */
import type Database from 'better-sqlite3';
import { GENESIS_HASH } from './audit.ts';
import { StoreError } from './errors.ts';

export interface Migration {
  version: number;
  name: string;
  up: string;
}

/*
 * Statuses, outcomes and node results are not CHECK-constrained: the TypeScript types are their source of truth, and
 * a CHECK would turn adding a status into a table rebuild. Approval decisions are a closed pair, so they are checked.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    up: `
      CREATE TABLE runs (
        id           TEXT PRIMARY KEY,
        cluster      TEXT NOT NULL,
        hash         TEXT NOT NULL,
        plan_json    TEXT NOT NULL,
        trigger_json TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        status       TEXT NOT NULL,
        outcome      TEXT,
        reason       TEXT,
        queue_json   TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        finished_at  INTEGER
      );
      -- listRuns: newest first, overall, per cluster, and the runs still in flight (what a restart resumes).
      CREATE INDEX runs_by_created ON runs (created_at DESC, id DESC);
      CREATE INDEX runs_by_cluster ON runs (cluster, created_at DESC, id DESC);
      CREATE INDEX runs_active ON runs (created_at DESC, id DESC) WHERE status <> 'done';

      CREATE TABLE node_runs (
        run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        node          TEXT NOT NULL,
        position      INTEGER NOT NULL,
        phase         TEXT NOT NULL,
        result        TEXT NOT NULL,
        error_code    TEXT,
        error_message TEXT,
        report_json   TEXT,
        started_at    INTEGER,
        finished_at   INTEGER,
        updated_at    INTEGER NOT NULL,
        PRIMARY KEY (run_id, node)
      );

      CREATE TABLE approvals (
        run_id   TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        approver TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approved', 'rejected')),
        at       INTEGER NOT NULL,
        comment  TEXT,
        PRIMARY KEY (run_id, approver)
      );

      CREATE TABLE snapshots (
        run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        actor_id      TEXT NOT NULL,
        snapshot_json TEXT NOT NULL,
        updated_at    INTEGER NOT NULL,
        version       INTEGER NOT NULL,
        PRIMARY KEY (run_id, actor_id)
      );

      -- No foreign key to runs: the audit log must outlive anything it mentions.
      -- seq is never reused without AUTOINCREMENT: the store assigns audit_head.seq + 1, and audit_head can only
      -- move forward. AUTOINCREMENT would add a sqlite_sequence write to every append (a page per commit) for nothing.
      CREATE TABLE audit (
        seq          INTEGER PRIMARY KEY,
        at           INTEGER NOT NULL,
        actor        TEXT NOT NULL,
        action       TEXT NOT NULL,
        run_id       TEXT,
        node         TEXT,
        details_json TEXT NOT NULL,
        prev_hash    TEXT NOT NULL,
        hash         TEXT NOT NULL
      );
      CREATE INDEX audit_by_run ON audit (run_id, seq);
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;

      -- The newest entry of the chain; seq 0 with the genesis hash while the log is empty.
      CREATE TABLE audit_head (
        id   INTEGER PRIMARY KEY CHECK (id = 1),
        seq  INTEGER NOT NULL,
        hash TEXT NOT NULL
      );
      INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '${GENESIS_HASH}');
      CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
        BEGIN SELECT RAISE(ABORT, 'audit head cannot be deleted'); END;
      -- The head may move several entries at once (one commit appends several), but only forward and only onto an
      -- entry that exists with exactly that hash.
      CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
        WHEN NEW.seq <= OLD.seq OR NEW.hash IS NOT (SELECT hash FROM audit WHERE seq = NEW.seq)
        BEGIN SELECT RAISE(ABORT, 'audit head only moves forward, onto an existing entry'); END;
    `,
  },
  {
    version: 2,
    name: 'scan history and notification dead letters',
    up: `
      -- One row per node per scan: the history behind the report's chart. The node's annotations hold the latest.
      CREATE TABLE scans (
        scan_id         TEXT NOT NULL,
        cluster         TEXT NOT NULL,
        node            TEXT NOT NULL,
        at              INTEGER NOT NULL,
        -- NULL when the scan failed: unknown, never zero.
        pending         INTEGER,
        packages_json   TEXT NOT NULL,
        reboot_required INTEGER,
        error           TEXT,
        PRIMARY KEY (scan_id, cluster, node)
      );
      CREATE INDEX scans_by_cluster ON scans (cluster, at);

      -- Notifications every retry failed to deliver, kept for an operator to look at and resend.
      CREATE TABLE dead_letters (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        sink         TEXT NOT NULL,
        event        TEXT NOT NULL,
        body_json    TEXT NOT NULL,
        attempts     INTEGER NOT NULL,
        last_error   TEXT NOT NULL,
        failed_at    INTEGER NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'run owners and the store id',
    up: `
      -- The one process driving a run: its identity (host, pid, start, suffix), and when it last said it was alive.
      -- No foreign key: an owner row is removed when the run finishes or its owner lets go.
      CREATE TABLE run_owners (
        run_id       TEXT PRIMARY KEY,
        owner        TEXT NOT NULL,
        claimed_at   INTEGER NOT NULL,
        heartbeat_at INTEGER NOT NULL
      );
      -- This database's identity, under which its audit head is anchored outside it (a ConfigMap per cluster).
      CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
      INSERT INTO store_meta (key, value) VALUES ('store_id', lower(hex(randomblob(8))));
    `,
  },
  {
    version: 4,
    name: 'schedules',
    up: `
      -- A cluster's schedule of runs (at most one): what /patch schedule set, where each run asks for approval (a Slack
      -- channel) and who asked. The scheduler reads this table at start; the audit log keeps the history of changes.
      CREATE TABLE schedules (
        cluster      TEXT PRIMARY KEY,
        spec_json    TEXT NOT NULL,
        channel      TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        updated_at   INTEGER NOT NULL
      );
      -- Before this table the bot kept schedules only as slack.schedule audit entries, the newest per cluster being the
      -- one in force (a null schedule: none). That newest entry becomes the cluster's row, so no schedule is lost.
      INSERT INTO schedules (cluster, spec_json, channel, requested_by, updated_at)
      SELECT cluster, spec, channel, CASE WHEN actor LIKE 'slack:%' THEN substr(actor, 7) ELSE actor END, at
      FROM (
        SELECT json_extract(details_json, '$.cluster') AS cluster,
               json_extract(details_json, '$.schedule') AS spec,
               json_type(details_json, '$.schedule') AS spec_type,
               json_extract(details_json, '$.channel') AS channel,
               actor,
               at,
               row_number() OVER (PARTITION BY json_extract(details_json, '$.cluster') ORDER BY seq DESC) AS newest
        FROM audit
        WHERE action = 'slack.schedule' AND json_valid(details_json)
      )
      WHERE newest = 1 AND spec_type = 'object' AND typeof(cluster) = 'text' AND typeof(channel) = 'text';
    `,
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;

/**
 * Brings the database up to the newest migration in `migrations`, refusing one that is already newer. Safe against
 * another process migrating the same file at the same time: each step takes the write lock first and re-checks.
 */
export function applyMigrations(
  db: Database.Database,
  options: { dbPath: string; now: () => number; migrations?: readonly Migration[] },
): void {
  const migrations = options.migrations ?? MIGRATIONS;
  const latestKnown = migrations.at(-1)?.version ?? 0;

  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const currentVersion = db.prepare<[], number>('SELECT coalesce(max(version), 0) FROM schema_migrations').pluck();
  const recordMigration = db.prepare<[number, string, number]>(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  );

  const refuseIfTooNew = (version: number) => {
    if (version <= latestKnown) return;
    throw new StoreError(
      'DB_TOO_NEW',
      `Database ${options.dbPath} has schema version ${version}, ` +
        `but this patchpilot knows only up to version ${latestKnown}`,
      'A newer patchpilot wrote this database: upgrade patchpilot, or pass --db PATH to use a different database.',
    );
  };

  refuseIfTooNew(currentVersion.get() ?? 0);
  for (const migration of migrations) {
    if ((currentVersion.get() ?? 0) >= migration.version) continue;
    db.transaction(() => {
      const version = currentVersion.get() ?? 0;
      refuseIfTooNew(version);
      if (version >= migration.version) return;
      db.exec(migration.up);
      recordMigration.run(migration.version, migration.name, options.now());
    }).immediate();
  }
}
