/**
 * Exactly what the adapter asks of the API server, as RBAC sees it. deploy/clusterrole.yaml grants this and nothing
 * more (test/kube/rbac.test.ts compares both with the requests a full set of operations really sends), and
 * `patchpilot run` checks it up front with SelfSubjectAccessReviews, as `kubectl auth can-i` does, so that a missing
 * verb is reported before anything is cordoned rather than half-way through a node.
 */
import type { AuthorizationV1Api } from '@kubernetes/client-node';
import type { KubeRequests } from './requests.ts';

export interface Permission {
  group: string;
  resource: string;
  verbs: readonly string[];
  /** Namespaced resources are only needed in patchpilot's namespace... */
  namespaced: boolean;
  /** ...unless upstream fixes the namespace (Events about Nodes live in `default`). */
  namespace?: string;
}

export const REQUIRED_PERMISSIONS: readonly Permission[] = [
  { group: '', resource: 'nodes', verbs: ['get', 'list', 'watch', 'patch'], namespaced: false },
  // Draining lists and reads pods on every namespace; the agent's pods are read in patchpilot's.
  { group: '', resource: 'pods', verbs: ['get', 'list'], namespaced: false },
  { group: '', resource: 'pods/eviction', verbs: ['create'], namespaced: false },
  { group: '', resource: 'pods/log', verbs: ['get'], namespaced: true },
  { group: '', resource: 'configmaps', verbs: ['get', 'create', 'update'], namespaced: true },
  // Events about Nodes must live in `default` (see events.ts); the ClusterRole's binding grants it there.
  { group: '', resource: 'events', verbs: ['create'], namespaced: true, namespace: 'default' },
  // doctor lists patchpilot's Jobs to find failed and still running ones.
  { group: 'batch', resource: 'jobs', verbs: ['get', 'list', 'create', 'delete'], namespaced: true },
  { group: 'coordination.k8s.io', resource: 'leases', verbs: ['get', 'create', 'update'], namespaced: true },
  // doctor checks that the orchestrator's Deployment (deploy/deployment.yaml) is Ready.
  { group: 'apps', resource: 'deployments', verbs: ['get'], namespaced: true },
  // doctor reads Palette's own patching: its SpectroSystemTasks in os-patch and its agent's cluster-<uid> namespaces.
  { group: 'cluster.spectrocloud.com', resource: 'spectrosystemtasks', verbs: ['list'], namespaced: true },
  { group: '', resource: 'namespaces', verbs: ['list'], namespaced: false },
];

export interface MissingPermission {
  verb: string;
  group: string;
  resource: string;
  namespace: string | null;
  reason: string;
}

export function describePermission(p: { verb: string; group: string; resource: string; namespace: string | null }): string {
  return `${p.verb} ${p.resource}${p.group ? ` (API group ${p.group})` : ''}${p.namespace ? ` in namespace ${p.namespace}` : ''}`;
}

/**
 * The permissions in `wanted` the current credentials lack. SelfSubjectAccessReview is granted to every
 * authenticated user (the system:basic-user ClusterRole), so it needs no rule of ours.
 */
export async function missingPermissions(
  authorization: AuthorizationV1Api,
  requests: KubeRequests,
  namespace: string,
  wanted: readonly Permission[] = REQUIRED_PERMISSIONS,
  signal?: AbortSignal,
): Promise<MissingPermission[]> {
  const checks = wanted.flatMap((p) => p.verbs.map((verb) => ({ ...p, verb })));
  const answers = await Promise.all(
    checks.map(async (check) => {
      const [resource = '', subresource] = check.resource.split('/');
      const ns = check.namespaced ? (check.namespace ?? namespace) : null;
      const review = await requests.send(
        { verb: 'create', resource: 'selfsubjectaccessreviews', group: 'authorization.k8s.io' },
        (o) =>
          authorization.createSelfSubjectAccessReview(
            {
              body: {
                apiVersion: 'authorization.k8s.io/v1',
                kind: 'SelfSubjectAccessReview',
                spec: {
                  resourceAttributes: {
                    verb: check.verb,
                    group: check.group,
                    resource,
                    ...(subresource ? { subresource } : {}),
                    ...(ns ? { namespace: ns } : {}),
                  },
                },
              },
            },
            o,
          ),
        { signal },
      );
      const allowed = review.status?.allowed === true;
      return allowed ? null : { verb: check.verb, group: check.group, resource: check.resource, namespace: ns, reason: review.status?.reason ?? '' };
    }),
  );
  return answers.filter((a): a is MissingPermission => a !== null);
}
