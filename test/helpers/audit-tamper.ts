/** The three tamperings a hash chain alone cannot show, as someone holding the database file and sqlite3 could do them. */
import type Database from 'better-sqlite3';
import { auditHash, type StoredAuditRow } from '../../src/store/audit.ts';

export type Tamper = (db: Database.Database) => void;

const rows = (db: Database.Database) =>
  db.prepare('SELECT seq, at, actor, action, run_id AS runId, node, details_json AS detailsJson, prev_hash AS prevHash, hash FROM audit ORDER BY seq').all() as StoredAuditRow[];

/** Without the triggers that keep the log append-only, as someone with the file and sqlite3 could. */
function unprotect(db: Database.Database): void {
  for (const t of ['audit_no_update', 'audit_no_delete', 'audit_head_forward_only']) db.exec(`DROP TRIGGER IF EXISTS ${t}`);
}

export const truncateNewest: Tamper = (db) => {
  unprotect(db);
  const all = rows(db);
  const keep = all.at(-3)!;
  db.prepare('DELETE FROM audit WHERE seq > ?').run(keep.seq);
  db.prepare('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(keep.seq, keep.hash);
};

export const appendRow: Tamper = (db) => {
  unprotect(db);
  const last = rows(db).at(-1)!;
  const row = { seq: last.seq + 1, at: last.at + 1000, actor: 'mallory', action: 'run.approved', runId: last.runId, node: null, detailsJson: '{}' };
  const hash = auditHash(last.hash, row);
  db.prepare('INSERT INTO audit (seq, at, actor, action, run_id, node, details_json, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)').run(row.seq, row.at, row.actor, row.action, row.runId, row.node, row.detailsJson, last.hash, hash);
  db.prepare('UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1').run(row.seq, hash);
};

export const rechain: Tamper = (db) => {
  unprotect(db);
  let prev = '';
  const all = rows(db);
  const edited = Math.floor(all.length / 2);
  for (const [i, row] of all.entries()) {
    if (i === 0) prev = row.prevHash;
    const next = { ...row, actor: i === edited ? 'mallory' : row.actor };
    const hash = auditHash(prev, next);
    db.prepare('UPDATE audit SET actor = ?, prev_hash = ?, hash = ? WHERE seq = ?').run(next.actor, prev, hash, row.seq);
    prev = hash;
  }
  db.prepare('UPDATE audit_head SET hash = ? WHERE id = 1').run(prev);
};

