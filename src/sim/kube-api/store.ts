/**
 * The in-memory object store behind the sandbox API server, usable in-process without HTTP. It keeps the API
 * server's rules: one global resourceVersion counter, optimistic concurrency on update, generation for spec changes,
 * finalizers and deletionTimestamp, garbage collection of dependents by ownerReferences (Background, Foreground,
 * Orphan), namespace lifecycle, and watches.
 *
 * Writes come in two kinds. A client write (the default, and every HTTP request) runs the admission hooks and the
 * status-subresource rules (a PUT of a Node cannot change its status). An internal write (`internal: true`) is the
 * simulation itself: the kubelet setting a pod's status, a controller completing a Job, the end of a pod's graceful
 * termination. It skips admission but still bumps the resourceVersion and reaches watchers and listeners.
 *
 * Change listeners and watchers are told after the outermost store call returns, in resourceVersion order, so a
 * listener that writes (a kubelet creating a Job's pod) never sees a half-finished operation.
 */
import type { Clock } from '../../engine/clock.ts';
import { ADMIN_USER, KubeHooks, type ChangeEvent, type DeleteOptions, type LogLine, type UserInfo } from './hooks.ts';
import {
  deepFreeze,
  generatedName,
  isPlainObject,
  randomUid,
  rfc3339,
  rfc3339Nano,
  seededRandom,
  type KubeObject,
  type ObjectRef,
} from './objects.ts';
import { applyPatch, deepEqual, type PatchType } from './patch.ts';
import { apiVersionOf, BUILTIN_RESOURCES, groupResource, ResourceRegistry, type PropagationPolicy, type ResourceType } from './resources.ts';
import {
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  type FieldSelector,
  type LabelSelector,
} from './selectors.ts';
import {
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  invalid,
  notFound,
  STALE_OBJECT,
  StatusError,
  undecodable,
  undecodablePatch,
} from './status.ts';
import { decodeError, dropUnknownFields } from './schema.ts';
import { evictionVerdict, syncBudgets } from './disruption.ts';
import { applyCreateDefaults, validate } from './strategies.ts';
import { WatchHub, type Change, type WatchEvent, type WatchHandle, type WatchOptions } from './watch.ts';

export interface KubeStoreOptions {
  clock: Clock;
  /** Served resources; the built-in set by default. */
  resources?: readonly ResourceType[];
  /** Seeds uids and generated names, so the same simulation serves the same objects. */
  seed?: number;
  /** How many changes a watch can resume across (older resourceVersions get 410 Gone). */
  watchHistory?: number;
  /** Clock time a change can be resumed from (older resourceVersions get 410 Gone); 5 minutes, like etcd's compaction. */
  compactionWindowMs?: number;
  /** The API server's --min-request-timeout: a watch without timeoutSeconds ends after 1-2x this (1800 s). */
  minRequestTimeoutSeconds?: number;
  /** Clock interval between BOOKMARK events; under client-node's 30 s watch inactivity timeout by default. */
  bookmarkIntervalMs?: number;
  /** Where an exception thrown by a change listener goes (the write itself has happened). */
  onListenerError?: (error: unknown, event: ChangeEvent) => void;
}

export interface WriteOptions {
  /** A write by the simulation itself: no admission hooks, status written as given. */
  internal?: boolean;
  /** Who writes, for admission hooks; the cluster admin by default. */
  user?: UserInfo;
  /** 'status' writes only the status of a resource with a status subresource. */
  subresource?: string;
  /** For a namespaced resource when the object does not say (or to check that it says the same). */
  namespace?: string;
  /** Server-side dry run: decoded, admitted and validated as for real, answered, never stored. */
  dryRun?: boolean;
  /**
   * What the decoder does with fields the kind does not have (a client's `?fieldValidation=`): drops them (Ignore),
   * drops them and warns (Warn, the API server's default), or refuses the write (Strict). Unset: not looked for, as
   * for the simulation's own writes and in-process callers.
   */
  fieldValidation?: FieldValidation;
  /** Where the warnings of a Warn go, one text each (the server sends them as Warning headers). */
  warnings?: string[];
}

export type FieldValidation = 'Ignore' | 'Warn' | 'Strict';

export interface StoreDeleteOptions extends DeleteOptions {
  internal?: boolean;
  user?: UserInfo;
}

export interface DeleteResult {
  /** The object as last stored: gone when `removed`, otherwise marked with a deletionTimestamp. */
  object: KubeObject;
  removed: boolean;
}

export interface ListOptions {
  namespace?: string;
  labelSelector?: string | LabelSelector;
  fieldSelector?: string | FieldSelector;
}

export interface ListResult {
  items: KubeObject[];
  resourceVersion: string;
}

export interface PodLogOptions {
  container?: string;
  follow?: boolean;
  previous?: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  timestamps?: boolean;
  signal?: AbortSignal;
}

export interface EventRecord {
  type?: 'Normal' | 'Warning';
  reason: string;
  message: string;
  /** source.component, as `kubectl describe` shows in the From column. */
  source?: string;
}

/** The users the server's own controllers act as, as admission hooks see them. */
const GARBAGE_COLLECTOR: UserInfo = { name: 'system:serviceaccount:kube-system:generic-garbage-collector', groups: ['system:serviceaccounts'] };
const NAMESPACE_CONTROLLER: UserInfo = { name: 'system:serviceaccount:kube-system:namespace-controller', groups: ['system:serviceaccounts'] };

const FOREGROUND_FINALIZER = 'foregroundDeletion';

interface Table {
  objects: Map<string, KubeObject>;
  /** Keys in the order lists return them (namespace, then name), rebuilt after an add or a removal. */
  sorted: string[] | undefined;
}

interface Located {
  type: ResourceType;
  key: string;
}

function keyOf(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

export class KubeStore {
  readonly clock: Clock;
  readonly resources: ResourceRegistry;
  readonly hooks: KubeHooks;
  readonly #random: () => number;
  readonly #hub: WatchHub;
  #rv = 0;
  #tables = new Map<ResourceType, Table>();
  #byUid = new Map<string, Located>();
  /** Owner uid → keys (type plural + key) of the objects naming it in ownerReferences. */
  #dependents = new Map<string, Map<string, Located>>();
  #pending: Change[] = [];
  #dispatching = false;
  #depth = 0;
  /** Whether this store serves pods and PodDisruptionBudgets, so evictions meet budgets. */
  readonly #budgets: boolean;

  constructor(options: KubeStoreOptions) {
    this.clock = options.clock;
    this.resources = new ResourceRegistry(options.resources ?? BUILTIN_RESOURCES);
    this.#random = seededRandom(options.seed ?? 1);
    this.#hub = new WatchHub(options.clock, {
      historyLimit: options.watchHistory ?? 10_000,
      compactionWindowMs: options.compactionWindowMs ?? 5 * 60_000,
      bookmarkIntervalMs: options.bookmarkIntervalMs ?? 15_000,
      minRequestTimeoutSeconds: options.minRequestTimeoutSeconds ?? 1800,
      random: seededRandom((options.seed ?? 1) ^ 0x5bd1e995),
    });
    this.hooks = new KubeHooks(options.onListenerError ?? ((error) => console.error('kube-api: a change listener failed:', error)));
    for (const type of this.resources.all) this.#tables.set(type, { objects: new Map(), sorted: undefined });
    const plurals = new Set(this.resources.all.map((t) => `${t.group}/${t.plural}`));
    this.#budgets = plurals.has('/pods') && plurals.has('policy/poddisruptionbudgets');
    if (this.#budgets) {
      // The disruption controller: a budget's status follows every change of a pod or a budget in its namespace.
      const sync = (event: ChangeEvent) => {
        const namespace = event.object.metadata.namespace;
        if (namespace !== undefined) syncBudgets(this, namespace, () => rfc3339(this.clock.now()));
      };
      this.hooks.onChange('pods', sync);
      this.hooks.onChange('poddisruptionbudgets', sync);
    }
  }

  /** The resourceVersion of the latest change. */
  get resourceVersion(): string {
    return String(this.#rv);
  }

  get(resource: string, ref: ObjectRef): KubeObject {
    const type = this.resources.resolve(resource);
    const object = this.#lookup(type, ref);
    if (!object) throw notFound(groupResource(type), ref.name);
    return object;
  }

  find(resource: string, ref: ObjectRef): KubeObject | undefined {
    return this.#lookup(this.resources.resolve(resource), ref);
  }

  list(resource: string, options: ListOptions = {}): ListResult {
    const type = this.resources.resolve(resource);
    return { items: this.#select(type, this.#sorted(type), options), resourceVersion: String(this.#rv) };
  }

  /**
   * The list as it stood at resourceVersion `rv` (a list with resourceVersionMatch=Exact, read from etcd at that
   * revision upstream): what is stored now with every later change undone, newest first. Undefined when some of those
   * changes were compacted away, which upstream answers 410 ("The resourceVersion for the provided list is too old.").
   */
  listAt(resource: string, options: ListOptions, rv: number): ListResult | undefined {
    const type = this.resources.resolve(resource);
    const changes = this.#hub.changesAfter(rv);
    if (changes === undefined) return undefined;
    const objects = new Map(this.#table(type).objects);
    for (let i = changes.length - 1; i >= 0; i--) {
      const change = changes[i]!;
      if (change.resource !== type) continue;
      const key = keyOf(change.object.metadata.namespace, change.object.metadata.name ?? '');
      if (change.type === 'ADDED') objects.delete(key);
      else if (change.oldObject !== undefined) objects.set(key, change.oldObject);
    }
    const sorted = [...objects.keys()].sort().map((key) => objects.get(key)!);
    return { items: this.#select(type, sorted, options), resourceVersion: String(rv) };
  }

  #select(type: ResourceType, objects: Iterable<KubeObject>, options: ListOptions): KubeObject[] {
    const labels = typeof options.labelSelector === 'object' ? options.labelSelector : parseLabelSelector(options.labelSelector);
    const fields = typeof options.fieldSelector === 'object' ? options.fieldSelector : parseFieldSelector(options.fieldSelector, type);
    const namespace = type.namespaced ? options.namespace : undefined;
    const items: KubeObject[] = [];
    for (const object of objects) {
      if (namespace !== undefined && object.metadata.namespace !== namespace) continue;
      if (!matchesLabels(labels, object.metadata.labels)) continue;
      if (!matchesFields(fields, type, object)) continue;
      items.push(object);
    }
    return items;
  }

  create(resource: string, object: KubeObject, options: WriteOptions = {}): KubeObject {
    return this.#operation(() => this.#create(this.resources.resolve(resource), object, options));
  }

  /** PUT semantics: the object replaces the stored one; a metadata.resourceVersion that is not current is a 409. */
  update(resource: string, object: KubeObject, options: WriteOptions = {}): KubeObject {
    return this.#operation(() => {
      const type = this.resources.resolve(resource);
      const namespace = this.#namespaceFor(type, options.namespace, object.metadata?.namespace);
      const name = object.metadata?.name ?? '';
      const old = this.#lookup(type, { namespace, name });
      if (!old) throw notFound(groupResource(type), name);
      return this.#update(type, old, structuredClone(object), options, 'update');
    });
  }

  patch(resource: string, ref: ObjectRef, patchType: PatchType, patch: unknown, options: WriteOptions = {}): KubeObject {
    return this.#operation(() => {
      const type = this.resources.resolve(resource);
      const old = this.#lookup(type, ref);
      if (!old) throw notFound(groupResource(type), ref.name);
      const patched = applyPatch(patchType, structuredClone(old), patch);
      if (!isPlainObject(patched) || !isPlainObject(patched.metadata)) throw badRequest('the patched object is not a Kubernetes object');
      return this.#update(type, old, patched as KubeObject, options, 'patch');
    });
  }

  /**
   * Reads, changes a copy with `change`, and writes it back (no conflict is possible: nothing runs in between).
   * The simulation's way to set a status: `store.modify('nodes', { name }, (n) => { ... }, { internal: true })`.
   */
  modify(resource: string, ref: ObjectRef, change: (draft: KubeObject) => void, options: WriteOptions = {}): KubeObject {
    return this.#operation(() => {
      const type = this.resources.resolve(resource);
      const old = this.#lookup(type, ref);
      if (!old) throw notFound(groupResource(type), ref.name);
      const draft = structuredClone(old);
      change(draft);
      return this.#update(type, old, draft, options, 'update');
    });
  }

  delete(resource: string, ref: ObjectRef, options: StoreDeleteOptions = {}): DeleteResult {
    return this.#operation(() => {
      const type = this.resources.resolve(resource);
      const old = this.#lookup(type, ref);
      if (!old) throw notFound(groupResource(type), ref.name);
      const { uid, resourceVersion } = options.preconditions ?? {};
      if (uid !== undefined && uid !== old.metadata.uid) {
        throw conflict(groupResource(type), ref.name, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${old.metadata.uid}`);
      }
      if (resourceVersion !== undefined && resourceVersion !== old.metadata.resourceVersion) {
        throw conflict(
          groupResource(type),
          ref.name,
          `Precondition failed: ResourceVersion in precondition: ${resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`,
        );
      }
      return this.#delete(type, old, options, 'delete');
    });
  }

  /** DELETE on a collection: deletes every matching object, each as a single delete would. */
  deleteCollection(resource: string, list: ListOptions, options: StoreDeleteOptions = {}): KubeObject[] {
    return this.#operation(() => {
      const type = this.resources.resolve(resource);
      return this.list(resource, list).items.map((object) => this.#delete(type, object, options, 'deletecollection').object);
    });
  }

  /**
   * Watches a resource. Events are delivered synchronously after each store call; `onEnd` is called when the server
   * side ends the watch (timeoutSeconds, 410 Gone, `closeWatches`), not after `stop()`.
   */
  watch(resource: string, options: WatchOptions, onEvent: (event: WatchEvent) => void, onEnd: () => void = () => {}): WatchHandle {
    const type = this.resources.resolve(resource);
    const namespace = type.namespaced ? options.namespace : undefined;
    return this.#hub.watch({
      type,
      namespace,
      labels: parseLabelSelector(options.labelSelector),
      fields: parseFieldSelector(options.fieldSelector, type),
      resourceVersion: options.resourceVersion,
      allowWatchBookmarks: options.allowWatchBookmarks ?? false,
      timeoutSeconds: options.timeoutSeconds,
      current: () => [...this.#sorted(type)],
      currentRv: this.#rv,
      onEvent,
      onEnd,
    });
  }

  /** Ends every open watch (the server is shutting down). */
  closeWatches(): void {
    this.#hub.endAll();
  }

  /** POST pods/eviction: the eviction handler decides; without one the pod is deleted as a client delete would. */
  async evict(
    ref: { namespace: string; name: string },
    eviction: KubeObject,
    user: UserInfo = ADMIN_USER,
    options: Pick<WriteOptions, 'dryRun' | 'fieldValidation' | 'warnings'> = {},
  ): Promise<void> {
    const undecodableBecause = decodeError('policy', 'v1', 'Eviction', { ...eviction, apiVersion: 'policy/v1', kind: 'Eviction' });
    if (undecodableBecause !== undefined) throw undecodable('Eviction', 'v1', undecodableBecause);
    if (options.fieldValidation !== undefined && isPlainObject(eviction)) {
      const unknown = dropUnknownFields('policy', 'v1', 'Eviction', structuredClone(eviction)).map((path) => `unknown field ${JSON.stringify(path)}`);
      if (unknown.length > 0 && options.fieldValidation === 'Strict') throw undecodable('Eviction', 'v1', `strict decoding error: ${unknown.join(', ')}`);
      if (options.fieldValidation === 'Warn') options.warnings?.push(...unknown);
    }
    const pod = this.get('pods', ref);
    const evictionName = eviction.metadata?.name;
    if (evictionName !== undefined && evictionName !== ref.name) throw badRequest('name in URL does not match name in Eviction object');
    const bodyOptions = isPlainObject(eviction.deleteOptions) ? eviction.deleteOptions : {};
    const dryRun = options.dryRun === true || parseDryRun(bodyOptions.dryRun);
    if (this.#budgets) {
      const verdict = evictionVerdict(pod, this.list('poddisruptionbudgets', { namespace: ref.namespace }).items);
      if (verdict instanceof StatusError) throw verdict;
    }
    const handler = this.hooks.evictionHandler;
    if (handler) {
      await handler({ namespace: ref.namespace, name: ref.name, pod, eviction, user, store: this, dryRun });
      return;
    }
    const deleteOptions: StoreDeleteOptions = { user, dryRun };
    if (typeof bodyOptions.gracePeriodSeconds === 'number') deleteOptions.gracePeriodSeconds = bodyOptions.gracePeriodSeconds;
    this.delete('pods', ref, deleteOptions);
  }

  /** GET pods/log: the lines the log handler gives, with the server's container check, tail, since and timestamps. */
  async podLog(ref: { namespace: string; name: string }, options: PodLogOptions = {}): Promise<AsyncIterable<string>> {
    const pod = this.get('pods', ref);
    const spec = isPlainObject(pod.spec) ? pod.spec : {};
    const names = [spec.containers, spec.initContainers]
      .flatMap((list) => (Array.isArray(list) ? list : []))
      .map((c) => (isPlainObject(c) ? String(c.name) : ''));
    const regular = Array.isArray(spec.containers) ? spec.containers.length : 0;
    let container = options.container;
    if (container === undefined || container === '') {
      if (regular !== 1) throw badRequest(`a container name must be specified for pod ${ref.name}, choose one of: [${names.join(' ')}]`);
      container = names[0]!;
    } else if (!names.includes(container)) {
      throw badRequest(`container ${container} is not valid for pod ${ref.name}`);
    }
    const handler = this.hooks.podLogHandler;
    if (!handler) throw new StatusError(500, 'InternalError', `no log source is attached to this sandbox for pod ${ref.namespace}/${ref.name}`);
    const signal = options.signal ?? new AbortController().signal;
    const request = { namespace: ref.namespace, name: ref.name, pod, container, follow: options.follow ?? false, previous: options.previous ?? false, signal };
    const answer = await handler(options.tailLines === undefined ? request : { ...request, tailLines: options.tailLines });
    const since = options.sinceSeconds === undefined ? undefined : this.clock.now() - options.sinceSeconds * 1000;
    const format = (line: LogLine) => `${options.timestamps ? `${rfc3339Nano(line.time)} ` : ''}${line.text}\n`;
    const keep = (line: LogLine) => since === undefined || line.time >= since;
    if (Symbol.iterator in answer) {
      let lines = [...answer].filter(keep);
      if (options.tailLines !== undefined) lines = options.tailLines <= 0 ? [] : lines.slice(-options.tailLines);
      return (async function* () {
        for (const line of lines) yield format(line);
      })();
    }
    return (async function* () {
      for await (const line of answer) if (keep(line)) yield format(line);
    })();
  }

  /** Records a core/v1 Event about an object, timed by the clock (an internal write: the simulation reports). */
  recordEvent(about: KubeObject, event: EventRecord): KubeObject {
    const namespace = about.metadata.namespace ?? 'default';
    const now = rfc3339(this.clock.now());
    const involvedObject: Record<string, unknown> = {
      kind: about.kind,
      apiVersion: about.apiVersion,
      name: about.metadata.name,
      uid: about.metadata.uid,
      resourceVersion: about.metadata.resourceVersion,
    };
    if (about.metadata.namespace !== undefined) involvedObject.namespace = about.metadata.namespace;
    return this.create(
      'events',
      {
        metadata: { generateName: `${about.metadata.name}.`, namespace },
        involvedObject,
        reason: event.reason,
        message: event.message,
        type: event.type ?? 'Normal',
        source: { component: event.source ?? 'patchpilot-sandbox' },
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        reportingComponent: event.source ?? 'patchpilot-sandbox',
        reportingInstance: '',
      },
      { internal: true },
    );
  }

  // ---------------------------------------------------------------------------------------------------------------

  #operation<T>(body: () => T): T {
    this.#depth++;
    try {
      return body();
    } finally {
      if (--this.#depth === 0) this.#flush();
    }
  }

  #flush(): void {
    if (this.#dispatching) return;
    this.#dispatching = true;
    try {
      for (let i = 0; i < this.#pending.length; i++) {
        const change = this.#pending[i]!;
        this.#hub.publish(change);
        const event: ChangeEvent = { type: change.type, resource: change.resource, object: change.object };
        if (change.oldObject !== undefined) event.oldObject = change.oldObject;
        this.hooks.notify(event);
      }
    } finally {
      this.#pending = [];
      this.#dispatching = false;
    }
  }

  #table(type: ResourceType): Table {
    return this.#tables.get(type)!;
  }

  #lookup(type: ResourceType, ref: ObjectRef): KubeObject | undefined {
    return this.#table(type).objects.get(keyOf(type.namespaced ? ref.namespace : undefined, ref.name));
  }

  *#sorted(type: ResourceType): Generator<KubeObject> {
    const table = this.#table(type);
    table.sorted ??= [...table.objects.keys()].sort();
    for (const key of table.sorted) {
      const object = table.objects.get(key);
      if (object) yield object;
    }
  }

  #namespaceFor(type: ResourceType, requested: string | undefined, inObject: string | undefined): string | undefined {
    if (!type.namespaced) return undefined;
    if (requested !== undefined && inObject !== undefined && inObject !== '' && requested !== inObject) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const namespace = requested ?? inObject;
    if (namespace === undefined || namespace === '') throw badRequest(`a namespace is required for ${type.plural}`);
    return namespace;
  }

  /** Stores a new version (or removes it, for DELETED) under a fresh resourceVersion, and queues the change. */
  #commit(type: ResourceType, changeType: Change['type'], draft: KubeObject, old: KubeObject | undefined): KubeObject {
    const rv = ++this.#rv;
    draft.metadata.resourceVersion = String(rv);
    const object = deepFreeze(draft);
    const table = this.#table(type);
    const key = keyOf(object.metadata.namespace, object.metadata.name ?? '');
    if (changeType === 'DELETED') {
      table.objects.delete(key);
      table.sorted = undefined;
      this.#byUid.delete(object.metadata.uid ?? '');
    } else {
      if (!table.objects.has(key)) table.sorted = undefined;
      table.objects.set(key, object);
      this.#byUid.set(object.metadata.uid ?? '', { type, key });
    }
    this.#indexOwners(type, key, old, changeType === 'DELETED' ? undefined : object);
    const change: Change = { rv, type: changeType, resource: type, object };
    if (old !== undefined) change.oldObject = old;
    this.#pending.push(change);
    return object;
  }

  #indexOwners(type: ResourceType, key: string, old: KubeObject | undefined, current: KubeObject | undefined): void {
    const dependentKey = `${type.plural}.${type.group}|${key}`;
    for (const ref of old?.metadata.ownerReferences ?? []) this.#dependents.get(ref.uid)?.delete(dependentKey);
    for (const ref of current?.metadata.ownerReferences ?? []) {
      const dependents = this.#dependents.get(ref.uid) ?? new Map<string, Located>();
      dependents.set(dependentKey, { type, key });
      this.#dependents.set(ref.uid, dependents);
    }
    for (const ref of old?.metadata.ownerReferences ?? []) if (this.#dependents.get(ref.uid)?.size === 0) this.#dependents.delete(ref.uid);
  }

  #dependentsOf(uid: string): KubeObject[] {
    const found: KubeObject[] = [];
    for (const { type, key } of this.#dependents.get(uid)?.values() ?? []) {
      const object = this.#table(type).objects.get(key);
      if (object) found.push(object);
    }
    return found;
  }

  #located(uid: string): { type: ResourceType; object: KubeObject } | undefined {
    const where = this.#byUid.get(uid);
    const object = where && this.#table(where.type).objects.get(where.key);
    return where && object ? { type: where.type, object } : undefined;
  }

  #create(type: ResourceType, input: KubeObject, options: WriteOptions): KubeObject {
    if (options.internal !== true) checkTypeMeta(type, input);
    this.#decode(type, input, 'create');
    const draft = structuredClone(input);
    this.#dropUnknownFields(type, draft, 'create', options);
    if (!isPlainObject(draft.metadata)) draft.metadata = {};
    const meta = draft.metadata;
    const namespace = this.#namespaceFor(type, options.namespace, meta.namespace);
    if (namespace === undefined) delete meta.namespace;
    else meta.namespace = namespace;
    if (options.subresource !== undefined) throw badRequest(`${type.plural}/${options.subresource} cannot be created`);
    draft.apiVersion = apiVersionOf(type);
    draft.kind = type.kind;
    if ((meta.name === undefined || meta.name === '') && meta.generateName) meta.name = generatedName(meta.generateName, this.#random);
    for (const field of ['resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink'] as const) delete meta[field];
    meta.uid = randomUid(this.#random);
    meta.creationTimestamp = rfc3339(this.clock.now());
    if (type.tracksGeneration) meta.generation = 1;
    else delete meta.generation;
    const fromClient = options.internal !== true;
    applyCreateDefaults(type, draft, { now: this.clock.now(), fromClient });
    if (fromClient) {
      this.hooks.runAdmission({ operation: 'CREATE', verb: 'create', resource: type, namespace, name: meta.name ?? '', user: options.user ?? ADMIN_USER, object: draft, dryRun: options.dryRun === true });
    }
    const errors = validate(type, draft, undefined);
    if (errors.length > 0) throw invalid(type.group, type.kind, meta.name ?? '', errors);
    dropEmptyMetadata(draft);
    if (namespace !== undefined) this.#checkNamespaceAccepts(type, namespace, meta.name ?? '');
    if (this.#lookup(type, { namespace, name: meta.name ?? '' })) throw alreadyExists(groupResource(type), meta.name ?? '');
    if (options.dryRun) return deepFreeze(draft);
    return this.#commit(type, 'ADDED', draft, undefined);
  }

  /**
   * The decoder's part: an object that is not of its kind's shape never reaches validation. A create or update is a
   * 400 as the codec words it; a patch whose result does not decode is upstream's 422 on the field `patch`.
   */
  #decode(type: ResourceType, object: KubeObject, verb: 'create' | 'update' | 'patch'): void {
    const why = isPlainObject(object) ? decodeError(type.group, type.version, type.kind, { ...object, apiVersion: apiVersionOf(type), kind: type.kind }) : '(root): must be object';
    if (why === undefined) return;
    if (verb === 'patch') throw undecodablePatch(object, why);
    throw undecodable(type.kind, type.version, why);
  }

  /**
   * The decoder's strict part (sigs.k8s.io/json, for fieldValidation Strict or Warn), after the types decoded: fields
   * the kind does not have are dropped, as the typed decoder drops them; Strict refuses them, as a create or update
   * is refused (400 "ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: unknown field
   * "metadata.labelz"", transformDecodeError's words) and a patched object is (422 on `patch`, the patch handler's
   * NewInvalid); Warn names each in a warning ("unknown field "metadata.labelz"", addStrictDecodingWarnings).
   */
  #dropUnknownFields(type: ResourceType, object: KubeObject, verb: 'create' | 'update' | 'patch', options: WriteOptions): void {
    const mode = options.fieldValidation;
    if (mode === undefined || options.internal === true || !isPlainObject(object)) return;
    const before = mode === 'Strict' && verb === 'patch' ? structuredClone(object) : undefined;
    const unknown = dropUnknownFields(type.group, type.version, type.kind, object);
    if (unknown.length === 0) return;
    const errors = unknown.map((path) => `unknown field ${JSON.stringify(path)}`);
    if (mode === 'Strict') {
      const why = `strict decoding error: ${errors.join(', ')}`;
      if (verb === 'patch') throw undecodablePatch(before, why);
      throw undecodable(type.kind, type.version, why);
    }
    if (mode === 'Warn') options.warnings?.push(...errors);
  }

  #checkNamespaceAccepts(type: ResourceType, namespace: string, name: string): void {
    const ns = this.find('namespaces', { name: namespace });
    if (!ns) throw notFound({ group: '', resource: 'namespaces' }, namespace);
    if (ns.metadata.deletionTimestamp !== undefined) {
      throw forbidden(groupResource(type), name, `unable to create new content in namespace ${namespace} because it is being terminated`);
    }
  }

  #update(type: ResourceType, old: KubeObject, input: KubeObject, options: WriteOptions, verb: 'update' | 'patch'): KubeObject {
    // The simulation's own updates (status renders, heartbeats: most writes) are trusted to keep the shape their
    // create was decoded with; every client write is decoded.
    if (options.internal !== true) {
      if (verb === 'update') checkTypeMeta(type, input);
      this.#decode(type, input, verb);
      this.#dropUnknownFields(type, input, verb, options);
    }
    const name = old.metadata.name ?? '';
    if (!isPlainObject(input.metadata)) input.metadata = {};
    if (input.metadata.name !== undefined && input.metadata.name !== name) {
      throw badRequest(`the name of the object (${input.metadata.name}) does not match the name on the URL (${name})`);
    }
    const requestedRv = input.metadata.resourceVersion;
    if (requestedRv !== undefined && requestedRv !== '' && requestedRv !== old.metadata.resourceVersion) {
      throw conflict(groupResource(type), name, STALE_OBJECT);
    }
    const hasStatus = type.subresources.some((s) => s.name === 'status');
    if (options.subresource !== undefined && !(options.subresource === 'status' && hasStatus)) {
      throw notFound(groupResource(type), `${name}/${options.subresource}`);
    }
    let draft = input;
    if (options.internal !== true && hasStatus) {
      if (options.subresource === 'status') {
        draft = structuredClone(old);
        if (input.status === undefined) delete draft.status;
        else draft.status = input.status;
      } else if (old.status === undefined) {
        delete draft.status;
      } else {
        draft.status = structuredClone(old.status);
      }
    }
    draft.apiVersion = old.apiVersion;
    draft.kind = old.kind;
    const meta = draft.metadata;
    meta.name = name;
    if (old.metadata.namespace === undefined) delete meta.namespace;
    else meta.namespace = old.metadata.namespace;
    meta.uid = old.metadata.uid;
    meta.creationTimestamp = old.metadata.creationTimestamp;
    for (const field of ['deletionTimestamp', 'deletionGracePeriodSeconds', 'generation'] as const) {
      if (old.metadata[field] === undefined) delete meta[field];
      else meta[field] = old.metadata[field] as never;
    }
    if (options.internal !== true) {
      const request = { operation: 'UPDATE', verb, resource: type, name, user: options.user ?? ADMIN_USER, object: draft, oldObject: old, dryRun: options.dryRun === true } as const;
      const namespace = old.metadata.namespace;
      const subresource = options.subresource;
      this.hooks.runAdmission({ ...request, ...(namespace === undefined ? {} : { namespace }), ...(subresource === undefined ? {} : { subresource }) });
    }
    const errors = validate(type, draft, old);
    if (errors.length > 0) throw invalid(type.group, type.kind, name, errors);
    if (type.tracksGeneration && specChanged(old, draft)) meta.generation = (old.metadata.generation ?? 0) + 1;
    meta.resourceVersion = old.metadata.resourceVersion;
    dropEmptyMetadata(draft);
    if (deepEqual(old, draft)) return old;
    if (options.dryRun) return deepFreeze(draft);
    if (old.metadata.deletionTimestamp !== undefined && (meta.finalizers ?? []).length === 0) return this.#remove(type, draft, old);
    return this.#commit(type, 'MODIFIED', draft, old);
  }

  #delete(type: ResourceType, old: KubeObject, options: StoreDeleteOptions, verb: 'delete' | 'deletecollection'): DeleteResult {
    let deferred = false;
    const deleteOptions: DeleteOptions = {};
    if (options.propagationPolicy !== undefined) deleteOptions.propagationPolicy = options.propagationPolicy;
    if (options.gracePeriodSeconds !== undefined) deleteOptions.gracePeriodSeconds = options.gracePeriodSeconds;
    if (options.preconditions !== undefined) deleteOptions.preconditions = options.preconditions;
    const dryRun = options.dryRun === true;
    if (dryRun) deleteOptions.dryRun = true;
    if (options.internal !== true) {
      const namespace = old.metadata.namespace;
      const request = { operation: 'DELETE', verb, resource: type, name: old.metadata.name ?? '', user: options.user ?? ADMIN_USER, oldObject: old, options: deleteOptions, dryRun } as const;
      deferred = this.hooks.runAdmission(namespace === undefined ? request : { ...request, namespace }) === 'deferred';
    }
    if (dryRun) return this.#deleteDryRun(type, old, deferred, options);
    if (type.group === '' && type.plural === 'namespaces') return this.#deleteNamespace(old);
    const policy: PropagationPolicy = options.propagationPolicy ?? type.defaultPropagation;
    const uid = old.metadata.uid ?? '';
    if (policy === 'Orphan') this.#orphanDependents(uid);
    const finalizers = [...(old.metadata.finalizers ?? [])];
    if (policy === 'Foreground' && !finalizers.includes(FOREGROUND_FINALIZER) && this.#dependentsOf(uid).length > 0) {
      finalizers.push(FOREGROUND_FINALIZER);
    }
    if (deferred || finalizers.length > 0) {
      let current = old;
      if (old.metadata.deletionTimestamp === undefined || !deepEqual(finalizers, old.metadata.finalizers ?? [])) {
        const draft = structuredClone(old);
        if (finalizers.length > 0) draft.metadata.finalizers = finalizers;
        if (draft.metadata.deletionTimestamp === undefined) {
          const grace = deferred ? (options.gracePeriodSeconds ?? podGracePeriod(old)) : 0;
          draft.metadata.deletionTimestamp = rfc3339(this.clock.now() + grace * 1000);
          draft.metadata.deletionGracePeriodSeconds = grace;
        }
        current = this.#commit(type, 'MODIFIED', draft, old);
      }
      if (policy === 'Foreground') {
        this.#deleteDependents(uid);
        this.#completeForeground(uid);
      }
      const now = this.#lookup(type, { namespace: old.metadata.namespace, name: old.metadata.name ?? '' });
      return now ? { object: now, removed: false } : { object: current, removed: true };
    }
    return { object: this.#remove(type, structuredClone(old), old), removed: true };
  }

  /** What a delete would answer, changing nothing: the object marked for deletion, or the object as it goes. */
  #deleteDryRun(type: ResourceType, old: KubeObject, deferred: boolean, options: StoreDeleteOptions): DeleteResult {
    const policy: PropagationPolicy = options.propagationPolicy ?? type.defaultPropagation;
    const waits = type.group === '' && type.plural === 'namespaces';
    const foreground = policy === 'Foreground' && this.#dependentsOf(old.metadata.uid ?? '').length > 0;
    if (!deferred && !waits && !foreground && (old.metadata.finalizers ?? []).length === 0) return { object: old, removed: true };
    const draft = structuredClone(old);
    if (draft.metadata.deletionTimestamp === undefined) {
      const grace = deferred ? (options.gracePeriodSeconds ?? podGracePeriod(old)) : 0;
      draft.metadata.deletionTimestamp = rfc3339(this.clock.now() + grace * 1000);
      draft.metadata.deletionGracePeriodSeconds = grace;
    }
    return { object: deepFreeze(draft), removed: false };
  }

  /** Takes the object out, then does what its absence implies: GC of dependents, foreground owners, namespaces. */
  #remove(type: ResourceType, draft: KubeObject, old: KubeObject): KubeObject {
    const removed = this.#commit(type, 'DELETED', draft, old);
    const uid = removed.metadata.uid ?? '';
    this.#deleteDependents(uid);
    for (const ref of removed.metadata.ownerReferences ?? []) this.#completeForeground(ref.uid);
    const namespace = removed.metadata.namespace;
    if (namespace !== undefined) this.#finishNamespaceIfEmpty(namespace);
    return removed;
  }

  /**
   * The garbage collector's part, for an owner that is gone (dependents whose owners are all gone are deleted, in the
   * background; those with another live owner only lose the reference) or in foreground deletion (all are deleted).
   */
  #deleteDependents(ownerUid: string): void {
    const ownerGone = !this.#byUid.has(ownerUid);
    for (const dependent of this.#dependentsOf(ownerUid)) {
      const located = this.#located(dependent.metadata.uid ?? '');
      if (!located) continue;
      if (ownerGone && (dependent.metadata.ownerReferences ?? []).some((r) => r.uid !== ownerUid && this.#byUid.has(r.uid))) {
        this.#stripOwner(located.type, dependent, ownerUid);
        continue;
      }
      if (dependent.metadata.deletionTimestamp !== undefined) continue;
      try {
        this.#delete(located.type, dependent, { propagationPolicy: 'Background', user: GARBAGE_COLLECTOR }, 'delete');
      } catch (error) {
        // The real collector retries; here the dependent stays, as it would while an admission webhook refuses.
        if (!(error instanceof StatusError)) throw error;
      }
    }
  }

  #orphanDependents(ownerUid: string): void {
    for (const dependent of this.#dependentsOf(ownerUid)) {
      const located = this.#located(dependent.metadata.uid ?? '');
      if (located) this.#stripOwner(located.type, dependent, ownerUid);
    }
  }

  #stripOwner(type: ResourceType, dependent: KubeObject, ownerUid: string): void {
    const draft = structuredClone(dependent);
    const remaining = (draft.metadata.ownerReferences ?? []).filter((r) => r.uid !== ownerUid);
    if (remaining.length > 0) draft.metadata.ownerReferences = remaining;
    else delete draft.metadata.ownerReferences;
    this.#commit(type, 'MODIFIED', draft, dependent);
  }

  /** Lifts the foregroundDeletion finalizer of an owner being deleted once its last dependent is gone. */
  #completeForeground(ownerUid: string): void {
    const owner = this.#located(ownerUid);
    if (!owner || owner.object.metadata.deletionTimestamp === undefined) return;
    if (!(owner.object.metadata.finalizers ?? []).includes(FOREGROUND_FINALIZER)) return;
    if (this.#dependentsOf(ownerUid).length > 0) return;
    const draft = structuredClone(owner.object);
    const remaining = (draft.metadata.finalizers ?? []).filter((f) => f !== FOREGROUND_FINALIZER);
    if (remaining.length > 0) {
      draft.metadata.finalizers = remaining;
      this.#commit(owner.type, 'MODIFIED', draft, owner.object);
    } else {
      delete draft.metadata.finalizers;
      this.#remove(owner.type, draft, owner.object);
    }
  }

  /** The namespace controller's part: the namespace turns Terminating, its content is deleted, then it goes. */
  #deleteNamespace(old: KubeObject): DeleteResult {
    const name = old.metadata.name ?? '';
    const namespaceType = this.resources.resolve('namespaces');
    if (old.metadata.deletionTimestamp === undefined) {
      const draft = structuredClone(old);
      draft.metadata.deletionTimestamp = rfc3339(this.clock.now());
      draft.metadata.deletionGracePeriodSeconds = 0;
      draft.status = { ...(isPlainObject(draft.status) ? draft.status : {}), phase: 'Terminating' };
      this.#commit(namespaceType, 'MODIFIED', draft, old);
    }
    for (const type of this.resources.all) {
      if (!type.namespaced) continue;
      for (const object of [...this.#sorted(type)]) {
        if (object.metadata.namespace !== name || object.metadata.deletionTimestamp !== undefined) continue;
        try {
          this.#delete(type, object, { propagationPolicy: 'Background', user: NAMESPACE_CONTROLLER }, 'delete');
        } catch (error) {
          if (!(error instanceof StatusError)) throw error;
        }
      }
    }
    this.#finishNamespaceIfEmpty(name);
    const now = this.find('namespaces', { name });
    return now ? { object: now, removed: false } : { object: old, removed: true };
  }

  #finishNamespaceIfEmpty(name: string): void {
    const ns = this.find('namespaces', { name });
    if (!ns || ns.metadata.deletionTimestamp === undefined) return;
    for (const type of this.resources.all) {
      if (!type.namespaced) continue;
      for (const object of this.#table(type).objects.values()) if (object.metadata.namespace === name) return;
    }
    const draft = structuredClone(ns);
    this.#remove(this.resources.resolve('namespaces'), draft, ns);
  }
}

/**
 * metav1's dryRun: a list whose only allowed value is "All" (an empty list is no dry run); anything else is a 400, as
 * ValidateDryRun answers.
 */
export function parseDryRun(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  const values = Array.isArray(value) ? value : [value];
  for (const v of values) {
    if (v !== 'All') throw badRequest(`Invalid dryRun: dryRun: Unsupported value: ${JSON.stringify(v)}: supported values: "All"`);
  }
  return values.length > 0;
}

/** Go's omitempty: an empty labels map or finalizers list is no labels or finalizers at all. */
function dropEmptyMetadata(object: KubeObject): void {
  const meta = object.metadata;
  for (const key of ['labels', 'annotations'] as const) {
    const value = meta[key];
    if (value !== undefined && (value === null || Object.keys(value).length === 0)) delete meta[key];
  }
  for (const key of ['finalizers', 'ownerReferences'] as const) {
    const value = meta[key];
    if (value !== undefined && (value === null || value.length === 0)) delete meta[key];
  }
}

function podGracePeriod(object: KubeObject): number {
  const spec = isPlainObject(object.spec) ? object.spec : {};
  return typeof spec.terminationGracePeriodSeconds === 'number' ? spec.terminationGracePeriodSeconds : 30;
}

/** Whether anything outside metadata and status changed: what bumps metadata.generation. */
function specChanged(old: KubeObject, next: KubeObject): boolean {
  const keys = new Set([...Object.keys(old), ...Object.keys(next)]);
  for (const key of keys) {
    if (key === 'metadata' || key === 'status' || key === 'apiVersion' || key === 'kind') continue;
    if (!deepEqual(old[key], next[key])) return true;
  }
  return false;
}

/**
 * The decoder's check of a created or replaced object's own apiVersion and kind: either may be left out (the URL's
 * are taken), but a body of another kind or version is not stored as the URL's kind. Upstream answers 400 (a Secret
 * posted to configmaps fails its conversion to a ConfigMap: "converting (v1.Secret) to (core.ConfigMap): unknown
 * conversion", as etcd list decoding says it for a foreign key; a version the resource is not served in is "the API version in
 * the data (…) does not match the expected API version (…)").
 */
function checkTypeMeta(type: ResourceType, input: KubeObject): void {
  if (!isPlainObject(input)) return;
  const expected = apiVersionOf(type);
  const { apiVersion, kind } = input as { apiVersion?: unknown; kind?: unknown };
  if (typeof kind === 'string' && kind !== '' && kind !== type.kind) {
    const version = typeof apiVersion === 'string' && apiVersion !== '' ? (apiVersion.split('/').at(-1) ?? apiVersion) : type.version;
    // The decoder makes a `kind` object and fails to convert it into the URL's internal type (Go package names: the
    // version's, and the group's first label, "core" for the core group).
    const internal = `${type.group === '' ? 'core' : type.group.split('.')[0]}.${type.kind}`;
    throw badRequest(`${kind} in version ${JSON.stringify(version)} cannot be handled as a ${type.kind}: converting (${version}.${kind}) to (${internal}): unknown conversion`);
  }
  if (typeof apiVersion === 'string' && apiVersion !== '' && apiVersion !== expected) {
    throw badRequest(`the API version in the data (${apiVersion}) does not match the expected API version (${expected})`);
  }
}

