/** The Kubernetes adapter: KubeCluster (the ClusterPort on a real API server) and what its callers need with it. */
export { KubeCluster, type KubeClusterOptions } from './cluster.ts';
export { KubeApiError, KubeForbiddenError, KubeNamespaceMissingError, KubeNotAnApiServerError, KubeUnreachableError, type ApiRequest } from './errors.ts';
export { REQUIRED_PERMISSIONS, describePermission, type MissingPermission, type Permission } from './permissions.ts';
export type { Activity } from './requests.ts';
export type { NodeWatchEvent } from './watch-nodes.ts';
