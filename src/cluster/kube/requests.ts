/**
 * The one way the adapter talks to the API server. Every call goes through `send`, which
 * - retries what is worth retrying (429 honouring Retry-After, 5xx, a reset or refused connection) with jittered
 *   exponential backoff on the injected clock, and then gives up with a retryable API_ERROR;
 * - turns 403 into a KubeForbiddenError naming the verb and resource RBAC refused, never retried;
 * - refuses answers no Kubernetes API server gives (a web server's 404 page, a body that is not JSON, a list without
 *   named items) with a KubeNotAnApiServerError, so that a wrong server is never read as "not found" or "no node";
 * - passes the caller's AbortSignal to the HTTP request, and stops waiting the moment it fires;
 * - tells an optional activity counter when a request is in flight, so that a virtual-time driver only advances the
 *   clock while nothing is on the wire.
 */
import { ApiException, Observable, type ConfigurationOptions, type ObservableMiddleware, type RequestContext } from '@kubernetes/client-node';
import type { Clock } from '../../engine/clock.ts';
import { sleep } from '../in-process.ts';
import { KubeApiError, KubeForbiddenError, KubeNamespaceMissingError, KubeNotAnApiServerError, KubeUnreachableError, type ApiRequest, type KubeStatus } from './errors.ts';

const READ_VERBS = new Set(['get', 'list', 'watch']);
/** Asking the API server a question is no cluster change. */
const UNFENCED_RESOURCES = new Set(['leases', 'selfsubjectaccessreviews']);

/** A cluster write this process may not send: its lease is not valid by its own clock (ClusterPort.guardWrites). */
export class FencedWriteError extends Error {
  override readonly name = 'FencedWriteError';
  readonly retryable = true;
  constructor(request: ApiRequest, why: string) {
    super(`not sent: ${request.verb} ${request.resource}${request.name ? ` ${request.name}` : ''} (${why})`);
  }
}

export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 250, maxMs: 10_000 };

/** Counts HTTP requests in flight (see KubeClusterOptions.activity). */
export interface Activity {
  begin(): void;
  end(): void;
}

export interface SendOptions {
  signal?: AbortSignal | undefined;
  /** HTTP statuses the caller decides about itself (a PDB's 429 on an eviction): thrown at once, never retried here. */
  handles?: readonly number[];
  /** Fewer attempts than the policy's (an Event is worth one try). */
  attempts?: number;
}

/** A Retry-After longer than this is not waited for in one go: the next attempt asks again. */
const MAX_RETRY_AFTER_MS = 60_000;

/** Connection-level failures worth another attempt: the server restarting, a load balancer hiccup, a slow network. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'ENOTFOUND',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

type Failure =
  | { transient: true; delayMs: number | null; final: (attempts: number) => Error }
  | { transient: false; error: unknown };

export interface KubeRequestsOptions {
  server: string;
  clock: Clock;
  retry: RetryPolicy;
  activity?: Activity | undefined;
  random?: () => number;
}

export class KubeRequests {
  readonly server: string;
  readonly #clock: Clock;
  readonly #retry: RetryPolicy;
  readonly #activity: Activity | undefined;
  readonly #random: () => number;
  readonly #shared: { dispatcher: Dispatcher | undefined } = { dispatcher: undefined };
  #writeGuard: (() => string | null) | undefined;

  constructor(options: KubeRequestsOptions) {
    this.server = options.server;
    this.#clock = options.clock;
    this.#retry = options.retry;
    this.#activity = options.activity;
    this.#random = options.random ?? Math.random;
  }

  /** See ClusterPort.guardWrites: checked before every mutating request but the Lease's own. */
  guardWrites(check: (() => string | null) | null): void {
    this.#writeGuard = check ?? undefined;
  }

  async send<T>(request: ApiRequest, call: (options: ConfigurationOptions) => Promise<T>, options: SendOptions = {}): Promise<T> {
    const { signal } = options;
    const fenced = this.#writeGuard !== undefined && !READ_VERBS.has(request.verb) && !UNFENCED_RESOURCES.has(request.resource);
    const attempts = Math.max(1, options.attempts ?? this.#retry.attempts);
    const sent = { path: '' };
    const configuration = middlewareFor(signal, this.#shared, sent);
    for (let attempt = 1; ; attempt++) {
      signal?.throwIfAborted();
      // Right before the request, not when the step began: a process paused past its lease sends nothing on waking.
      const refused = fenced ? this.#writeGuard?.() : null;
      if (refused) throw new FencedWriteError(request, refused);
      let failure: Failure;
      this.#activity?.begin();
      try {
        const answer = await call(configuration);
        const wrong = wrongShape(request, answer);
        if (wrong !== null) throw new KubeNotAnApiServerError(this.server, request, sent.path, wrong);
        return answer;
      } catch (err) {
        signal?.throwIfAborted();
        failure = this.#classify(request, err, options.handles ?? [], sent.path);
      } finally {
        this.#activity?.end();
      }
      if (!failure.transient) throw failure.error;
      if (attempt >= attempts) throw failure.final(attempt);
      await sleep(this.#clock, failure.delayMs ?? this.#backoff(attempt), signal);
    }
  }

  /**
   * Read-modify-write: runs `attempt` (which re-reads what it changes) again while it fails with a conflict (409) or a
   * failed JSON Patch `test` (422), i.e. while someone else changed the object between our read and our write.
   */
  async untilNoConflict<T>(request: ApiRequest, attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    for (let round = 1; ; round++) {
      try {
        return await attempt();
      } catch (err) {
        if (!(err instanceof KubeApiError) || !isConflict(err)) throw err;
        if (round >= this.#retry.attempts) {
          throw new KubeApiError(request, err.status, err.body, true, `still conflicting after ${round} attempts: `);
        }
      }
      await sleep(this.#clock, this.#backoff(round), signal);
    }
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#retry.maxMs, this.#retry.baseMs * 2 ** (attempt - 1));
    // Full-range jitter would allow 0 ms; half of the ceiling plus a random half keeps retries spread and never instant.
    return Math.round(ceiling / 2 + (this.#random() * ceiling) / 2);
  }

  #classify(request: ApiRequest, err: unknown, handles: readonly number[], path: string): Failure {
    if (err instanceof KubeNotAnApiServerError) return { transient: false, error: err };
    if (err instanceof ApiException) {
      const status = err.code;
      if (status === 404 && !kubernetesNotFound(request, err.body)) {
        return { transient: false, error: new KubeNotAnApiServerError(this.server, request, path, 'HTTP 404') };
      }
      const body = parseStatus(err.body);
      if (status === 403) return { transient: false, error: new KubeForbiddenError(request, body) };
      // A create only answers 404 when the namespace it creates in is missing (a subresource's 404 is its parent's).
      if (status === 404 && request.verb === 'create' && request.namespace && !request.resource.includes('/')) {
        return { transient: false, error: new KubeNamespaceMissingError(request, body) };
      }
      if (handles.includes(status)) return { transient: false, error: new KubeApiError(request, status, body, false) };
      if (status === 429 || status >= 500) {
        const retryAfter = retryAfterMs(err.headers);
        return {
          transient: true,
          delayMs: retryAfter === null ? null : Math.min(retryAfter, MAX_RETRY_AFTER_MS),
          final: (n) => new KubeApiError(request, status, body, true, `after ${n} attempt(s): `),
        };
      }
      return { transient: false, error: new KubeApiError(request, status, body, false) };
    }
    // client-node parses a 2xx body by its Content-Type: JSON.parse's SyntaxError, or its own refusal of another type.
    if (err instanceof SyntaxError || (err instanceof Error && /^(Cannot parse content|The mediaType .* is not supported)/.test(err.message))) {
      return { transient: false, error: new KubeNotAnApiServerError(this.server, request, path, 'an answer that is not JSON') };
    }
    const code = networkCode(err);
    if (code !== null && TRANSIENT_NETWORK_CODES.has(code)) {
      return { transient: true, delayMs: null, final: (n) => new KubeUnreachableError(this.server, request, code, n) };
    }
    return { transient: false, error: err };
  }
}

export function isConflict(err: KubeApiError): boolean {
  return err.status === 409 || err.status === 422;
}

export function isNotFound(err: unknown): err is KubeApiError {
  return err instanceof KubeApiError && err.status === 404;
}

/** `ApiException.body` is the raw response text; a Status when the server sent one. */
export function parseStatus(body: unknown): KubeStatus | null {
  if (body && typeof body === 'object') return body as KubeStatus;
  if (typeof body !== 'string' || body.length === 0) return null;
  try {
    const parsed: unknown = JSON.parse(body);
    return parsed && typeof parsed === 'object' ? (parsed as KubeStatus) : { message: summarizeBody(body) };
  } catch {
    return { message: summarizeBody(body) };
  }
}

/**
 * A body that is no Status (a proxy's or web server's page) as a short line: it ends up in one-line error messages
 * and in `status`'s table, where a whole HTML page would spread over many lines.
 */
export function summarizeBody(body: string): string {
  if (/^\s*<(!doctype|html)/i.test(body)) {
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(body)?.[1]?.replace(/\s+/g, ' ').trim();
    return title ? `an HTML page titled "${title.slice(0, 100)}"` : 'an HTML page';
  }
  const line = body.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Whether a 404 is the API server's "not found". For a core path (/api/v1/...) it always answers with a Status; for
 * an API group it does not serve (Palette's CRDs on a plain cluster) with Go's plain "404 page not found". Anything
 * else (an HTML page, an empty body, other JSON) comes from something that is not a Kubernetes API server.
 */
/** API groups every API server serves; a 404 for their paths is never "the CRD is not installed". */
const BUILT_IN_GROUPS: ReadonlySet<string> = new Set(['', 'apps', 'batch', 'policy', 'coordination.k8s.io', 'authorization.k8s.io', 'events.k8s.io']);

function kubernetesNotFound(request: ApiRequest, body: unknown): boolean {
  const text = typeof body === 'string' ? body : '';
  try {
    const parsed: unknown = body && typeof body === 'object' ? body : JSON.parse(text);
    if (parsed && typeof parsed === 'object' && (parsed as { kind?: unknown }).kind === 'Status') {
      // An object that is not there is named in the Status's details; a path the server does not serve is answered
      // with none, and the generic message. Built-in APIs are always served, so that 404 means the kubeconfig's server
      // is something else, or the API server under a wrong path (https://host/k8s/clusters/WRONG).
      const { details, message } = parsed as { details?: { name?: unknown; kind?: unknown }; message?: unknown };
      const unserved = !details?.name && !details?.kind && typeof message === 'string' && message.startsWith('the server could not find the requested resource');
      return !(unserved && BUILT_IN_GROUPS.has(request.group));
    }
  } catch {
    // Not JSON: only Go's own 404, and only for an API group.
  }
  return request.group !== '' && text.trim() === '404 page not found';
}

const isNamed = (item: unknown): boolean => {
  const name = (item as { metadata?: { name?: unknown } } | null)?.metadata?.name;
  return typeof name === 'string' && name !== '';
};

/**
 * What no API server answers to this request, or null when the answer is plausible. client-node deserializes without
 * checking: `"items": "abc"` becomes three nodes with no name, `{}` an empty list.
 */
function wrongShape(request: ApiRequest, answer: unknown): string | null {
  if (request.verb === 'list') {
    // The API server always sends a list, `[]` when empty (callers map over it).
    const { items } = (answer ?? {}) as { items?: unknown };
    if (!Array.isArray(items)) return 'a list answer without a list of items';
    if (!items.every(isNamed)) return 'a list answer whose items are not objects with metadata.name';
    return null;
  }
  // A named object of a resource (not a subresource such as pods/log, whose answer is text) carries its name.
  if (request.verb === 'get' && request.name !== undefined && !request.resource.includes('/') && !isNamed(answer)) return 'an answer that is not the named object';
  return null;
}

function retryAfterMs(headers: Record<string, string>): number | null {
  const value = Object.entries(headers).find(([key]) => key.toLowerCase() === 'retry-after')?.[1];
  if (value === undefined) return null;
  const seconds = Number(value);
  return Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : null;
}

/** undici reports `fetch failed` with the socket error as its cause (an AggregateError when both IPv4 and IPv6 failed). */
export function networkCode(err: unknown): string | null {
  const seen = new Set<unknown>();
  let current: unknown = err;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const { code, cause, errors } = current as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof code === 'string' && code.length > 0) return code;
    current = cause ?? (Array.isArray(errors) ? errors[0] : undefined);
  }
  return null;
}

/** Per-call options that hand the caller's AbortSignal to the HTTP request. */
type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;

/**
 * client-node 2.0.1 builds a new undici Agent for every request whose cluster has TLS settings (a CA, client
 * certificates, or insecure-skip-tls-verify), so no connection is ever reused: a TLS handshake per request, and
 * sockets left open until their keep-alive ends (thousands of them, EMFILE, when the sandbox runs in virtual time).
 * Every request of one KubeRequests has the same TLS settings, so the first Agent serves them all.
 */
function middlewareFor(signal: AbortSignal | undefined, shared: { dispatcher: Dispatcher | undefined }, sent: { path: string }): ConfigurationOptions {
  const middleware: ObservableMiddleware = {
    pre: (context) => {
      // Kept for messages about the answer: the path says which server and API a wrong answer came from.
      try {
        sent.path = new URL(context.getUrl()).pathname;
      } catch {
        sent.path = '';
      }
      if (signal) context.setSignal(signal);
      const own = context.getDispatcher();
      if (own !== undefined) {
        shared.dispatcher ??= own;
        context.setDispatcher(shared.dispatcher);
      }
      return new Observable(Promise.resolve(context));
    },
    post: (response) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}
