/**
 * The three patch formats the API server accepts: JSON merge patch (RFC 7386), strategic merge patch (merge patch
 * plus list merging by key for the lists whose Go types carry `patchStrategy:"merge"`), and JSON patch (RFC 6902).
 * Each takes a mutable document (callers pass a clone of the stored object) and returns the patched document.
 */
import { isPlainObject } from './objects.ts';
import { badRequest, patchRejected } from './status.ts';

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  apply: 'application/apply-patch+yaml',
} as const;

export type PatchType = 'json' | 'merge' | 'strategic';

export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const result: Record<string, unknown> = isPlainObject(target) ? target : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

/**
 * Lists merged by a key field instead of replaced, by field name. The API's Go types declare these with
 * `patchMergeKey`; in the resources served here a field name always carries the same key.
 */
const LIST_MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  volumes: 'name',
  env: 'name',
  imagePullSecrets: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  conditions: 'type',
  taints: 'key',
  ownerReferences: 'uid',
  addresses: 'type',
  hostAliases: 'ip',
};

/** Lists of scalars merged as sets (metadata.finalizers is `patchStrategy:"merge"`). */
const PRIMITIVE_MERGE_LISTS: ReadonlySet<string> = new Set(['finalizers']);

const DELETE_FROM_PRIMITIVE_LIST = '$deleteFromPrimitiveList/';
const SET_ELEMENT_ORDER = '$setElementOrder/';

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  const merged = mergeMap(target, patch);
  return merged === DELETED ? {} : merged;
}

const DELETED = Symbol('deleted');

function mergeMap(target: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  if (patch.$patch === 'delete') return DELETED;
  if (patch.$patch === 'replace') return withoutDirectives(patch);
  if (patch.$patch !== undefined && patch.$patch !== 'merge') throw badRequest(`unknown patch type: ${String(patch.$patch)}`);
  const result: Record<string, unknown> = isPlainObject(target) ? target : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key.startsWith(SET_ELEMENT_ORDER) || key === '$retainKeys') continue;
    if (key.startsWith(DELETE_FROM_PRIMITIVE_LIST)) {
      const field = key.slice(DELETE_FROM_PRIMITIVE_LIST.length);
      const current = result[field];
      if (Array.isArray(current) && Array.isArray(value)) result[field] = current.filter((item) => !value.includes(item));
      continue;
    }
    if (value === null) {
      delete result[key];
    } else if (Array.isArray(value)) {
      result[key] = mergeList(key, result[key], value);
    } else if (isPlainObject(value)) {
      const merged = mergeMap(result[key], value);
      if (merged === DELETED) delete result[key];
      else result[key] = merged;
    } else {
      result[key] = value;
    }
  }
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    for (const key of Object.keys(result)) if (!retain.includes(key)) delete result[key];
  }
  return result;
}

function mergeList(field: string, current: unknown, patch: unknown[]): unknown[] {
  const replace = patch.some((item) => isPlainObject(item) && item.$patch === 'replace');
  if (replace) return patch.filter((item) => !(isPlainObject(item) && item.$patch === 'replace')).map(withoutDirectives);
  const existing = Array.isArray(current) ? current : [];
  if (PRIMITIVE_MERGE_LISTS.has(field)) {
    const result = [...existing];
    for (const item of patch) if (!result.includes(item)) result.push(item);
    return result;
  }
  const mergeKey = LIST_MERGE_KEYS[field];
  if (mergeKey === undefined) return patch.map(withoutDirectives);
  const result = [...existing];
  for (const item of patch) {
    if (!isPlainObject(item)) throw badRequest(`unable to merge list "${field}": an item is not a map with key "${mergeKey}"`);
    const key = item[mergeKey];
    const index = result.findIndex((e) => isPlainObject(e) && e[mergeKey] === key);
    if (item.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) {
      const merged = mergeMap(result[index], item);
      if (merged === DELETED) result.splice(index, 1);
      else result[index] = merged;
    } else {
      result.push(withoutDirectives(item));
    }
  }
  return result;
}

function withoutDirectives(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutDirectives);
  if (!isPlainObject(value)) return value;
  const result: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (key.startsWith('$')) continue;
    result[key] = withoutDirectives(child);
  }
  return result;
}

interface JsonPatchOperation {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

const JSON_PATCH_OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

function decodeJsonPatch(patch: unknown): JsonPatchOperation[] {
  if (!Array.isArray(patch)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  return patch.map((op) => {
    if (!isPlainObject(op) || typeof op.op !== 'string' || !JSON_PATCH_OPS.has(op.op)) {
      throw badRequest(`Unexpected kind: ${isPlainObject(op) ? String(op.op) : 'unknown'}`);
    }
    if (typeof op.path !== 'string') throw badRequest(`operation missing path: ${JSON.stringify(op)}`);
    if ((op.op === 'move' || op.op === 'copy') && typeof op.from !== 'string') throw badRequest(`operation missing from: ${JSON.stringify(op)}`);
    if ((op.op === 'add' || op.op === 'replace' || op.op === 'test') && !('value' in op)) {
      throw badRequest(`operation missing value: ${JSON.stringify(op)}`);
    }
    return op as unknown as JsonPatchOperation;
  });
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw patchRejected();
  return path
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

type Container = Record<string, unknown> | unknown[];

/** The container holding the pointer's last segment, and that segment; fails the patch when a parent is missing. */
function locate(doc: unknown, segments: string[]): { parent: Container; key: string } {
  let current = doc;
  for (const segment of segments.slice(0, -1)) {
    if (Array.isArray(current)) current = current[arrayIndex(segment, current.length - 1)];
    else if (isPlainObject(current) && segment in current) current = current[segment];
    else throw patchRejected();
  }
  if (!Array.isArray(current) && !isPlainObject(current)) throw patchRejected();
  return { parent: current, key: segments[segments.length - 1]! };
}

function arrayIndex(segment: string, max: number): number {
  if (!/^(0|[1-9]\d*)$/.test(segment)) throw patchRejected();
  const index = Number(segment);
  if (index > max) throw patchRejected();
  return index;
}

function read(doc: unknown, segments: string[]): unknown {
  if (segments.length === 0) return doc;
  const { parent, key } = locate(doc, segments);
  if (Array.isArray(parent)) return parent[arrayIndex(key, parent.length - 1)];
  if (!(key in parent)) throw patchRejected();
  return parent[key];
}

function add(doc: unknown, segments: string[], value: unknown): unknown {
  if (segments.length === 0) return value;
  const { parent, key } = locate(doc, segments);
  if (Array.isArray(parent)) {
    if (key === '-') parent.push(value);
    else parent.splice(arrayIndex(key, parent.length), 0, value);
  } else {
    parent[key] = value;
  }
  return doc;
}

function remove(doc: unknown, segments: string[]): unknown {
  if (segments.length === 0) throw patchRejected();
  const { parent, key } = locate(doc, segments);
  if (Array.isArray(parent)) parent.splice(arrayIndex(key, parent.length - 1), 1);
  else if (key in parent) delete parent[key];
  else throw patchRejected();
  return doc;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

export function jsonPatch(doc: unknown, patch: unknown): unknown {
  let result = doc;
  for (const op of decodeJsonPatch(patch)) {
    const path = pointer(op.path);
    switch (op.op) {
      case 'add':
        result = add(result, path, structuredClone(op.value));
        break;
      case 'remove':
        result = remove(result, path);
        break;
      case 'replace':
        read(result, path);
        result = path.length === 0 ? structuredClone(op.value) : add(remove(result, path), path, structuredClone(op.value));
        break;
      case 'move': {
        const from = pointer(op.from!);
        const value = read(result, from);
        result = add(remove(result, from), path, value);
        break;
      }
      case 'copy':
        result = add(result, path, structuredClone(read(result, pointer(op.from!))));
        break;
      case 'test':
        if (!deepEqual(read(result, path), op.value)) throw patchRejected();
        break;
    }
  }
  return result;
}

export function applyPatch(type: PatchType, doc: unknown, patch: unknown): unknown {
  switch (type) {
    case 'json':
      return jsonPatch(doc, patch);
    case 'merge':
      return mergePatch(doc, patch);
    case 'strategic':
      return strategicMergePatch(doc, patch);
  }
}

/** The patch type for a Content-Type header, or undefined when the server does not accept it. */
export function patchTypeOf(contentType: string): PatchType | undefined {
  const media = contentType.split(';')[0]!.trim().toLowerCase();
  if (media === PATCH_TYPES.json) return 'json';
  if (media === PATCH_TYPES.merge) return 'merge';
  if (media === PATCH_TYPES.strategic) return 'strategic';
  return undefined;
}
