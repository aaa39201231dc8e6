/** Where the CLI keeps its database unless told otherwise. */
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/store.ts';

export const DEFAULT_DB = join('.patchpilot', 'patchpilot.db');

/**
 * Opens the store. The default location is created on first use; an explicit --db must point into an existing
 * directory, so that a typo does not silently start a new, empty history somewhere else.
 */
export function openCliStore(db: string | undefined): Store {
  if (db === undefined) {
    mkdirSync(dirname(resolve(DEFAULT_DB)), { recursive: true });
    return openStore(DEFAULT_DB);
  }
  return openStore(db);
}
