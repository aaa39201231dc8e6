/**
 * `JSON.stringify(value, null, 2)`, written in pieces: a 100,000-node simulation's result is hundreds of megabytes of
 * JSON, and one string of it (plus the copy a stream makes) would more than double the process's peak memory. The
 * text is the same, byte for byte: containers are walked here, and each small leaf value is left to JSON.stringify.
 */
import { fstatSync, writeSync, type Stats } from 'node:fs';
import type { Writable } from 'node:stream';
import { isatty } from 'node:tty';

/** Arrays and objects with at most this many entries are stringified whole: walking them here would only cost time. */
const WHOLE = 32;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Yields the pieces of `JSON.stringify(value, null, 2)` (value: JSON data, as a simulation result is). */
export function* jsonPieces(value: unknown, indent = ''): Generator<string> {
  const json = toJsonValue(value);
  if (json === undefined) return;
  yield* pieces(json, indent);
}

function* pieces(value: Json, indent: string): Generator<string> {
  if (value === null || typeof value !== 'object' || size(value) <= WHOLE) {
    yield whole(value, indent);
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    yield '[';
    for (let i = 0; i < value.length; i++) {
      yield `${i === 0 ? '' : ','}\n${inner}`;
      // As JSON.stringify does: an array keeps its slots, an unrepresentable element becoming null.
      yield* pieces(toJsonValue(value[i]) ?? null, inner);
    }
    yield `\n${indent}]`;
    return;
  }
  let first = true;
  for (const key of Object.keys(value)) {
    const entry = toJsonValue(value[key]);
    if (entry === undefined) continue;
    yield `${first ? '{' : ','}\n${inner}${JSON.stringify(key)}: `;
    first = false;
    yield* pieces(entry, inner);
  }
  yield first ? '{}' : `\n${indent}}`;
}

function size(value: Json[] | { [key: string]: Json }): number {
  return Array.isArray(value) ? value.length : Object.keys(value).length;
}

/** One value, indented as it would be at this depth of the whole document. */
function whole(value: Json, indent: string): string {
  const text = JSON.stringify(value, null, 2);
  return indent === '' ? text : text.replace(/\n/g, `\n${indent}`);
}

/** What JSON.stringify would make of a value before writing it: toJSON applied; undefined for what it leaves out. */
function toJsonValue(value: unknown): Json | undefined {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON: () => unknown }).toJSON();
  }
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') return undefined;
  if (typeof value === 'bigint') throw new TypeError('Do not know how to serialize a BigInt');
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return value.valueOf() as Json;
  return value as Json;
}

/**
 * Writes `JSON.stringify(value, null, 2)` and a newline to `out`, in chunks of about `chunkSize` characters, waiting
 * for the stream to drain whenever it asks to (a pipe read slowly must not make the whole document pile up here).
 */
export async function writeJson(out: Writable, value: unknown, chunkSize = 1 << 16): Promise<void> {
  const write = directWriter(out) ?? streamWriter(out);
  let buffer: string[] = [];
  let length = 0;
  const flush = async () => {
    if (buffer.length === 0) return;
    const chunk = buffer.join('');
    buffer = [];
    length = 0;
    await write(chunk);
  };
  for (const piece of jsonPieces(value)) {
    buffer.push(piece);
    length += piece.length;
    if (length >= chunkSize) await flush();
  }
  buffer.push('\n');
  await flush();
}

function streamWriter(out: Writable): (chunk: string) => Promise<void> {
  return async (chunk) => {
    if (out.write(chunk)) return;
    // A reader that went away (a closed pipe) ends the wait too: the stream's own error handling reports it.
    await new Promise<void>((resolve) => {
      const done = () => {
        out.off('drain', done);
        out.off('close', done);
        out.off('error', done);
        resolve();
      };
      out.on('drain', done);
      out.on('close', done);
      out.on('error', done);
    });
  };
}

/**
 * Standard output redirected to a file (or /dev/null) is a stream that writes synchronously, but turns each string
 * into a new Buffer first: garbage outside V8's heap that it frees only at its next collection, about 190 MB at the
 * end of a 100,000-node simulation (issue 13). Such a descriptor is written directly, which encodes without a Buffer.
 */
function directWriter(out: Writable): ((chunk: string) => Promise<void>) | null {
  if (out !== process.stdout && out !== process.stderr) return null;
  const fd = (out as Writable & { fd?: unknown }).fd;
  if (typeof fd !== 'number' || out.writableLength > 0) return null;
  let stat: Stats;
  try {
    stat = fstatSync(fd);
  } catch {
    return null;
  }
  if (!stat.isFile() && !(stat.isCharacterDevice() && !isatty(fd))) return null;
  return async (chunk) => {
    const bytes = Buffer.byteLength(chunk);
    const written = writeSync(fd, chunk);
    // A regular file takes the whole string; should it not, the rest goes as bytes.
    if (written < bytes) writeAll(fd, Buffer.from(chunk).subarray(written));
  };
}

function writeAll(fd: number, bytes: Buffer): void {
  for (let offset = 0; offset < bytes.length; ) offset += writeSync(fd, bytes, offset);
}
