/**
 * Output files named on the command line (--report, --record, a kubeconfig to write) are checked before any work
 * starts, so that a typo costs a clear message instead of a finished run and a stack trace.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UserError } from './user-error.ts';

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** Throws UserError unless `path` can be created or overwritten as a file (missing parent folders are created later). */
export function checkOutputFile(path: string, option: string): void {
  const flag = option.split(' ')[0]!;
  const example = { '--report': 'out/report.html', '--junit': 'out/junit.xml', '--record': 'out/run.jsonl', '--kubeconfig': 'out/sandbox.kubeconfig' }[flag] ?? 'out/file';
  const hint = `give ${flag} a file path, for example ${flag} ${example}`;
  try {
    const stat = statSync(path);
    if (stat.isDirectory()) throw new UserError(`${option} ${path} is a directory, not a file`, hint);
    accessSync(path, constants.W_OK);
    return;
  } catch (err) {
    if (err instanceof UserError) throw err;
    if (errnoOf(err) !== 'ENOENT') throw new UserError(`${option} ${path}: cannot write it (${errnoOf(err) ?? String(err)})`, hint);
  }
  // It does not exist yet: the nearest existing ancestor must be a folder we may write into.
  let dir = dirname(resolve(path));
  for (;;) {
    try {
      const stat = statSync(dir);
      if (!stat.isDirectory()) throw new UserError(`${option} ${path}: ${dir} is a file, not a folder`, hint);
      accessSync(dir, constants.W_OK);
      return;
    } catch (err) {
      if (err instanceof UserError) throw err;
      if (errnoOf(err) !== 'ENOENT') throw new UserError(`${option} ${path}: cannot write into ${dir} (${errnoOf(err) ?? String(err)})`, hint);
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}
