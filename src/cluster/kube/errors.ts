/**
 * What can go wrong talking to a Kubernetes API server, as errors the engine can classify (EffectError) and the CLI
 * can explain (each names the server, the verb and the resource involved).
 */
import { EffectError } from '../../engine/effects.ts';

/** One API request, described the way RBAC sees it: a verb on a resource (with its subresource) in an API group. */
export interface ApiRequest {
  verb: 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';
  /** Plural resource, with its subresource after a slash: `nodes`, `pods/eviction`, `pods/log`. */
  resource: string;
  /** '' for the core group. */
  group: string;
  namespace?: string;
  name?: string;
}

export function describeRequest(request: ApiRequest): string {
  const what = request.name ? `${request.resource} "${request.name}"` : request.resource;
  return `${request.verb} ${what}${request.namespace ? ` in namespace ${request.namespace}` : ''}`;
}

/** The parts of a Kubernetes Status object we read. */
export interface KubeStatus {
  message?: string;
  reason?: string;
  code?: number;
  details?: { causes?: { reason?: string; message?: string; field?: string }[] };
}

/** An HTTP error status from the API server (after retries, when it was one worth retrying). */
export class KubeApiError extends EffectError {
  readonly status: number;
  /** The Status reason (`NotFound`, `Conflict`, `Invalid`, `TooManyRequests`, ...), or '' when the body had none. */
  readonly reason: string;
  readonly statusMessage: string;
  readonly request: ApiRequest;
  readonly body: KubeStatus | null;

  constructor(request: ApiRequest, status: number, body: KubeStatus | null, retryable: boolean, prefix = '') {
    const statusMessage = body?.message ?? '';
    super('API_ERROR', `${prefix}${describeRequest(request)}: HTTP ${status}${statusMessage ? `: ${statusMessage}` : ''}`, retryable);
    this.status = status;
    this.reason = body?.reason ?? '';
    this.statusMessage = statusMessage;
    this.request = request;
    this.body = body;
  }
}

/** RBAC said no: never retried, and the message names what the service account lacks. */
export class KubeForbiddenError extends KubeApiError {
  readonly verb: string;
  readonly resource: string;
  readonly group: string;

  constructor(request: ApiRequest, body: KubeStatus | null) {
    super(request, 403, body, false, 'forbidden: ');
    const refused = parseForbidden(body?.message ?? '');
    this.verb = refused?.verb ?? request.verb;
    this.resource = refused?.resource ?? request.resource;
    this.group = refused?.group ?? request.group;
    const groupText = this.group ? ` in API group "${this.group}"` : '';
    this.message = `forbidden: the API server refused to let patchpilot ${this.verb} ${this.resource}${groupText}${
      request.namespace ? ` in namespace ${request.namespace}` : ''
    }${body?.message ? ` (${body.message})` : ''}`;
  }
}

/** A create answered 404: the namespace itself is missing (deploy/ creates it; patchpilot does not). */
export class KubeNamespaceMissingError extends KubeApiError {
  readonly namespace: string;

  constructor(request: ApiRequest, body: KubeStatus | null) {
    super(request, 404, body, false);
    this.namespace = request.namespace ?? '';
    this.message = `namespace ${this.namespace} does not exist (needed to ${describeRequest(request)})`;
  }
}

/** The API server could not be reached at all (refused, reset, timed out, unknown host), even after retries. */
export class KubeUnreachableError extends EffectError {
  readonly server: string;
  /** ECONNREFUSED, ETIMEDOUT, ENOTFOUND, ... */
  readonly networkCode: string;

  constructor(server: string, request: ApiRequest, networkCode: string, attempts: number) {
    super('API_ERROR', `cannot reach the Kubernetes API server at ${server} (${networkCode}) to ${describeRequest(request)}, after ${attempts} attempt(s)`, true);
    this.server = server;
    this.networkCode = networkCode;
  }
}

/**
 * The server answered, but not as a Kubernetes API server does: a 404 page for a core path, a body that is not JSON,
 * a list without a list of named objects. A kubeconfig pointing at a web server, a proxy's login page or the wrong
 * port: a mistake in the configuration, never worth a retry, and never to be read as "not found" (a Lease that looks
 * free, a cluster with no node).
 */
export class KubeNotAnApiServerError extends EffectError {
  readonly server: string;
  /** The path asked for (`/api/v1/nodes`), or the request described when the path is not known. */
  readonly path: string;
  /** What was wrong with the answer: `HTTP 404`, `a body that is not JSON`, ... */
  readonly answer: string;

  constructor(server: string, request: ApiRequest, path: string, answer: string) {
    const where = path || describeRequest(request);
    super('API_ERROR', `the server at ${server} is not a Kubernetes API server (${answer} for ${where})`, false);
    this.server = server;
    this.path = where;
    this.answer = answer;
  }
}

/**
 * The verb and resource out of a Forbidden message, e.g.
 * `nodes "w1" is forbidden: User "system:serviceaccount:os-patch:patchpilot" cannot patch resource "nodes" in API group "" at the cluster scope`.
 */
export function parseForbidden(message: string): { verb: string; resource: string; group: string } | null {
  const match = /cannot (\S+) resource "([^"]+)"(?: in API group "([^"]*)")?/.exec(message);
  if (!match) return null;
  return { verb: match[1]!, resource: match[2]!, group: match[3] ?? '' };
}

/** The Status a refused request carried, with its causes (a PodDisruptionBudget names itself there). */
export function statusText(body: KubeStatus | null): string {
  if (!body) return '';
  const causes = (body.details?.causes ?? []).map((c) => c.message).filter((m): m is string => Boolean(m));
  return [body.message ?? '', ...causes].filter(Boolean).join(' ');
}
