/**
 * The one place the store reads a column whose type SQLite does not enforce: JSON text and epoch-millisecond
 * timestamps. SQLite keeps whatever another program (`sqlite3`, a script, a disk editor) writes into them: '{bad' in a
 * JSON column, 'yesterday' or 1e300 in an INTEGER one. Such a value is refused here with a StoreError (ROW_CORRUPT)
 * naming the database, table, column and row, instead of a SyntaxError from JSON.parse, an "Invalid time value" from
 * the first date printed, or a "took NaNs" that looks like a result.
 */
import { shellQuote, StoreError } from './errors.ts';

/** Which row a value comes from: its table, and its key as column = value pairs (the WHERE clause that finds it). */
export interface RowRef {
  /** The database file, for the message and the sqlite3 command in the hint. */
  db: string;
  table: string;
  key: Record<string, string | number>;
}

/**
 * The latest timestamp taken as one: 9999-12-31T23:59:59.999Z. Later ones are still Dates, but print as "+010000-…"
 * (six-digit years), which no run, audit record or notification of patchpilot's ever had.
 */
export const MAX_TIME_MS = 253_402_300_799_999;

/** JSON text; `shape` (optional) says what the parsed value must be, e.g. 'an object'. */
export function readJson(row: RowRef, column: string, value: unknown, shape?: { is: (parsed: unknown) => boolean; expected: string }): unknown {
  if (typeof value !== 'string') throw rowCorrupt(row, column, value, 'not JSON text');
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (error) {
    throw rowCorrupt(row, column, value, 'not valid JSON', error);
  }
  if (shape && !shape.is(parsed)) throw rowCorrupt(row, column, value, `not ${shape.expected}`);
  return parsed;
}

/** JSON text or NULL. */
export function readNullableJson(row: RowRef, column: string, value: unknown, shape?: { is: (parsed: unknown) => boolean; expected: string }): unknown {
  return value === null ? null : readJson(row, column, value, shape);
}

/**
 * An epoch-millisecond timestamp from 0 (1970) to {@link MAX_TIME_MS} (the end of year 9999). Not necessarily whole: a
 * scaled clock (the sandbox's --speed) stamps fractions of a millisecond, and the store keeps what it was given.
 */
export function readTime(row: RowRef, column: string, value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_TIME_MS) return value;
  throw rowCorrupt(row, column, value, 'not a time (milliseconds since 1970, up to the year 9999)');
}

/** A timestamp or NULL. */
export function readNullableTime(row: RowRef, column: string, value: unknown): number | null {
  return value === null ? null : readTime(row, column, value);
}

export const AN_OBJECT = { is: (v: unknown) => v !== null && typeof v === 'object' && !Array.isArray(v), expected: 'a JSON object' };
/** A run's trigger: an object whose `notBefore`, when set, is a time (1e400 reads as Infinity, which no date prints). */
export const A_TRIGGER = {
  is: (v: unknown) => {
    if (!AN_OBJECT.is(v)) return false;
    const notBefore = (v as { notBefore?: unknown }).notBefore;
    return notBefore === undefined || notBefore === null || (typeof notBefore === 'number' && Number.isFinite(notBefore) && notBefore >= 0 && notBefore <= MAX_TIME_MS);
  },
  expected: 'a trigger (an object whose notBefore is a time or null)',
};
export const A_LIST_OF_NAMES = { is: (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string'), expected: 'a JSON list of names' };

function rowCorrupt(row: RowRef, column: string, value: unknown, problem: string, cause?: unknown): StoreError {
  const where = Object.entries(row.key)
    .map(([name, v]) => `${name} = ${typeof v === 'number' ? String(v) : `'${v.replaceAll("'", "''")}'`}`)
    .join(' AND ');
  const select = `SELECT ${column} FROM ${row.table} WHERE ${where}`;
  // In double quotes, as the other hints write SQL, unless a value holds what the shell expands there.
  const command = /^[^"$`\\!]*$/.test(select) ? `"${select}"` : shellQuote(select);
  return new StoreError(
    'ROW_CORRUPT',
    `Database ${row.db}: ${row.table}.${column} of the row where ${where} holds ${preview(value)}, ${problem}; another program changed it`,
    `Restore the database from a backup, or correct that value; see it with: sqlite3 ${shellQuote(row.db)} ${command}`,
    cause === undefined ? undefined : { cause },
  );
}

/** The stored value as one short line: JSON-quoted (so a newline in it cannot break the message), cut at 40 characters. */
function preview(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (value === null) return 'NULL';
  if (Buffer.isBuffer(value)) return `a blob of ${value.length} bytes`;
  return String(value);
}
