/** Where the CLI keeps its database unless told otherwise. */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/store.ts';

export const DEFAULT_DB = join('.patchpilot', 'patchpilot.db');

/**
 * Opens the store. The default location is created on first use; an explicit --db must point into an existing
 * directory, so that a typo does not silently start a new, empty history somewhere else.
 */
export function openCliStore(db: string | undefined, options: { readOnly?: boolean } = {}): Store {
  // Commands that only read never write to an existing database, so they work on a read-only filesystem; with no
  // database yet they start an empty one as before (there is nothing to read either way).
  if (options.readOnly && existsSync(db ?? DEFAULT_DB)) return openStore(db ?? DEFAULT_DB, { readOnly: true });
  if (db === undefined) {
    mkdirSync(dirname(resolve(DEFAULT_DB)), { recursive: true });
    return openStore(DEFAULT_DB);
  }
  return openStore(db);
}
