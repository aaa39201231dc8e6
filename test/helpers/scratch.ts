/** Temporary directories (and stores in them) for tests, removed when the tests that made them are done. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { openStore } from '../../src/store/index.ts';
import type { Store } from '../../src/store/index.ts';

export function makeScratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `patchpilot-${prefix}-`));
}

export function removeScratchDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Call at the top of a test file: returns a maker of directories that are all removed after the file's tests. */
export function scratchDirs(prefix: string): () => string {
  const made: string[] = [];
  afterAll(() => made.forEach(removeScratchDir));
  return () => {
    const dir = makeScratchDir(prefix);
    made.push(dir);
    return dir;
  };
}

export interface TempStore {
  dir: string;
  dbPath: string;
  store: Store;
  /** Closes the store and removes its directory. */
  cleanup(): void;
}

/** A store on a fresh file of its own; pair with `cleanup()` in afterEach. */
export function tempStore(prefix = 'store'): TempStore {
  const dir = makeScratchDir(prefix);
  const dbPath = join(dir, 'pp.db');
  const store = openStore(dbPath);
  return {
    dir,
    dbPath,
    store,
    cleanup: () => {
      store.close();
      removeScratchDir(dir);
    },
  };
}
