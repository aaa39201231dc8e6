/**
 * The options a request carries besides its object, decoded and checked as kube-apiserver's handlers do before they
 * touch storage: DeleteOptions from a DELETE's body or query (endpoints/handlers/delete.go, then
 * metav1 validation.ValidateDeleteOptions), `?fieldValidation=` of writes (ValidateCreateOptions and its siblings),
 * a list's, watch's or get's resourceVersion and resourceVersionMatch (ValidateListOptions, then the watch cache or
 * etcd), and whole-number query parameters (the parameter codec's strconv.ParseInt).
 */
import type { DeleteOptions } from './hooks.ts';
import { isPlainObject } from './objects.ts';
import type { PropagationPolicy } from './resources.ts';
import {
  badRequest,
  forbiddenField,
  invalid,
  invalidField,
  notSupportedField,
  resourceVersionTooLarge,
  StatusError,
  unexpectedError,
  type FieldError,
} from './status.ts';
import { parseResourceVersion } from './watch.ts';
import { parseDryRun, type FieldValidation } from './store.ts';

/** metav1.GroupName: the group the options kinds (DeleteOptions, CreateOptions, ListOptions) are reported in. */
const META_GROUP = 'meta.k8s.io';

/** 422 for options that decode but break a rule: `DeleteOptions.meta.k8s.io "" is invalid: ...` (errors.NewInvalid). */
export function invalidOptions(kind: string, errors: FieldError[]): StatusError {
  return invalid(META_GROUP, kind, '', errors);
}

/**
 * A whole-number query parameter as the parameter codec converts it (Convert_Slice_string_To_int64, strconv.ParseInt
 * base 10): anything else is its 400, "strconv.ParseInt: parsing "abc": invalid syntax". Absent or empty: undefined.
 */
export function queryInt(query: URLSearchParams, key: string): number | undefined {
  const value = query.get(key);
  if (value === null || value === '') return undefined;
  return parseInt64(value);
}

/** strconv.ParseInt(value, 10, 64), with its error as the 400 the parameter codec's failure becomes. */
export function parseInt64(value: string): number {
  if (!/^[-+]?\d+$/.test(value)) throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(value)}: invalid syntax`);
  const n = BigInt(value);
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw badRequest(`strconv.ParseInt: parsing ${JSON.stringify(value)}: value out of range`);
  return Number(n);
}

// ---------------------------------------------------------------------------------------------------------------
// DeleteOptions

/** A Go type as encoding/json decodes into it, named as its errors name it (reflect.Type.String()). */
type GoType =
  | { go: string; json: 'string' | 'bool' | 'int64' }
  | { go: string; slice: GoType }
  | { go: string; struct: string; fields: Record<string, GoType> };

const STRING: GoType = { go: 'string', json: 'string' };
const BOOL: GoType = { go: 'bool', json: 'bool' };

/** metav1.DeleteOptions' JSON fields and Go types (k8s.io/apimachinery/pkg/apis/meta/v1/types.go). */
const DELETE_OPTIONS: GoType = {
  go: 'v1.DeleteOptions',
  struct: 'DeleteOptions',
  fields: {
    kind: STRING,
    apiVersion: STRING,
    gracePeriodSeconds: { go: 'int64', json: 'int64' },
    preconditions: { go: 'v1.Preconditions', struct: 'Preconditions', fields: { uid: { go: 'types.UID', json: 'string' }, resourceVersion: STRING } },
    orphanDependents: BOOL,
    propagationPolicy: { go: 'v1.DeletionPropagation', json: 'string' },
    dryRun: { go: '[]string', slice: STRING },
    ignoreStoreReadErrorWithClusterBreakingPotential: BOOL,
  },
};

/** How encoding/json names a JSON value in an UnmarshalTypeError. */
function jsonValueName(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (isPlainObject(value)) return 'object';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return 'number';
  return 'string';
}

/**
 * The first error encoding/json (sigs.k8s.io/json, case-sensitive) meets decoding `value` into `type`, worded as Go
 * words an UnmarshalTypeError in a struct: "json: cannot unmarshal string into Go struct field
 * DeleteOptions.gracePeriodSeconds of type int64" (the innermost struct's name, the field's path from the top). A
 * null leaves any field unset; a field it does not know is skipped (the delete handler does not decode strictly).
 */
function goTypeError(value: unknown, type: GoType, struct: string, path: string[]): string | undefined {
  if (value === null) return undefined;
  const fail = (name: string) => `json: cannot unmarshal ${name} into Go struct field ${struct}.${path.join('.')} of type ${type.go}`;
  if ('json' in type) {
    if (type.json === 'string') return typeof value === 'string' ? undefined : fail(jsonValueName(value));
    if (type.json === 'bool') return typeof value === 'boolean' ? undefined : fail(jsonValueName(value));
    if (typeof value !== 'number') return fail(jsonValueName(value));
    // A number that is no int64 is named with its text: "number 1.5".
    return Number.isInteger(value) && Math.abs(value) <= 2 ** 63 ? undefined : fail(`number ${value}`);
  }
  if ('slice' in type) {
    if (!Array.isArray(value)) return fail(jsonValueName(value));
    for (const element of value) {
      const problem = goTypeError(element, type.slice, struct, path);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }
  if (!isPlainObject(value)) return fail(jsonValueName(value));
  for (const [key, field] of Object.entries(value)) {
    const fieldType = type.fields[key];
    if (fieldType === undefined) continue;
    const problem = goTypeError(field, fieldType, type.struct, [...path, key]);
    if (problem !== undefined) return problem;
  }
  return undefined;
}

const PROPAGATION_POLICIES: readonly PropagationPolicy[] = ['Foreground', 'Background', 'Orphan'];

/**
 * The body of a DELETE (or DELETE on a collection) decoded as DeleteOptions, as the delete handler decodes it, each
 * refusal upstream's:
 *
 * - a body of another kind (`{"kind":"Pod"}`) is the codec's "no kind "Pod" is registered for version ..." (the
 *   handler decodes into DeleteOptions; any other kind is not in the meta scheme). Upstream's message goes on with
 *   ` in scheme "<a source file:line of the server's build>"`, which is left out here: it names a build, not a rule;
 * - a field of the wrong JSON type is encoding/json's error ("json: cannot unmarshal string into Go struct field
 *   DeleteOptions.gracePeriodSeconds of type int64", as kubernetes#139491 shows it);
 * - a body that is not a JSON object fails the codec's first look at its apiVersion and kind ("couldn't get
 *   version/kind; json parse error: ...", the rest of the text as encoding/json words it).
 *
 * All of these are 400 BadRequest since Kubernetes 1.35 (kubernetes#133358, backported to 1.33 and 1.34); older
 * servers answered them 500. A body that decodes then meets ValidateDeleteOptions: propagationPolicy one of the three
 * (or none), not both orphanDependents and propagationPolicy (422 Invalid on DeleteOptions.meta.k8s.io). The query's
 * options are read too (kubectl and client-node send a body; others only a query).
 */
export function decodeDeleteOptions(query: URLSearchParams, body: unknown): DeleteOptions {
  if (body !== null && body !== undefined && !isPlainObject(body)) {
    throw badRequest(`couldn't get version/kind; json parse error: json: cannot unmarshal ${jsonValueName(body)} into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" }`);
  }
  const fromBody: Record<string, unknown> = isPlainObject(body) ? body : {};
  for (const key of ['apiVersion', 'kind'] as const) {
    const value = fromBody[key];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      throw badRequest(`couldn't get version/kind; json parse error: json: cannot unmarshal ${jsonValueName(value)} into Go struct field .${key} of type string`);
    }
  }
  const kind = typeof fromBody.kind === 'string' ? fromBody.kind : '';
  if (kind !== '' && kind !== 'DeleteOptions') {
    const version = typeof fromBody.apiVersion === 'string' && fromBody.apiVersion !== '' ? fromBody.apiVersion : 'v1';
    throw badRequest(`no kind ${JSON.stringify(kind)} is registered for version ${JSON.stringify(version)}`);
  }
  const typeError = goTypeError(fromBody, DELETE_OPTIONS, 'DeleteOptions', []);
  if (typeError !== undefined) throw badRequest(typeError);

  const options: DeleteOptions = {};
  const policy = query.get('propagationPolicy') ?? (fromBody.propagationPolicy as string | null | undefined) ?? undefined;
  const orphanText = query.get('orphanDependents');
  const orphan = orphanText !== null ? orphanText.toLowerCase() !== 'false' && orphanText !== '0' : (fromBody.orphanDependents as boolean | null | undefined) ?? undefined;
  const errors: FieldError[] = [];
  if (orphan !== undefined && policy !== undefined) {
    errors.push(invalidField('propagationPolicy', policy, 'orphanDependents and deletionPropagation cannot be both set'));
  }
  if (policy !== undefined && !PROPAGATION_POLICIES.includes(policy as PropagationPolicy)) {
    errors.push(notSupportedField('propagationPolicy', policy, [...PROPAGATION_POLICIES, 'nil']));
  }
  if (errors.length > 0) throw invalidOptions('DeleteOptions', errors);
  if (policy !== undefined) options.propagationPolicy = policy as PropagationPolicy;
  else if (orphan === true) options.propagationPolicy = 'Orphan';
  if (parseDryRun(query.getAll('dryRun')) || parseDryRun(fromBody.dryRun)) options.dryRun = true;
  const grace = queryInt(query, 'gracePeriodSeconds') ?? fromBody.gracePeriodSeconds;
  if (typeof grace === 'number') options.gracePeriodSeconds = grace;
  if (isPlainObject(fromBody.preconditions)) {
    const { uid, resourceVersion } = fromBody.preconditions;
    options.preconditions = {};
    if (typeof uid === 'string') options.preconditions.uid = uid;
    if (typeof resourceVersion === 'string') options.preconditions.resourceVersion = resourceVersion;
  }
  return options;
}

// ---------------------------------------------------------------------------------------------------------------
// fieldValidation

const FIELD_VALIDATIONS = ['', 'Ignore', 'Strict', 'Warn'];

/**
 * `?fieldValidation=` of a create, update or patch, as ValidateCreateOptions, ValidateUpdateOptions and
 * ValidatePatchOptions check it (metav1 validation.ValidateFieldValidation): "", Ignore, Warn or Strict, anything else
 * 422 Invalid on the request's options kind, "CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported
 * value: "Bogus": supported values: "", "Ignore", "Strict", "Warn"" (a sorted set, "" first). Unset or empty is Warn,
 * the handlers' default (fieldValidation() in endpoints/handlers/rest.go).
 */
export function fieldValidationOf(query: URLSearchParams, optionsKind: 'CreateOptions' | 'UpdateOptions' | 'PatchOptions'): FieldValidation {
  const value = query.get('fieldValidation') ?? '';
  if (!FIELD_VALIDATIONS.includes(value)) throw invalidOptions(optionsKind, [notSupportedField('fieldValidation', value, FIELD_VALIDATIONS)]);
  return value === '' ? 'Warn' : (value as FieldValidation);
}

/**
 * A Warning header's value as the API server writes it (k8s.io/apimachinery/pkg/util/net.NewWarningHeader): code 299,
 * agent "-", the text quoted with `"` and `\` escaped. kubectl prints it as "Warning: <text>".
 */
export function warningHeader(text: string): string {
  return `299 - "${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

// ---------------------------------------------------------------------------------------------------------------
// ListOptions

/**
 * ValidateListOptions (k8s.io/apimachinery/pkg/apis/meta/internalversion/validation), 422 Invalid on
 * ListOptions.meta.k8s.io: for a list, resourceVersionMatch needs a resourceVersion and no continue, is Exact or
 * NotOlderThan, and is not Exact for resourceVersion "0"; a watch takes no resourceVersionMatch at all.
 */
function validateListOptions(query: URLSearchParams, watch: boolean): void {
  const match = query.get('resourceVersionMatch') ?? '';
  if (match === '') return;
  const errors: FieldError[] = [];
  if (watch) {
    errors.push(forbiddenField('resourceVersionMatch', 'resourceVersionMatch is forbidden for watch'));
  } else {
    const resourceVersion = query.get('resourceVersion') ?? '';
    if (resourceVersion === '') errors.push(forbiddenField('resourceVersionMatch', 'resourceVersionMatch is forbidden unless resourceVersion is provided'));
    if ((query.get('continue') ?? '') !== '') errors.push(forbiddenField('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided'));
    if (match !== 'Exact' && match !== 'NotOlderThan') errors.push(notSupportedField('resourceVersionMatch', match, ['Exact', 'NotOlderThan', '']));
    if (match === 'Exact' && resourceVersion === '0') errors.push(forbiddenField('resourceVersionMatch', 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'));
  }
  if (errors.length > 0) throw invalidOptions('ListOptions', errors);
}

/**
 * What a list asks to read, checked as kube-apiserver checks it and in its order: the parameter codec (limit and
 * timeoutSeconds are strconv.ParseInt's, 400), ValidateListOptions (422), then storage. The watch cache serves a list
 * unless it pages (limit with a resourceVersion other than "0"), continues, or wants Exact (shouldDelegateList);
 * those go to etcd. The two answer differently:
 *
 * - the watch cache: a resourceVersion that does not parse is its raw error, 500 (parseResourceVersion); one newer
 *   than it has is 504 Too large resource version, retry after 1 s (it waits up to 3 s first; the sandbox answers at
 *   once, since nothing it waits for could be behind); any other is the current state ("not older than");
 * - etcd: a resourceVersion that does not parse is 400 "invalid resource version: ..."; with Exact (or, the legacy
 *   rule, a limit and no resourceVersionMatch) the list is read at that revision: one newer than etcd's is etcd's own
 *   error, 500 "etcdserver: mvcc: required revision is a future revision" (kubernetes#132358), one compacted away 410
 *   "The resourceVersion for the provided list is too old."; NotOlderThan reads the current state, or is 504 for a
 *   newer resourceVersion, with no retry.
 *
 * The sandbox issues no continue token, so every continue token is refused as etcd3 refuses one it cannot decode.
 * Returns the resourceVersion to read at, or undefined for the current state.
 */
export function listReadOf(query: URLSearchParams, currentRv: number): number | undefined {
  const limit = queryInt(query, 'limit') ?? 0;
  queryInt(query, 'timeoutSeconds');
  validateListOptions(query, false);
  const resourceVersion = query.get('resourceVersion') ?? '';
  const match = query.get('resourceVersionMatch') ?? '';
  if ((query.get('continue') ?? '') !== '') throw badRequest('invalid continue token: continue key is not valid: this server answers every list whole and issues no continue token');
  const fromEtcd = (limit > 0 && resourceVersion !== '0') || match === 'Exact';
  if (!fromEtcd) {
    const rv = parseResourceVersion(resourceVersion);
    if (rv > currentRv) throw resourceVersionTooLarge(rv, currentRv, 1);
    return undefined;
  }
  let rv: number;
  try {
    rv = parseResourceVersion(resourceVersion);
  } catch (error) {
    throw badRequest(`invalid resource version: ${(error as Error).message}`);
  }
  const exact = match === 'Exact' || (match === '' && rv > 0);
  if (!exact) {
    if (rv > currentRv) throw resourceVersionTooLarge(rv, currentRv, 0);
    return undefined;
  }
  if (rv > currentRv) throw unexpectedError('etcdserver: mvcc: required revision is a future revision');
  return rv === currentRv ? undefined : rv;
}

/** The 410 of a list at a resourceVersion compacted away (etcd3's interpretListError). */
export function listTooOld(): StatusError {
  return new StatusError(410, 'Expired', 'The resourceVersion for the provided list is too old.');
}

/**
 * A watch's options, checked before it starts: timeoutSeconds is strconv.ParseInt's (400), resourceVersionMatch is
 * forbidden (422), and a resourceVersion that does not parse is the watch cache's raw 500.
 */
export function checkWatchOptions(query: URLSearchParams): void {
  queryInt(query, 'timeoutSeconds');
  validateListOptions(query, true);
  parseResourceVersion(query.get('resourceVersion') ?? '');
}

/**
 * A get's resourceVersion: served by the watch cache when set, so one that does not parse is its raw 500, and one
 * newer than the store's is 504 (after the cache has waited up to 3 s upstream).
 */
export function checkGetOptions(query: URLSearchParams, currentRv: number): void {
  const rv = parseResourceVersion(query.get('resourceVersion') ?? '');
  if (rv > currentRv) throw resourceVersionTooLarge(rv, currentRv, 1);
}
