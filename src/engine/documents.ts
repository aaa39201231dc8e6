/**
 * Reading the YAML and JSON documents users hand us (plans, scenarios, request bodies) without letting a hostile or
 * broken file crash the process. The yaml package already refuses "billion laughs" alias bombs, but by throwing a
 * ReferenceError out of `toJS()`; and every recursive parser (yaml's, JSON's consumers) overflows the stack on a
 * document nested 100,000 levels deep. Both become a DocumentError with one line a user can act on.
 * Pure: text in, data (or a DocumentError) out.
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, parseDocument, type Document, type DocumentOptions, type ParseOptions, type SchemaOptions } from 'yaml';
import { formatPath } from './plan.ts';

/** More alias expansions than this is an attack or a mistake, never a plan: yaml's own default (100) made explicit. */
export const MAX_ALIAS_COUNT = 100;
/** Deeper than any real plan, scenario or Kubernetes object, and far below what the stack can take. */
export const MAX_NESTING_DEPTH = 256;

export class DocumentError extends Error {
  override readonly name = 'DocumentError';
  /** 1-based line and column of the problem when known. */
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** A syntax error (as opposed to an alias bomb or excessive nesting). */
  readonly syntax: boolean;

  constructor(message: string, line?: number, column?: number, syntax = false) {
    super(message);
    this.line = line;
    this.column = column;
    this.syntax = syntax;
  }

  /** `line 3, column 1: ` (or nothing), to put before the message. */
  get position(): string {
    if (this.line === undefined) return '';
    return this.column === undefined ? `line ${this.line}: ` : `line ${this.line}, column ${this.column}: `;
  }
}

const tooDeep = `nested too deeply (the limit is ${MAX_NESTING_DEPTH} levels)`;
const tooManyAliases = `YAML aliases expand too much (more than ${MAX_ALIAS_COUNT} alias expansions): an alias bomb?`;

/**
 * How deeply a JSON text nests arrays and objects, counted outside strings, so that a 100,000-deep body is refused
 * before anything recursive walks it.
 */
export function jsonDepthExceeds(text: string, limit = MAX_NESTING_DEPTH): { line: number } | null {
  let depth = 0;
  let line = 1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') line++;
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      if (++depth > limit) return { line };
    } else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return null;
}

const ROUGH_LIMIT = 4 * MAX_NESTING_DEPTH;

function roughNesting(text: string): { depth: number; line: number } {
  let depth = 0;
  let deepest = 0;
  let deepestLine = 1;
  let line = 1;
  let atLineStart = true;
  let dashes = 0;
  let indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      line++;
      atLineStart = true;
      dashes = 0;
      indent = 0;
      continue;
    }
    if (c === 91 || c === 123) depth++;
    else if (c === 93 || c === 125) depth = Math.max(0, depth - 1);
    if (atLineStart) {
      if (c === 32) indent++;
      else if (c === 45 && (text.charCodeAt(i + 1) === 32 || text.charCodeAt(i + 1) === 10)) dashes++;
      else atLineStart = false;
    }
    const here = depth + dashes + (indent >> 1);
    if (here > deepest) {
      deepest = here;
      deepestLine = line;
    }
  }
  return { depth: deepest, line: deepestLine };
}

function isStackOverflow(err: unknown): boolean {
  return err instanceof RangeError || (err instanceof Error && /call stack|stack overflow/i.test(err.message));
}

/** Depth of a parsed value, iteratively (a recursive walk would overflow on exactly the inputs it looks for). */
export function valueDepthExceeds(value: unknown, limit = MAX_NESTING_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d >= limit) return true;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d + 1]);
  }
  return false;
}

/**
 * The first key that repeats within one mapping (or a `__proto__` key, which no mapping may have), found in linear time. yaml's own check (`uniqueKeys: true`) compares
 * each new key with every earlier one of its map: a plan whose nodeSelector had 30,000 keys (350 KB) took 22 s.
 * Keys are equal as yaml's default says: the same scalar value (so `1` and `"1"` differ).
 */
export function findDuplicateKey(doc: Document): { key: string; offset: number | undefined; problem: 'duplicate' | 'proto' | 'complex' } | null {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const pair of node.items) {
        const key: unknown = pair.key;
        // A complex key (`? [a, b]`): no field of ours is one, and toJS would stringify it with a Node warning.
        if (isMap(key) || isSeq(key)) return { key: '?', offset: key.range?.[0], problem: 'complex' };
        const value = key === null ? null : isScalar(key) ? key.value : key;
        if (seen.has(value)) return { key: String(value), offset: isScalar(key) ? key.range?.[0] : undefined, problem: 'duplicate' };
        // toJS assigns this key, which sets the object's prototype: the entry vanishes (a nodeSelector that
        // selected every node) and the object inherits what the user wrote.
        if (value === '__proto__') return { key: '__proto__', offset: isScalar(key) ? key.range?.[0] : undefined, problem: 'proto' };
        seen.add(value);
        stack.push(pair.key, pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    } else if (isPair(node)) {
      stack.push(node.key, node.value);
    }
  }
  return null;
}

/**
 * How every user YAML text is read. The core schema is named, so a `%YAML 1.1` directive cannot switch to YAML 1.1's
 * rules (017 read as octal 15, 1:30 as 90).
 */
const USER_YAML_OPTIONS = { schema: 'core', prettyErrors: true, uniqueKeys: false } as const satisfies ParseOptions & DocumentOptions & SchemaOptions;

/**
 * Why a number scalar is refused, or null. Numbers in user files are written in decimal: YAML 1.2 reads `0x10` as 16,
 * `0o17` as 15 and `1e3` as 1000 (yaml marks them with the formats HEX, OCT and EXP), and a YAML 1.1 reader takes
 * `017` as octal 15 where we would read 17. `.inf`, `.nan` and `1e999` are no count or duration either. A fraction
 * in exponent form (`1e-3`, a rate) is still a decimal number. Text that only looks like a number is quoted.
 */
function nonDecimal(source: string, value: number, format: string | undefined): string | null {
  if (!Number.isFinite(value)) return `${source} is not a decimal number`;
  if (format === 'HEX' || format === 'OCT' || (format === 'EXP' && Number.isInteger(value))) return `${source} is not a decimal number (write ${value}, or "${source}" in quotes if it is text)`;
  if (/^[-+]?0[0-9]/.test(source)) return `${source} is not a decimal number: a leading 0 means octal to YAML 1.1 (write ${value}, or "${source}" in quotes if it is text)`;
  return null;
}

/** The first number in the document not written in plain decimal, with the path of its field, found iteratively. */
export function findNonDecimalNumber(doc: Document, root: readonly PropertyKey[] = []): { problem: string; offset: number | undefined } | null {
  const stack: Array<[unknown, PropertyKey[], boolean]> = [[doc.contents, [...root], false]];
  while (stack.length > 0) {
    const [node, path, isKey] = stack.pop()!;
    if (isScalar(node)) {
      if (typeof node.value !== 'number') continue;
      const reason = nonDecimal(node.source ?? String(node.value), node.value, node.format);
      if (reason === null) continue;
      const field = formatPath(path) || '(root)';
      return { problem: `${field}: ${isKey ? 'key ' : ''}${reason}`, offset: node.range?.[0] };
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        const key: unknown = pair.key;
        stack.push([pair.value, [...path, isScalar(key) ? String(key.value) : '?'], false], [key, path, true]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push([item, [...path, i], false]));
    }
  }
  return null;
}

export interface ParsedYaml {
  doc: Document;
  lineCounter: LineCounter;
  /** The document as plain data. */
  value: unknown;
}

/**
 * Parses one YAML document (JSON is YAML). Syntax errors, a key repeated in a mapping (unless `uniqueKeys: false`),
 * a number not written in decimal (named by its field, under `path`), alias bombs and excessive nesting throw
 * DocumentError.
 */
export function parseYamlText(text: string, options: { uniqueKeys?: boolean; path?: readonly PropertyKey[] } = {}): ParsedYaml {
  // YAML's quoting rules are too rich for an exact pre-scan, so a rough one (brackets counted even inside quotes,
  // sequence dashes at a line's start) refuses only what is far beyond the limit, at once, instead of after seconds
  // of recursion; anything nearer is caught as the parser's stack overflow or by the depth check below.
  const rough = roughNesting(text);
  if (rough.depth > ROUGH_LIMIT) throw new DocumentError(tooDeep, rough.line);
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    // yaml's duplicate-key check is quadratic in a map's size; findDuplicateKey below does it in linear time.
    doc = parseDocument(text, { ...USER_YAML_OPTIONS, lineCounter });
  } catch (err) {
    if (isStackOverflow(err)) throw new DocumentError(tooDeep);
    throw err;
  }
  const first = doc.errors[0];
  if (first) {
    const pos = first.linePos?.[0];
    if (isStackOverflow(first)) throw new DocumentError(tooDeep, pos?.line);
    if (first.code === 'MULTIPLE_DOCS') {
      // yaml's text ("please use YAML.parseAllDocuments()") speaks to a programmer; the user needs the count.
      const count = parseAllDocuments(text).length;
      throw new DocumentError(`holds ${count} YAML documents (separated by ---); it must be one`, pos?.line, pos?.col, true);
    }
    throw new DocumentError(first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''), pos?.line, pos?.col, true);
  }
  const duplicate = findDuplicateKey(doc);
  if (duplicate && (duplicate.problem !== 'duplicate' || (options.uniqueKeys ?? true))) {
    const pos = duplicate.offset === undefined ? undefined : lineCounter.linePos(duplicate.offset);
    const message = {
      proto: 'the key "__proto__" is not allowed',
      complex: 'a key that is a list or a map is not allowed',
      duplicate: `Map keys must be unique ("${duplicate.key}" appears twice)`,
    }[duplicate.problem];
    throw new DocumentError(message, pos?.line, pos?.col, true);
  }
  const nonDecimalNumber = findNonDecimalNumber(doc, options.path);
  if (nonDecimalNumber) {
    const pos = nonDecimalNumber.offset === undefined ? undefined : lineCounter.linePos(nonDecimalNumber.offset);
    throw new DocumentError(nonDecimalNumber.problem, pos?.line, pos?.col);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    if (err instanceof ReferenceError && /excessive alias/i.test(err.message)) throw new DocumentError(tooManyAliases);
    // An alias whose anchor is not defined before it (`concurrency: *a`): yaml says which.
    if (isStackOverflow(err)) throw new DocumentError(tooDeep);
    if (err instanceof ReferenceError) throw new DocumentError(`YAML: ${err.message}`);
    throw err;
  }
  if (valueDepthExceeds(value)) throw new DocumentError(tooDeep);
  return { doc, lineCounter, value };
}

/**
 * One YAML scalar a user typed (`--set concurrency=2`), read by the same rules as a file: a number must be decimal.
 * Throws DocumentError naming `field`.
 */
export function parseYamlScalar(text: string, field: string): unknown {
  const { value } = parseYamlText(text, { path: [field] });
  return value;
}

/** JSON.parse for untrusted bodies: a syntax error or excessive nesting throws DocumentError. */
export function parseJsonText(text: string): unknown {
  const deep = jsonDepthExceeds(text);
  if (deep) throw new DocumentError(tooDeep, deep.line);
  try {
    return JSON.parse(text);
  } catch (err) {
    if (isStackOverflow(err)) throw new DocumentError(tooDeep);
    throw new DocumentError(`not valid JSON (${(err as Error).message})`);
  }
}
