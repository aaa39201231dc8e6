/**
 * The resources the sandbox serves and what the API server knows about each: where it lives in the API, what
 * discovery says about it, which field selectors it supports and how it behaves on delete.
 */
import { readPath, type KubeObject } from './objects.ts';
import type { GroupResource } from './status.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete' | 'deletecollection';

export interface SubresourceType {
  name: string;
  /** Kind of the subresource's body, as discovery reports it (`Eviction` for pods/eviction). */
  kind: string;
  /** Set when the body belongs to another API group (pods/eviction is policy/v1). */
  group?: string;
  version?: string;
  verbs: Verb[];
}

export type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan';

export interface ResourceType {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: Verb[];
  subresources: SubresourceType[];
  /** Field selectors beyond metadata.name and metadata.namespace, with how to read each as the server does. */
  fields: Record<string, (obj: KubeObject) => string>;
  /** metadata.generation counts changes outside metadata and status. */
  tracksGeneration: boolean;
  /** DELETE answers with the object (pods, namespaces) rather than a success Status. */
  returnsDeletedObject: boolean;
  /** What a delete without propagationPolicy does to dependents; batch/v1 Jobs orphan them for compatibility. */
  defaultPropagation: PropagationPolicy;
}

const ALL_VERBS: Verb[] = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const STATUS_VERBS: Verb[] = ['get', 'patch', 'update'];

export function apiVersionOf(type: ResourceType): string {
  return type.group === '' ? type.version : `${type.group}/${type.version}`;
}

export function groupResource(type: ResourceType): GroupResource {
  return { group: type.group, resource: type.plural };
}

/** Field values as the server's field sets render them: absent is "", booleans and numbers as text. */
function field(path: string, absent = ''): (obj: KubeObject) => string {
  return (obj) => {
    const value = readPath(obj, path);
    return value === undefined || value === null ? absent : String(value);
  };
}

function resource(spec: Partial<ResourceType> & Pick<ResourceType, 'group' | 'version' | 'kind' | 'plural' | 'namespaced'>): ResourceType {
  return {
    singular: spec.kind.toLowerCase(),
    shortNames: [],
    categories: [],
    verbs: ALL_VERBS,
    subresources: [],
    fields: {},
    tracksGeneration: false,
    returnsDeletedObject: false,
    defaultPropagation: 'Background',
    ...spec,
  };
}

export const BUILTIN_RESOURCES: readonly ResourceType[] = [
  resource({
    group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', namespaced: false, shortNames: ['ns'],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: [{ name: 'status', kind: 'Namespace', verbs: STATUS_VERBS }],
    fields: { 'status.phase': field('status.phase') },
    returnsDeletedObject: true,
  }),
  resource({
    group: '', version: 'v1', kind: 'Node', plural: 'nodes', namespaced: false, shortNames: ['no'],
    subresources: [{ name: 'status', kind: 'Node', verbs: STATUS_VERBS }],
    fields: { 'spec.unschedulable': field('spec.unschedulable', 'false') },
  }),
  resource({
    group: '', version: 'v1', kind: 'Pod', plural: 'pods', namespaced: true, shortNames: ['po'], categories: ['all'],
    subresources: [
      { name: 'eviction', kind: 'Eviction', group: 'policy', version: 'v1', verbs: ['create'] },
      { name: 'log', kind: 'Pod', verbs: ['get'] },
      { name: 'status', kind: 'Pod', verbs: STATUS_VERBS },
    ],
    fields: {
      'spec.nodeName': field('spec.nodeName'),
      'spec.restartPolicy': field('spec.restartPolicy'),
      'spec.schedulerName': field('spec.schedulerName'),
      'spec.serviceAccountName': field('spec.serviceAccountName'),
      'spec.hostNetwork': field('spec.hostNetwork', 'false'),
      'status.phase': field('status.phase'),
      'status.podIP': field('status.podIP'),
      'status.nominatedNodeName': field('status.nominatedNodeName'),
    },
    returnsDeletedObject: true,
  }),
  resource({ group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', namespaced: true, shortNames: ['cm'] }),
  resource({
    group: '', version: 'v1', kind: 'Event', plural: 'events', namespaced: true, shortNames: ['ev'],
    fields: {
      'involvedObject.kind': field('involvedObject.kind'),
      'involvedObject.namespace': field('involvedObject.namespace'),
      'involvedObject.name': field('involvedObject.name'),
      'involvedObject.uid': field('involvedObject.uid'),
      'involvedObject.apiVersion': field('involvedObject.apiVersion'),
      'involvedObject.resourceVersion': field('involvedObject.resourceVersion'),
      'involvedObject.fieldPath': field('involvedObject.fieldPath'),
      reason: field('reason'),
      reportingComponent: field('reportingComponent'),
      source: field('source.component'),
      type: field('type'),
    },
  }),
  resource({ group: '', version: 'v1', kind: 'ServiceAccount', plural: 'serviceaccounts', namespaced: true, shortNames: ['sa'] }),
  resource({
    group: 'batch', version: 'v1', kind: 'Job', plural: 'jobs', namespaced: true, categories: ['all'],
    subresources: [{ name: 'status', kind: 'Job', verbs: STATUS_VERBS }],
    fields: { 'status.successful': field('status.successful', '0') },
    tracksGeneration: true,
    defaultPropagation: 'Orphan',
  }),
  resource({
    group: 'apps', version: 'v1', kind: 'DaemonSet', plural: 'daemonsets', namespaced: true, shortNames: ['ds'], categories: ['all'],
    subresources: [{ name: 'status', kind: 'DaemonSet', verbs: STATUS_VERBS }],
    tracksGeneration: true,
  }),
  resource({
    group: 'apps', version: 'v1', kind: 'ReplicaSet', plural: 'replicasets', namespaced: true, shortNames: ['rs'], categories: ['all'],
    subresources: [{ name: 'status', kind: 'ReplicaSet', verbs: STATUS_VERBS }],
    tracksGeneration: true,
  }),
  resource({
    group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', namespaced: true, shortNames: ['deploy'], categories: ['all'],
    subresources: [{ name: 'status', kind: 'Deployment', verbs: STATUS_VERBS }],
    tracksGeneration: true,
  }),
  resource({ group: 'coordination.k8s.io', version: 'v1', kind: 'Lease', plural: 'leases', namespaced: true }),
  resource({
    group: 'policy', version: 'v1', kind: 'PodDisruptionBudget', plural: 'poddisruptionbudgets', namespaced: true, shortNames: ['pdb'],
    subresources: [{ name: 'status', kind: 'PodDisruptionBudget', verbs: STATUS_VERBS }],
    tracksGeneration: true,
  }),
];

/**
 * Served by the HTTP server itself (a review is answered, never stored), so it is in discovery but in no store:
 * kubectl auth can-i finds it there before it POSTs.
 */
export const SELF_SUBJECT_ACCESS_REVIEWS: ResourceType = resource({
  group: 'authorization.k8s.io', version: 'v1', kind: 'SelfSubjectAccessReview', plural: 'selfsubjectaccessreviews', namespaced: false,
  verbs: ['create'],
});

/** Looks resources up by the names clients use: plural (`nodes`), `plural.group` (`jobs.batch`), or API path. */
export class ResourceRegistry {
  readonly all: readonly ResourceType[];
  #byPlural = new Map<string, ResourceType>();

  constructor(types: readonly ResourceType[]) {
    this.all = types;
    for (const type of types) {
      this.#byPlural.set(type.plural, type);
      this.#byPlural.set(`${type.plural}.${type.group}`, type);
    }
  }

  /** Throws for a name the server does not serve: a programming error in the caller, not a client mistake. */
  resolve(name: string): ResourceType {
    const type = this.#byPlural.get(name);
    if (!type) throw new Error(`the sandbox API server does not serve a resource named "${name}"`);
    return type;
  }

  /** The resource at /api/v1/<plural> or /apis/<group>/<version>/<plural>, if served. */
  find(group: string, version: string, plural: string): ResourceType | undefined {
    const type = this.#byPlural.get(group === '' ? plural : `${plural}.${group}`);
    return type && type.group === group && type.version === version ? type : undefined;
  }

  /** API groups other than core, in the order their resources were registered, with their versions. */
  groups(): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const type of this.all) {
      if (type.group === '') continue;
      const versions = groups.get(type.group) ?? [];
      if (!versions.includes(type.version)) versions.push(type.version);
      groups.set(type.group, versions);
    }
    return groups;
  }

  inGroupVersion(group: string, version: string): ResourceType[] {
    return this.all.filter((t) => t.group === group && t.version === version);
  }
}
