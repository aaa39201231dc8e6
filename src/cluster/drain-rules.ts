/**
 * What `kubectl drain` refuses before it evicts anything, shared by the Kubernetes adapter and the simulator so both
 * refuse the same pods with the same words: a pod that no controller would bring back (a bare pod) unless the plan
 * says `drain.force`, and a pod whose emptyDir data would be lost unless it says `drain.deleteEmptyDirData`
 * (k8s.io/kubectl/pkg/drain/filters.go: unreplicatedFilter, localStorageFilter). kubectl then evicts nothing at all.
 */
import type { BlockedEviction } from '../engine/effects.ts';

export interface DrainFlags {
  /** Evict pods that declare no controller (`kubectl drain --force`). */
  force?: boolean;
  /** Evict pods with emptyDir volumes, losing their data (`kubectl drain --delete-emptydir-data`). */
  deleteEmptyDirData?: boolean;
}

export interface DrainCandidate {
  namespace: string;
  name: string;
  /** Some ownerReference is a controller. */
  controlled: boolean;
  /** Some volume is an emptyDir. */
  emptyDir: boolean;
}

export const NO_CONTROLLER = 'cannot delete Pods that declare no controller (set drain.force in the plan to override)';
export const LOCAL_STORAGE = 'cannot delete Pods with local storage (set drain.deleteEmptyDirData in the plan to override)';

/** The pods the drain must refuse to start over, each with kubectl's reason; empty when the drain may go ahead. */
export function drainRefusals(pods: readonly DrainCandidate[], flags: DrainFlags): BlockedEviction[] {
  const refused: BlockedEviction[] = [];
  for (const pod of pods) {
    const reasons: string[] = [];
    if (!pod.controlled && !flags.force) reasons.push(NO_CONTROLLER);
    if (pod.emptyDir && !flags.deleteEmptyDirData) reasons.push(LOCAL_STORAGE);
    if (reasons.length > 0) refused.push({ pod: pod.name, namespace: pod.namespace, reason: reasons.join('; ') });
  }
  return refused;
}
