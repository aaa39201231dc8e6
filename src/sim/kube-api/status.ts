/**
 * Errors as the Kubernetes API server reports them: a `Status` object whose message, reason, details and code match
 * k8s.io/apimachinery/pkg/api/errors, so clients that branch on `reason` or parse `message` behave as against a real
 * cluster. Hooks throw `StatusError`s; the server turns any of them into the HTTP response.
 */

export type StatusReason =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'BadRequest'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'TooManyRequests'
  | 'Forbidden'
  | 'Unauthorized'
  | 'InternalError'
  | 'Expired'
  | 'Gone'
  | 'ServiceUnavailable'
  | 'Timeout'
  | 'RequestEntityTooLarge';

export interface StatusCause {
  type?: string;
  message?: string;
  field?: string;
  reason?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code: number;
}

/** A failure the API server answers with a Status. `status` is the exact body sent to the client. */
export class StatusError extends Error {
  readonly status: Status;

  constructor(code: number, reason: StatusReason, message: string, details?: StatusDetails) {
    super(message);
    this.name = 'StatusError';
    this.status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
    if (details !== undefined) this.status.details = details;
  }

  get code(): number {
    return this.status.code;
  }

  get reason(): StatusReason | undefined {
    return this.status.reason;
  }
}

/** The resource as the server names it in messages: `nodes`, `jobs.batch`. */
export interface GroupResource {
  group: string;
  resource: string;
}

export function qualifiedResource(gr: GroupResource): string {
  return gr.group === '' ? gr.resource : `${gr.resource}.${gr.group}`;
}

function resourceDetails(gr: GroupResource, name: string): StatusDetails {
  const details: StatusDetails = {};
  if (name !== '') details.name = name;
  if (gr.group !== '') details.group = gr.group;
  details.kind = gr.resource;
  return details;
}

export function notFound(gr: GroupResource, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${qualifiedResource(gr)} ${JSON.stringify(name)} not found`, resourceDetails(gr, name));
}

export function alreadyExists(gr: GroupResource, name: string): StatusError {
  return new StatusError(409, 'AlreadyExists', `${qualifiedResource(gr)} ${JSON.stringify(name)} already exists`, resourceDetails(gr, name));
}

export function conflict(gr: GroupResource, name: string, why: string): StatusError {
  return new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(gr)} ${JSON.stringify(name)}: ${why}`, resourceDetails(gr, name));
}

/** The reason the real server gives when a PUT or patch carries a resourceVersion that is no longer current. */
export const STALE_OBJECT = 'the object has been modified; please apply your changes to the latest version and try again';

export interface FieldError {
  type: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueNotSupported' | 'FieldValueDuplicate' | 'FieldValueTooLong';
  field: string;
  /** The text after the field, as `field.Error.ErrorBody()` renders it: `Invalid value: "x": field is immutable`. */
  body: string;
}

export function requiredField(field: string, detail: string): FieldError {
  return { type: 'FieldValueRequired', field, body: `Required value: ${detail}` };
}

export function invalidField(field: string, value: unknown, detail: string): FieldError {
  return { type: 'FieldValueInvalid', field, body: `Invalid value: ${renderValue(value)}: ${detail}` };
}

export function forbiddenField(field: string, detail: string): FieldError {
  return { type: 'FieldValueForbidden', field, body: `Forbidden: ${detail}` };
}

export function notSupportedField(field: string, value: unknown, supported: readonly string[]): FieldError {
  return { type: 'FieldValueNotSupported', field, body: `Unsupported value: ${renderValue(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}` };
}

/**
 * field.TooLong. Its wording changed in Kubernetes 1.33 (kubernetes#128553 merged TooLong and TooLongMaxLength):
 * "Too long: may not be more than N bytes"; 1.32 and older said "Too long: must have at most N bytes". The sandbox
 * words every TooLong the current way, here only.
 */
export function tooLongField(field: string, limit: number): FieldError {
  return { type: 'FieldValueTooLong', field, body: `Too long: may not be more than ${limit} bytes` };
}

export function duplicateField(field: string, value: unknown): FieldError {
  return { type: 'FieldValueDuplicate', field, body: `Duplicate value: ${renderValue(value)}` };
}

/** How field.Error quotes a value: strings quoted, numbers bare, anything else as JSON. */
function renderValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? 'null';
}

/** 422 for a kind (`Job.batch "x" is invalid: ...`); several errors are listed in brackets as ToAggregate does. */
export function invalid(group: string, kind: string, name: string, errors: FieldError[]): StatusError {
  const qualifiedKind = group === '' ? kind : `${kind}.${group}`;
  const rendered = errors.map((e) => `${e.field}: ${e.body}`);
  const aggregate = rendered.length === 1 ? rendered[0]! : `[${rendered.join(', ')}]`;
  const details: StatusDetails = {};
  if (name !== '') details.name = name;
  if (group !== '') details.group = group;
  if (kind !== '') details.kind = kind;
  details.causes = errors.map((e) => ({ reason: e.type, message: e.body, field: e.field }));
  return new StatusError(422, 'Invalid', `${qualifiedKind} ${JSON.stringify(name)} is invalid: ${aggregate}`, details);
}

/** What the server answers when a JSON patch cannot be applied (a failing `test`, a missing path). */
export function patchRejected(): StatusError {
  return new StatusError(422, 'Invalid', 'the server rejected our request due to an error in our request', {});
}

/** 400 for a body the server cannot decode as the kind (wrong JSON types, a malformed time), as the codec words it. */
export function undecodable(kind: string, version: string, why: string): StatusError {
  return badRequest(`${kind} in version ${JSON.stringify(version)} cannot be handled as a ${kind}: ${why}`);
}

/** 422 for a patch whose result cannot be decoded: upstream names no kind and puts the patched object in the field. */
export function undecodablePatch(patched: unknown, why: string): StatusError {
  return invalid('', '', '', [invalidField('patch', JSON.stringify(patched), why)]);
}

/**
 * 413 for a request body over the server's --max-request-body-bytes, as limitedReadBody (apiserver's
 * endpoints/handlers/rest.go) answers it: errors.NewRequestEntityTooLargeError(fmt.Sprintf("limit is %d", limit)).
 */
export function requestEntityTooLarge(limit: number): StatusError {
  return new StatusError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`);
}

export function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message);
}

export function methodNotAllowed(gr: GroupResource, action: string): StatusError {
  const details: StatusDetails = {};
  if (gr.group !== '') details.group = gr.group;
  details.kind = gr.resource;
  return new StatusError(405, 'MethodNotAllowed', `${action} is not supported on resources of kind ${JSON.stringify(qualifiedResource(gr))}`, details);
}

export function unsupportedMediaType(contentType: string, accepted: readonly string[]): StatusError {
  return new StatusError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format (${contentType}) - accepted media types include: ${accepted.join(', ')}`,
  );
}

export function notAcceptable(accepted: readonly string[]): StatusError {
  return new StatusError(406, 'NotAcceptable', `only the following media types are accepted: ${accepted.join(', ')}`);
}

export function tooManyRequests(message: string, retryAfterSeconds = 1, causes?: StatusCause[]): StatusError {
  // Go's omitempty: a 0 (the eviction subresource's) is not sent, and neither is a Retry-After header.
  const details: StatusDetails = retryAfterSeconds > 0 ? { retryAfterSeconds } : {};
  if (causes !== undefined) details.causes = causes;
  return new StatusError(429, 'TooManyRequests', message, details);
}

export function forbidden(gr: GroupResource, name: string, why: string): StatusError {
  const subject = name === '' ? qualifiedResource(gr) : `${qualifiedResource(gr)} ${JSON.stringify(name)}`;
  return new StatusError(403, 'Forbidden', `${subject} is forbidden: ${why}`, resourceDetails(gr, name));
}

export function unauthorized(): StatusError {
  return new StatusError(401, 'Unauthorized', 'Unauthorized');
}

export function internalError(cause: string): StatusError {
  return new StatusError(500, 'InternalError', `Internal error occurred: ${cause}`, { causes: [{ message: cause }] });
}

/**
 * What the API server answers for an error that is no Status of its own (ErrorToAPIStatus in
 * endpoints/handlers/responsewriters): 500, the error's text, and no reason at all.
 */
export function unexpectedError(message: string): StatusError {
  const error = new StatusError(500, 'InternalError', message);
  delete (error.status as { reason?: StatusReason }).reason;
  return error;
}

/**
 * 504 for a resourceVersion newer than the server has (storage.NewTooLargeResourceVersionError): "Timeout: Too large
 * resource version: 9, current: 5", the ResourceVersionTooLarge cause, and a retry after `retryAfterSeconds` when
 * above 0 (the watch cache says 1 once it has waited; etcd's path says 0).
 */
export function resourceVersionTooLarge(requested: number, current: number, retryAfterSeconds: number): StatusError {
  const details: StatusDetails = { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }] };
  if (retryAfterSeconds > 0) details.retryAfterSeconds = retryAfterSeconds;
  return new StatusError(504, 'Timeout', `Timeout: Too large resource version: ${requested}, current: ${current}`, details);
}

/** The ERROR a watch delivers when it asks for history the server no longer keeps; clients then re-list. */
export function resourceVersionTooOld(requested: number, oldest: number): StatusError {
  return new StatusError(410, 'Expired', `too old resource version: ${requested} (${oldest})`);
}

/** A success Status; the code is left out where the server leaves it out (a finished delete). */
export interface SuccessStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Success';
  details?: StatusDetails;
  code?: number;
}

export function success(details?: StatusDetails, code?: number): SuccessStatus {
  const status: SuccessStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' };
  if (details !== undefined) status.details = details;
  if (code !== undefined) status.code = code;
  return status;
}

/** Any thrown value as a StatusError: a programming error in a hook becomes a 500, as a panic in the server would. */
export function asStatusError(error: unknown): StatusError {
  if (error instanceof StatusError) return error;
  return internalError(error instanceof Error ? error.message : String(error));
}
