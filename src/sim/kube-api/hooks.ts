/**
 * Where the simulation plugs into the API server. Every hook is synchronous except the subresource handlers, so a
 * write and everything its hooks decide happen atomically, as one step of the simulation.
 *
 * - `onRequest`: sees every HTTP request after authentication and before anything else; returning (or throwing) a
 *   StatusError answers the request with it (fault injection: 429, 500, 409).
 * - `admit`: sees creates, updates, patches and deletes from API clients (not the simulation's internal writes) before
 *   they are stored; may change the new object in place, reject by throwing a StatusError, or, for a delete, answer
 *   'deferred': the object gets a deletionTimestamp and stays until the simulation deletes it with `internal: true`
 *   (graceful pod termination).
 * - `onChange`: after a change is stored, in resourceVersion order (the simulated kubelet and controllers).
 * - `onEviction`, `onPodLog`: the pods/eviction and pods/log subresources.
 */
import type { KubeObject } from './objects.ts';
import type { PropagationPolicy, ResourceType, Verb } from './resources.ts';
import type { StatusError } from './status.ts';
import type { KubeStore } from './store.ts';

export interface UserInfo {
  name: string;
  groups: string[];
}

/** Who writes when a caller of the in-process API names nobody: the cluster admin. */
export const ADMIN_USER: UserInfo = { name: 'system:admin', groups: ['system:masters', 'system:authenticated'] };

export interface RequestInfo {
  verb: Verb;
  method: string;
  path: string;
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  user: UserInfo;
}

export type RequestHook = (request: RequestInfo) => StatusError | void;

export interface DeleteOptions {
  /** Server-side dry run: everything is checked and admitted, nothing is stored. */
  dryRun?: boolean;
  propagationPolicy?: PropagationPolicy;
  gracePeriodSeconds?: number;
  preconditions?: { uid?: string; resourceVersion?: string };
}

interface AdmissionBase {
  resource: ResourceType;
  /** A dry run: decide as for a real write, but change nothing outside the request (no timers, no simulation). */
  dryRun?: boolean;
  subresource?: string;
  namespace?: string;
  name: string;
  user: UserInfo;
}

export type AdmissionRequest =
  | (AdmissionBase & { operation: 'CREATE'; verb: 'create'; /** Mutable: changes are stored. */ object: KubeObject })
  | (AdmissionBase & {
      operation: 'UPDATE';
      verb: 'update' | 'patch';
      /** Mutable: changes are stored. */
      object: KubeObject;
      /** Frozen: what is stored now. */
      oldObject: KubeObject;
    })
  | (AdmissionBase & { operation: 'DELETE'; verb: 'delete' | 'deletecollection'; oldObject: KubeObject; options: DeleteOptions });

/** 'deferred' is only meaningful for DELETE: keep the object, marked for deletion, until the simulation removes it. */
export type AdmissionHook = (request: AdmissionRequest) => void | 'deferred';

export interface ChangeEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceType;
  /** The stored object (for DELETED, its last state, carrying the deletion's resourceVersion). Frozen. */
  object: KubeObject;
  /** The object before the change (MODIFIED, DELETED). Frozen. */
  oldObject?: KubeObject;
}

export type ChangeListener = (event: ChangeEvent) => void;

export interface EvictionRequest {
  namespace: string;
  name: string;
  pod: KubeObject;
  /** The policy/v1 Eviction body the client sent. */
  eviction: KubeObject;
  user: UserInfo;
  store: KubeStore;
  /** A dry run (query or deleteOptions.dryRun): refuse as for real, but carry nothing out. */
  dryRun: boolean;
}

/**
 * Decides an eviction and carries it out (usually `store.delete('pods', ...)`). Returning means the eviction was
 * accepted (201); throwing a StatusError refuses it (429 TooManyRequests for a PodDisruptionBudget).
 */
export type EvictionHandler = (request: EvictionRequest) => void | Promise<void>;

export interface LogLine {
  /** When the container wrote the line (clock milliseconds). */
  time: number;
  text: string;
}

export interface PodLogRequest {
  namespace: string;
  name: string;
  pod: KubeObject;
  container: string;
  follow: boolean;
  previous: boolean;
  /** Given for a followed stream to honour; a finite answer is cut to its last tailLines lines by the server. */
  tailLines?: number;
  /** Aborted when the client goes away: end a followed stream then. */
  signal: AbortSignal;
}

/**
 * A container's log. A finite iterable answers at once; an async iterable is streamed as it yields (`follow`).
 * The server applies sinceSeconds, tailLines (finite answers) and timestamps.
 */
export type PodLogHandler = (request: PodLogRequest) => Iterable<LogLine> | AsyncIterable<LogLine> | Promise<Iterable<LogLine>>;

export type Unsubscribe = () => void;

const ALL = '*';

function addTo<T>(map: Map<string, T[]>, key: string, item: T): Unsubscribe {
  const list = map.get(key) ?? [];
  list.push(item);
  map.set(key, list);
  return () => {
    const current = map.get(key);
    if (current) map.set(key, current.filter((x) => x !== item));
  };
}

/** The hook registry of one store. Resources are named by plural (`jobs`), or '*' for all. */
export class KubeHooks {
  #requestHooks: RequestHook[] = [];
  #admission = new Map<string, AdmissionHook[]>();
  #listeners = new Map<string, ChangeListener[]>();
  #eviction: EvictionHandler | undefined;
  #podLog: PodLogHandler | undefined;
  readonly #reportListenerError: (error: unknown, event: ChangeEvent) => void;

  constructor(reportListenerError: (error: unknown, event: ChangeEvent) => void) {
    this.#reportListenerError = reportListenerError;
  }

  onRequest(hook: RequestHook): Unsubscribe {
    this.#requestHooks.push(hook);
    return () => {
      this.#requestHooks = this.#requestHooks.filter((h) => h !== hook);
    };
  }

  admit(resource: string, hook: AdmissionHook): Unsubscribe {
    return addTo(this.#admission, resource, hook);
  }

  onChange(resource: string, listener: ChangeListener): Unsubscribe {
    return addTo(this.#listeners, resource, listener);
  }

  /** Replaces the eviction handler; without one, an eviction deletes the pod as a client delete would. */
  onEviction(handler: EvictionHandler): Unsubscribe {
    this.#eviction = handler;
    return () => {
      if (this.#eviction === handler) this.#eviction = undefined;
    };
  }

  /** Replaces the log source; without one, pods/log answers that no log source is attached. */
  onPodLog(handler: PodLogHandler): Unsubscribe {
    this.#podLog = handler;
    return () => {
      if (this.#podLog === handler) this.#podLog = undefined;
    };
  }

  /** The first StatusError a request hook answers with, if any. */
  checkRequest(request: RequestInfo): StatusError | undefined {
    for (const hook of this.#requestHooks) {
      const answer = hook(request);
      if (answer) return answer;
    }
    return undefined;
  }

  /** Runs the admission hooks for the resource; 'deferred' if any of them deferred a delete. */
  runAdmission(request: AdmissionRequest): 'deferred' | undefined {
    let deferred = false;
    for (const hook of [...(this.#admission.get(ALL) ?? []), ...(this.#admission.get(request.resource.plural) ?? [])]) {
      if (hook(request) === 'deferred') deferred = true;
    }
    return deferred && request.operation === 'DELETE' ? 'deferred' : undefined;
  }

  notify(event: ChangeEvent): void {
    for (const listener of [...(this.#listeners.get(ALL) ?? []), ...(this.#listeners.get(event.resource.plural) ?? [])]) {
      try {
        listener(event);
      } catch (error) {
        this.#reportListenerError(error, event);
      }
    }
  }

  get evictionHandler(): EvictionHandler | undefined {
    return this.#eviction;
  }

  get podLogHandler(): PodLogHandler | undefined {
    return this.#podLog;
  }
}
