/**
 * The one way patchpilot reads a file a user names (a plan, a scenario, a recording, a kubeconfig, the demo's cluster
 * file). readFileSync alone blocks forever on a FIFO, reads /dev/zero until memory runs out, and decodes UTF-16 or
 * binary into text that later fails with a message about something else. Here the opened descriptor (not the path,
 * which could be swapped between a check and the read) must be a regular file, reading stops at a size cap, and the
 * bytes must be UTF-8: each refusal is one line naming the file. A leaf: imports nothing of patchpilot, so the
 * simulator, the cluster adapter and the CLI all share it.
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** Kubeconfigs: real ones are kilobytes (certificates inline); megabytes are a mistake, or /dev/zero via a symlink. */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
/**
 * Plans are a screenful. The yaml package parses about 30,000 short lines a second on a busy 2-core machine, so a
 * plan at this cap still answers in a few seconds; at 4 MB it took over ten.
 */
export const MAX_PLAN_BYTES = 1024 * 1024;
/** Scenarios list nodes one per line at most (large-cluster-200.yaml is 2 KB; generated clusters take a count). */
export const MAX_SCENARIO_BYTES = 4 * 1024 * 1024;
/** The demo's saved cluster: JSON, parsed quickly, a few kilobytes per node. */
export const MAX_STATE_BYTES = 16 * 1024 * 1024;
/** A recording grows with nodes and events: about 4.5 KB per node (0.9 MB for 200 nodes), so 5,000 nodes fit many times. */
export const MAX_RECORDING_BYTES = 256 * 1024 * 1024;

export class UserFileError extends Error {
  override readonly name = 'UserFileError';
  readonly path: string;
  /** The reason alone (`is not a regular file`), for callers that name the file their own way. */
  readonly reason: string;
  readonly hint: string;

  constructor(path: string, reason: string, hint: string) {
    super(`${path} ${reason}`);
    this.path = path;
    this.reason = reason;
    this.hint = hint;
  }
}

/** The problem behind each errno a user's path or disk causes: Node's own text names the syscall, not the problem. */
export const ERRNO_PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or directory',
  ELOOP: 'too many levels of symbolic links',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of its path is a file, not a directory',
  EISDIR: 'it is a directory',
  ENAMETOOLONG: 'a path too long for the filesystem',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only filesystem',
  EIO: 'input/output error',
  EFBIG: 'the file is too large for the filesystem',
  ENXIO: 'a device or socket with nothing behind it',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files',
};

/** The problem, said of a path someone typed ("PATH does not exist", "PATH cannot be written: ..."). */
export function describeErrno(code: string | undefined): string | null {
  const problem = code === undefined ? undefined : ERRNO_PROBLEMS[code];
  if (problem === undefined) return null;
  switch (code) {
    case 'ENOENT':
      return 'does not exist';
    case 'ELOOP':
      return `is a loop of symbolic links (${problem})`;
    case 'EACCES':
    case 'EPERM':
      return `cannot be accessed: ${problem}`;
    case 'ENOTDIR':
      return `is not reachable: ${problem}`;
    case 'EISDIR':
      return 'is a directory, not a file';
    case 'ENAMETOOLONG':
    case 'ENXIO':
      return `is ${problem}`;
    case 'EIO':
      return `cannot be read or written: ${problem}`;
    case 'EMFILE':
    case 'ENFILE':
      return `cannot be opened: ${problem}`;
    default:
      return `cannot be written: ${problem}`;
  }
}

function megabytes(bytes: number): string {
  return `${Math.round((bytes / (1024 * 1024)) * 10) / 10} MB`;
}

/**
 * The text of the file at `path`, or a UserFileError: not a regular file, larger than `maxBytes`, UTF-16/UTF-32,
 * NUL bytes (binary), or not UTF-8. A UTF-8 byte order mark is dropped (JSON.parse would refuse it).
 * `what` names the kind of file in messages and hints ("plan", "scenario").
 */
export function readUserFile(path: string, what: string, maxBytes = MAX_DOCUMENT_BYTES): string {
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading otherwise waits for a writer, forever; fstat below then refuses it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserFileError(path, describeErrno(code) ?? `cannot be read (${code ?? String(err)})`, `check the path of the ${what} file`);
  }
  let bytes: Buffer;
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new UserFileError(path, 'is a directory, not a file', `give the path of a ${what} file`);
    if (!stat.isFile()) throw new UserFileError(path, 'is not a regular file (a FIFO, a device or a socket)', `save the ${what} to a file and give its path`);
    if (stat.size > maxBytes) throw tooLarge(path, what, maxBytes);
    // Read to the cap, not to the size fstat gave: files in /proc say 0 bytes, and a file may grow while being read.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
      if (total > maxBytes) throw tooLarge(path, what, maxBytes);
    }
    bytes = Buffer.concat(chunks, total);
  } catch (err) {
    if (err instanceof UserFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserFileError(path, describeErrno(code) ?? `cannot be read (${code ?? String(err)})`, `check the ${what} file`);
  } finally {
    closeSync(fd);
  }
  return decodeUserText(bytes, path, what);
}

/**
 * Refuses what readUserFile refuses about the file itself (missing, a directory, a FIFO or a device, larger than
 * `maxBytes`) without reading it: for files another library reads later with a plain readFileSync (a kubeconfig's
 * certificates and token file), which would block on a FIFO and read /dev/zero without end.
 */
export function checkUserFile(path: string, what: string, maxBytes: number): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserFileError(path, describeErrno(code) ?? `cannot be read (${code ?? String(err)})`, `check the path of the ${what}`);
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) throw new UserFileError(path, 'is a directory, not a file', `give the path of the ${what}`);
    if (!stat.isFile()) throw new UserFileError(path, 'is not a regular file (a FIFO, a device or a socket)', `save the ${what} to a file and give its path`);
    if (stat.size > maxBytes) throw tooLarge(path, what, maxBytes);
  } finally {
    closeSync(fd);
  }
}

function tooLarge(path: string, what: string, maxBytes: number): UserFileError {
  return new UserFileError(path, `is larger than ${megabytes(maxBytes)}, far more than any ${what}`, `check that ${path} is the ${what} you meant`);
}

/** UTF-8 text from a user's bytes, or a UserFileError saying which encoding it is instead. */
export function decodeUserText(bytes: Uint8Array, path: string, what: string): string {
  const saveAsUtf8 = `convert it (iconv -f UTF-16 -t UTF-8 OLD > NEW), or save it as UTF-8 in the editor`;
  const [b0, b1, b2, b3] = bytes;
  // UTF-32 first: its little-endian mark begins with UTF-16's.
  if (b0 === 0xff && b1 === 0xfe && b2 === 0 && b3 === 0) throw new UserFileError(path, 'is UTF-32 (little-endian) text, not UTF-8: save it as UTF-8', saveAsUtf8);
  if (b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff) throw new UserFileError(path, 'is UTF-32 (big-endian) text, not UTF-8: save it as UTF-8', saveAsUtf8);
  if (b0 === 0xff && b1 === 0xfe) throw new UserFileError(path, 'is UTF-16 (little-endian) text, not UTF-8: save it as UTF-8', saveAsUtf8);
  if (b0 === 0xfe && b1 === 0xff) throw new UserFileError(path, 'is UTF-16 (big-endian) text, not UTF-8: save it as UTF-8', saveAsUtf8);
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    // UTF-16 without a mark puts a NUL beside every ASCII character.
    const utf16 = bytes.length >= 4 && (bytes[1] === 0 || bytes[0] === 0) && (bytes[3] === 0 || bytes[2] === 0);
    throw new UserFileError(path, utf16 ? 'looks like UTF-16 text (NUL bytes between the characters), not UTF-8: save it as UTF-8' : `holds a NUL byte (at byte ${nul}): a binary file, not a ${what}`, utf16 ? saveAsUtf8 : `give the path of a ${what} file`);
  }
  try {
    // ignoreBOM: false drops a UTF-8 byte order mark, which JSON.parse would refuse.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new UserFileError(path, 'is not UTF-8 text: save it as UTF-8', saveAsUtf8);
  }
}
