/**
 * Output files named on the command line (--report, --record, a kubeconfig to write) are checked before any work
 * starts, so that a typo costs a clear message instead of a finished run and a stack trace; and written so that a
 * failure (a full disk, a read-only one) is one line naming the option, leaving no half-written file behind.
 */
import { accessSync, closeSync, constants, mkdirSync, openSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ERRNO_PROBLEMS } from '../io/user-file.ts';
import { UserError } from './user-error.ts';

function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

/** A file the command reads (or writes under another option), which an output must not overwrite. */
export interface TakenFile {
  path: string;
  /** What it is, for the message: "the scenario", "the --report file". */
  what: string;
}

/** Whether two paths name one file: the same inode when both exist, else the same absolute path. */
function sameFile(a: string, b: string): boolean {
  try {
    const [x, y] = [statSync(a), statSync(b)];
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return resolve(a) === resolve(b);
  }
}

/**
 * Throws UserError unless `path` can be created or overwritten as a file (missing parent folders are created later),
 * and is none of the `taken` files: `sim s.yaml --report s.yaml` would replace the scenario with the report.
 */
export function checkOutputFile(path: string, option: string, taken: readonly TakenFile[] = []): void {
  const flag = option.split(' ')[0]!;
  const example = { '--report': 'out/report.html', '--junit': 'out/junit.xml', '--record': 'out/run.jsonl', '--kubeconfig': 'out/sandbox.kubeconfig' }[flag] ?? 'out/file';
  const hint = `give ${flag} a file path, for example ${flag} ${example}`;
  const clash = taken.find((file) => sameFile(path, file.path));
  if (clash) throw new UserError(`${option} ${path} is ${clash.what}: writing it there would destroy it; nothing was run`, hint);
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

/** The UserError for a failed write of `option`'s `path`: "cannot write --report PATH: no space left on device". */
export function writeError(option: string, path: string, err: unknown): UserError {
  const code = errnoOf(err);
  if (code === undefined) throw err;
  // A write that cannot find its path: the file is to be created, so it is the directory that is missing.
  const reason = code === 'ENOENT' ? 'its directory does not exist' : (ERRNO_PROBLEMS[code] ?? code);
  return new UserError(`cannot write ${option} ${path}: ${reason}`, `free space or choose another path for ${option.split(' ')[0]}`);
}

/** A device or FIFO (/dev/null, /dev/stdout) is written as it is: renaming a temporary over it would replace it. */
function isSpecial(path: string): boolean {
  const stat = statSync(path, { throwIfNoEntry: false });
  return stat !== undefined && !stat.isFile() && !stat.isDirectory();
}

/**
 * Writes `text` to `path` whole or not at all: into a temporary file beside it, renamed over it once complete, so a
 * full disk leaves the old file (or none), never a truncated one. Failures are UserErrors naming `option`.
 */
export function writeOutputFile(path: string, option: string, text: string): void {
  try {
    if (isSpecial(path)) {
      writeFileSync(path, text);
      return;
    }
    mkdirSync(dirname(resolve(path)), { recursive: true });
  } catch (err) {
    throw writeError(option, path, err);
  }
  const temporary = join(dirname(resolve(path)), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temporary, text);
    renameSync(temporary, path);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw writeError(option, path, err);
  }
}

/**
 * A file written as it is produced (a recording, kept even if the command is interrupted). A write that fails is
 * remembered, the partial file removed, and `close()` throws the UserError, so the caller need not check every line.
 */
export function openOutputStream(path: string, option: string): { write: (text: string) => void; close: () => void } {
  const special = (() => {
    try {
      return isSpecial(path);
    } catch (err) {
      throw writeError(option, path, err);
    }
  })();
  let fd: number;
  try {
    if (!special) mkdirSync(dirname(resolve(path)), { recursive: true });
    fd = openSync(path, 'w');
  } catch (err) {
    throw writeError(option, path, err);
  }
  let failure: unknown = null;
  return {
    write: (text) => {
      if (failure !== null) return;
      try {
        writeSync(fd, text);
      } catch (err) {
        failure = err;
      }
    },
    close: () => {
      closeSync(fd);
      if (failure === null) return;
      if (!special) rmSync(path, { force: true });
      throw writeError(option, path, failure);
    },
  };
}
