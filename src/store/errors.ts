import Database from 'better-sqlite3';

export type StoreErrorCode =
  | 'DB_DIR_MISSING'
  | 'DB_NOT_FOUND'
  | 'DB_CANNOT_OPEN'
  | 'DB_NOT_A_DATABASE'
  | 'DB_CORRUPT'
  | 'DB_TOO_NEW'
  | 'DB_LOCKED'
  | 'DB_READONLY'
  | 'DB_FULL'
  | 'RUN_NOT_FOUND'
  | 'RUN_EXISTS'
  | 'SNAPSHOT_CORRUPT'
  | 'RUN_OWNER_CORRUPT'
  | 'SCHEDULE_CORRUPT'
  /** A value another program wrote that the store cannot read (see columns.ts). */
  | 'ROW_CORRUPT';

/** A failure the user can act on: `message` says what is wrong, `hint` what to do about it. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly hint: string;

  constructor(code: StoreErrorCode, message: string, hint: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.hint = hint;
  }
}

export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  return error instanceof StoreError && (code === undefined || error.code === code);
}

/** Quotes a path for a copy-pasteable shell command in a hint. */
export function shellQuote(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/**
 * Turns the SQLite errors that come from the environment (another process holding the lock, a damaged file, a full
 * or read-only disk) into StoreErrors with a hint. Anything else is a bug in the caller or the store and is returned
 * unchanged so its stack trace stays useful.
 */
export function translateSqliteError(error: unknown, dbPath: string): unknown {
  if (!(error instanceof Database.SqliteError)) return error;
  const code = error.code;
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new StoreError(
      'DB_LOCKED',
      `Database ${dbPath} is locked by another process`,
      'Another patchpilot process is writing to this database; wait for it to finish or stop it, then retry.',
      { cause: error },
    );
  }
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return corruptDatabaseError(dbPath, error);
  }
  if (code.startsWith('SQLITE_FULL')) {
    return new StoreError('DB_FULL', `The disk holding ${dbPath} is full`, 'Free disk space, then retry.', {
      cause: error,
    });
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return new StoreError(
      'DB_READONLY',
      `Database ${dbPath} is read-only`,
      'Make the file and its directory writable by this user (SQLite also writes -wal and -shm files beside it).',
      { cause: error },
    );
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_IOERR')) {
    return new StoreError(
      'DB_CANNOT_OPEN',
      `Cannot use database ${dbPath}: ${error.message}`,
      'Check that the file and its directory exist and that this user may read and write them (SQLite also writes -wal and -shm files beside it); commands that only read (runs, audit) need read access only.',
      { cause: error },
    );
  }
  return error;
}

export function corruptDatabaseError(dbPath: string, cause: unknown): StoreError {
  return new StoreError(
    'DB_CORRUPT',
    `Database ${dbPath} is damaged (truncated or corrupt)`,
    `Restore it from a backup, or move it aside (mv ${shellQuote(dbPath)} ${shellQuote(`${dbPath}.corrupt`)}) ` +
      'and start with a new one; runs recorded in it cannot be resumed.',
    { cause },
  );
}
