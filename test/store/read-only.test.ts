/**
 * Commands that only read (runs, audit verify, audit show) open the database read-only: the database is never changed
 * (where the directory is writable SQLite may leave its empty -wal and shared-memory -shm index beside it, as any
 * reader of a WAL database does), and on a read-only filesystem the file is read into memory instead.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openStore, StoreError } from '../../src/store/index.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('read-only');
const digest = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('openStore({ readOnly: true })', () => {
  it('reads runs and the audit log, writes nothing, and refuses writes', () => {
    const dir = scratch();
    const path = join(dir, 'pp.db');
    const writer = openStore(path);
    writer.appendAudit({ at: 1, actor: 'alice', action: 'test.entry', runId: null, details: { n: 1 } });
    writer.close();
    const before = digest(path);

    const reader = openStore(path, { readOnly: true });
    try {
      expect(reader.listRuns({ limit: 10 })).toEqual([]);
      expect(reader.verifyAudit().ok).toBe(true);
      expect(reader.auditRows({}).map((r) => r.action)).toEqual(['test.entry']);
      expect(() => reader.appendAudit({ at: 2, actor: 'bob', action: 'x', runId: null, details: {} })).toThrow();
    } finally {
      reader.close();
    }
    expect(digest(path)).toBe(before);
    expect(readdirSync(dir).filter((f) => f !== 'pp.db-shm').sort()).toEqual(['pp.db', 'pp.db-wal'].filter((f) => readdirSync(dir).includes(f)));
    if (readdirSync(dir).includes('pp.db-wal')) expect(readFileSync(join(dir, 'pp.db-wal'))).toHaveLength(0);
  });

  it('a missing file is an error, never a new database', () => {
    const dir = scratch();
    expect(() => openStore(join(dir, 'none.db'), { readOnly: true })).toThrow(StoreError);
    expect(readdirSync(dir)).toEqual([]);
  });
});
