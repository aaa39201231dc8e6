/**
 * A generic, in-memory Kubernetes API server: the core of `patchpilot sandbox`. `KubeStore` is the in-process API
 * and the hook registry the simulation binds to; `startKubeApiServer` serves a store over HTTP for kubectl and
 * client-node; `kubeconfig` writes the config that reaches it.
 */
export { KubeStore } from './store.ts';
export type { KubeStoreOptions, WriteOptions, StoreDeleteOptions, DeleteResult, ListOptions, ListResult, PodLogOptions, EventRecord } from './store.ts';
export { startKubeApiServer } from './server.ts';
export { ApiChaos, type ChaosOptions } from './chaos.ts';
export type { KubeApiServer, KubeApiServerOptions } from './server.ts';
export { kubeconfig } from './kubeconfig.ts';
export { KubeHooks, ADMIN_USER } from './hooks.ts';
export type {
  AdmissionHook,
  AdmissionRequest,
  ChangeEvent,
  ChangeListener,
  DeleteOptions,
  EvictionHandler,
  EvictionRequest,
  LogLine,
  PodLogHandler,
  PodLogRequest,
  RequestHook,
  RequestInfo,
  Unsubscribe,
  UserInfo,
} from './hooks.ts';
export type { PolicyRule, TokenGrant } from './auth.ts';
export type { KubeObject, ObjectMeta, ObjectRef, OwnerReference } from './objects.ts';
export { rfc3339 } from './objects.ts';
export { BUILTIN_RESOURCES, type ResourceType, type SubresourceType, type Verb, type PropagationPolicy } from './resources.ts';
export { labelSelectorFromSpec, matchesLabels, parseLabelSelector, type LabelSelector } from './selectors.ts';
export type { PatchType } from './patch.ts';
export type { WatchEvent, WatchHandle, WatchOptions } from './watch.ts';
export {
  StatusError,
  alreadyExists,
  badRequest,
  conflict,
  forbidden,
  internalError,
  invalid,
  invalidField,
  notFound,
  requiredField,
  tooManyRequests,
  unauthorized,
  type Status,
  type StatusCause,
  type StatusDetails,
  type StatusReason,
} from './status.ts';
