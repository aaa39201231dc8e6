import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION, openStore, StoreError } from '../../src/store/index.ts';
import type { Store, StoreErrorCode } from '../../src/store/index.ts';
import { applyMigrations, MIGRATIONS } from '../../src/store/migrations.ts';
import type { Migration } from '../../src/store/migrations.ts';
import { makeScratchDir, removeScratchDir } from '../helpers/scratch.ts';

let dir: string;
const open: Store[] = [];
beforeEach(() => {
  dir = makeScratchDir('store');
});
afterEach(() => {
  for (const store of open.splice(0)) store.close();
  removeScratchDir(dir);
});

function openTracked(path: string, opts?: Parameters<typeof openStore>[1]): Store {
  const store = openStore(path, opts);
  open.push(store);
  return store;
}

function catchError(action: () => unknown): unknown {
  try {
    action();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

function expectStoreError(action: () => unknown, code: StoreErrorCode): StoreError {
  const error = catchError(action);
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).code).toBe(code);
  return error as StoreError;
}

function seedRun(store: Store, id = 'run-1'): void {
  store.createRun({ id, cluster: 'prod', hash: 'h1', plan: {}, trigger: {}, requestedBy: 'U1', createdAt: 1_000 });
}

describe('opening a database', () => {
  it('turns on WAL, synchronous NORMAL, foreign keys and a 5 s busy timeout, with small pages', () => {
    const path = join(dir, 'pp.db');
    const store = openTracked(path);

    expect(store.connectionSettings()).toEqual({
      journalMode: 'wal',
      pageSize: 1024,
      walAutocheckpointPages: 16_384,
      synchronous: 'normal',
      foreignKeys: true,
      busyTimeoutMs: 5000,
    });
    // WAL is a property of the file, visible to any other connection.
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
    expect(store.path).toBe(path);
  });

  it('works in memory', () => {
    const store = openTracked(':memory:');
    seedRun(store);
    expect(store.requireRun('run-1').status).toBe('scheduled');
  });

  it('applies migrations once: reopening keeps data and records each version once', () => {
    const path = join(dir, 'pp.db');
    seedRun(openTracked(path, { now: () => 42 }));
    open.pop()?.close();

    const reopened = openTracked(path, { now: () => 99 });
    expect(reopened.requireRun('run-1').cluster).toBe('prod');
    reopened.close();
    open.pop();

    const raw = new Database(path, { readonly: true });
    const applied = raw.prepare('SELECT version, name, applied_at AS appliedAt FROM schema_migrations').all();
    raw.close();
    expect(applied).toEqual(MIGRATIONS.map(({ version, name }) => ({ version, name, appliedAt: 42 })));
  });

  it('refuses a database written by a newer patchpilot, naming the version', () => {
    const path = join(dir, 'pp.db');
    openTracked(path);
    open.pop()?.close();
    const futureVersion = LATEST_SCHEMA_VERSION + 1;
    const raw = new Database(path);
    raw.prepare("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from the future', 0)").run(
      futureVersion,
    );
    raw.close();

    const error = expectStoreError(() => openStore(path), 'DB_TOO_NEW');
    expect(error.message).toContain(`schema version ${futureVersion}`);
    expect(error.hint).toMatch(/upgrade patchpilot/i);
  });

  it('fails with DB_LOCKED when another process holds the write lock past the busy timeout', () => {
    const path = join(dir, 'pp.db');
    const store = openTracked(path, { busyTimeoutMs: 20 });
    seedRun(store);
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const error = expectStoreError(() => store.commit({ runId: 'run-1', at: 2_000, run: { status: 'rolling' } }), 'DB_LOCKED');
      expect(error.cause).toBeInstanceOf(Database.SqliteError);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    store.commit({ runId: 'run-1', at: 2_000, run: { status: 'rolling' } });
    expect(store.requireRun('run-1')).toMatchObject({ status: 'rolling', updatedAt: 2_000 });
  });
});

describe('opening a bad path', () => {
  function siblings(path: string): string[] {
    return readdirSync(join(path, '..')).sort();
  }

  it('refuses a missing directory, names it and the fix, and creates nothing', () => {
    const missing = join(dir, 'no', 'such');
    const error = expectStoreError(() => openStore(join(missing, 'pp.db')), 'DB_DIR_MISSING');
    expect(error.message).toContain(missing);
    expect(error.hint).toContain(`mkdir -p ${missing}`);
    expect(error.hint).toContain('--db PATH');
    expect(existsSync(join(dir, 'no'))).toBe(false);
  });

  it('refuses a text file without touching it', () => {
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'these are not the tables you are looking for\n');
    const error = expectStoreError(() => openStore(path), 'DB_NOT_A_DATABASE');
    expect(error.message).toContain(path);
    expect(readFileSync(path, 'utf8')).toBe('these are not the tables you are looking for\n');
    expect(siblings(path)).toEqual(['notes.txt']);
  });

  it.each([
    { damage: 'truncated to half', inflict: (path: string) => truncateSync(path, Math.floor(statSync(path).size / 2)) },
    {
      // Only a scan of every page finds this one: the schema and the first pages are intact.
      damage: 'with one page overwritten',
      inflict: (path: string) => {
        const fd = openSync(path, 'r+');
        writeSync(fd, Buffer.alloc(4096, 0xa5), 0, 4096, 10 * 4096);
        closeSync(fd);
      },
    },
  ])('refuses a database $damage, leaving the file as it was and no -wal or -shm behind', ({ inflict }) => {
    const path = join(dir, 'pp.db');
    const store = openTracked(path);
    for (let i = 0; i < 200; i++) seedRun(store, `run-${i}`);
    open.pop()?.close();
    inflict(path);
    const damaged = readFileSync(path);

    const error = expectStoreError(() => openStore(path), 'DB_CORRUPT');
    expect(error.message).toContain(path);
    expect(error.hint).toMatch(/backup/);
    expect(error.cause).toBeDefined();
    expect(readFileSync(path).equals(damaged)).toBe(true);
    expect(siblings(path)).toEqual(['pp.db']);
  });

  it("refuses another program's SQLite database without adding tables to it", () => {
    const path = join(dir, 'other.db');
    const raw = new Database(path);
    raw.exec('CREATE TABLE recipes (name TEXT)');
    raw.close();

    expectStoreError(() => openStore(path), 'DB_NOT_A_DATABASE');
    const check = new Database(path, { readonly: true });
    const tables = check.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").pluck().all();
    check.close();
    expect(tables).toEqual(['recipes']);
  });

  it('with create: false, refuses a missing file and creates nothing', () => {
    const path = join(dir, 'pp.db');
    expectStoreError(() => openStore(path, { create: false }), 'DB_NOT_FOUND');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a directory', () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    const error = expectStoreError(() => openStore(path), 'DB_CANNOT_OPEN');
    expect(error.message).toContain('is a directory');
  });

  it('refuses a foreign table named schema_migrations (version only), instead of failing in the first migration', () => {
    const path = join(dir, 'other.db');
    const raw = new Database(path);
    raw.exec('CREATE TABLE schema_migrations (version INTEGER); INSERT INTO schema_migrations VALUES (999)');
    raw.close();
    expect(expectStoreError(() => openStore(path), 'DB_NOT_A_DATABASE').message).toBe(`${path} is a SQLite database, but not a patchpilot one`);
    expectStoreError(() => openStore(path, { readOnly: true }), 'DB_NOT_A_DATABASE');
  });

  it('a loop of symbolic links, or a path through a file, is named as such', () => {
    symlinkSync(join(dir, 'l1'), join(dir, 'l2'));
    symlinkSync(join(dir, 'l2'), join(dir, 'l1'));
    for (const readOnly of [false, true]) {
      expect(expectStoreError(() => openStore(join(dir, 'l1'), { readOnly }), 'DB_CANNOT_OPEN').message).toMatch(/l1: it is a loop of symbolic links \(too many levels of symbolic links\)$/);
    }
    writeFileSync(join(dir, 'afile'), '');
    expect(expectStoreError(() => openStore(join(dir, 'afile/x.db')), 'DB_DIR_MISSING').message).toMatch(/afile is a file, not a directory$/);
  });

  it('read-only, an empty file is named as such (it has no schema_migrations to read)', () => {
    const path = join(dir, 'e.db');
    writeFileSync(path, '');
    expect(expectStoreError(() => openStore(path, { readOnly: true }), 'DB_NOT_A_DATABASE').message).toBe(`Database ${path} is an empty file, not a patchpilot database yet`);
  });

  it('opens an empty file as a new database', () => {
    const path = join(dir, 'pp.db');
    writeFileSync(path, '');
    const store = openTracked(path);
    seedRun(store);
    expect(store.listRuns()).toHaveLength(1);
  });
});

describe('migrations', () => {
  it('are numbered 1, 2, 3, … in order, with names', () => {
    expect(MIGRATIONS.map((migration) => migration.version)).toEqual(MIGRATIONS.map((_, index) => index + 1));
    for (const migration of MIGRATIONS) expect(migration.name).not.toBe('');
    expect(LATEST_SCHEMA_VERSION).toBe(MIGRATIONS.length);
  });

  it('roll back a failing migration whole, keeping the version before it', () => {
    const db = new Database(':memory:');
    const migrations: Migration[] = [
      { version: 1, name: 'one', up: 'CREATE TABLE one (x INTEGER)' },
      { version: 2, name: 'two', up: 'CREATE TABLE two (x INTEGER); INSERT INTO no_such_table VALUES (1);' },
    ];

    expect(() => applyMigrations(db, { dbPath: ':memory:', now: () => 0, migrations })).toThrow(/no_such_table/);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
    expect(tables).toEqual(['one', 'schema_migrations']);
    expect(db.prepare('SELECT max(version) FROM schema_migrations').pluck().get()).toBe(1);
    db.close();
  });
});
