/**
 * The schedules table: one schedule per cluster, replaced and removed, kept across a reopen, and unreadable rows named
 * as such. A database at the previous schema version (3), whose schedules the bot kept only as slack.schedule audit
 * entries, migrates with the newest entry of each cluster as its schedule (an "off" entry: none), and its audit chain
 * still verifies.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditHash, canonicalJson, GENESIS_HASH } from '../../src/store/audit.ts';
import { LATEST_SCHEMA_VERSION, openStore, StoreError, type Store } from '../../src/store/index.ts';
import { applyMigrations, MIGRATIONS } from '../../src/store/migrations.ts';
import { makeScratchDir, removeScratchDir } from '../helpers/scratch.ts';

let dir: string;
const open: Store[] = [];
beforeEach(() => {
  dir = makeScratchDir('schedules');
});
afterEach(() => {
  for (const store of open.splice(0)) store.close();
  removeScratchDir(dir);
});

function openTracked(path: string): Store {
  const store = openStore(path);
  open.push(store);
  return store;
}

const weekly = { kind: 'preset', preset: 'weekly' };
const everyTen = { kind: 'cron', expression: '*/10 * * * *' };

describe('the schedules table', () => {
  it('holds one schedule per cluster: set, replaced, removed', () => {
    const store = openTracked(':memory:');
    expect(store.getSchedule('prod')).toBeNull();
    store.setSchedule({ cluster: 'prod', spec: weekly, channel: 'C1', requestedBy: 'U1', updatedAt: 1000 });
    store.setSchedule({ cluster: 'dev', spec: everyTen, channel: 'C2', requestedBy: 'U2', updatedAt: 1500 });
    store.setSchedule({ cluster: 'prod', spec: everyTen, channel: 'C3', requestedBy: 'U3', updatedAt: 2000 });
    expect(store.getSchedule('prod')).toEqual({ cluster: 'prod', spec: everyTen, channel: 'C3', requestedBy: 'U3', updatedAt: 2000 });
    expect(store.deleteSchedule('prod')).toBe(true);
    expect(store.deleteSchedule('prod')).toBe(false);
    expect(store.getSchedule('prod')).toBeNull();
    expect(store.getSchedule('dev')?.spec).toEqual(everyTen);
  });

  it('keeps a schedule across a restart (close and reopen)', () => {
    const path = join(dir, 'pp.db');
    openTracked(path).setSchedule({ cluster: 'prod', spec: weekly, channel: 'C1', requestedBy: 'U1', updatedAt: 1000 });
    open.pop()!.close();
    expect(openTracked(path).getSchedule('prod')).toEqual({ cluster: 'prod', spec: weekly, channel: 'C1', requestedBy: 'U1', updatedAt: 1000 });
  });

  it('names a row it cannot read, with the way out', () => {
    const path = join(dir, 'pp.db');
    openTracked(path);
    open.pop()!.close();
    const raw = new Database(path);
    raw.prepare("INSERT INTO schedules (cluster, spec_json, channel, requested_by, updated_at) VALUES ('prod', '{not json', 'C1', 'U1', 0)").run();
    raw.close();
    const store = openTracked(path);
    const error = (() => {
      try {
        store.getSchedule('prod');
      } catch (err) {
        return err;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('SCHEDULE_CORRUPT');
    expect((error as StoreError).hint).toContain("DELETE FROM schedules WHERE cluster = 'prod'");
  });
});

describe('migrating a database of schema version 3', () => {
  /** Appends audit rows as the store of version 3 wrote them (hash chain and head). */
  function appendAudit(db: Database.Database, rows: Array<{ at: number; actor: string; action: string; details: Record<string, unknown> }>): void {
    let { seq, hash } = db.prepare('SELECT seq, hash FROM audit_head WHERE id = 1').get() as { seq: number; hash: string };
    for (const row of rows) {
      seq += 1;
      const entry = { seq, at: row.at, actor: row.actor, action: row.action, runId: null, node: null, detailsJson: canonicalJson(row.details) };
      const next = auditHash(hash, entry);
      db.prepare('INSERT INTO audit (seq, at, actor, action, run_id, node, details_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(seq, entry.at, entry.actor, entry.action, null, null, entry.detailsJson, hash, next);
      hash = next;
    }
    db.prepare('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(seq, hash);
  }

  function versionThreeDatabase(path: string): Database.Database {
    const db = new Database(path);
    applyMigrations(db, { dbPath: path, now: () => 0, migrations: MIGRATIONS.filter((m) => m.version <= 3) });
    expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(3);
    expect(db.prepare("SELECT head.hash FROM audit_head head").pluck().get()).toBe(GENESIS_HASH);
    return db;
  }

  it('turns the newest slack.schedule entry of each cluster into its schedule; an "off" leaves none', () => {
    const path = join(dir, 'v3.db');
    const db = versionThreeDatabase(path);
    appendAudit(db, [
      { at: 1000, actor: 'slack:U1', action: 'slack.schedule', details: { cluster: 'prod', channel: 'C1', schedule: weekly } },
      { at: 2000, actor: 'slack:U1', action: 'slack.schedule', details: { cluster: 'dev', channel: 'C2', schedule: everyTen } },
      { at: 3000, actor: 'slack:U2', action: 'slack.schedule', details: { cluster: 'prod', channel: 'C3', schedule: everyTen } },
      { at: 3500, actor: 'slack:U2', action: 'slack.schedule.fired', details: { cluster: 'prod', channel: 'C9' } },
      { at: 4000, actor: 'slack:U1', action: 'slack.schedule', details: { cluster: 'dev', channel: 'C2', schedule: null } },
      { at: 5000, actor: 'slack:U3', action: 'slack.command.status', details: { cluster: 'qa', channel: 'C4' } },
    ]);
    db.close();

    const store = openTracked(path);
    const raw = new Database(path, { readonly: true });
    expect(raw.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(LATEST_SCHEMA_VERSION);
    expect(raw.prepare('SELECT cluster FROM schedules ORDER BY cluster').pluck().all()).toEqual(['prod']);
    raw.close();
    expect(store.getSchedule('prod')).toEqual({ cluster: 'prod', spec: everyTen, channel: 'C3', requestedBy: 'U2', updatedAt: 3000 });
    expect(store.getSchedule('dev')).toBeNull();
    expect(store.getSchedule('qa')).toBeNull();
    // The migration read the log and changed none of it.
    expect(store.verifyAudit()).toMatchObject({ ok: true, checked: 6, headSeq: 6 });
  });

  it('migrates a database without any schedule to an empty table', () => {
    const path = join(dir, 'v3-empty.db');
    versionThreeDatabase(path).close();
    const store = openTracked(path);
    expect(store.getSchedule('prod')).toBeNull();
    store.setSchedule({ cluster: 'prod', spec: weekly, channel: 'C1', requestedBy: 'U1', updatedAt: 1 });
    expect(store.getSchedule('prod')?.spec).toEqual(weekly);
  });
});
