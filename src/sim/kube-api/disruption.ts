/**
 * PodDisruptionBudgets as Kubernetes enforces them: the disruption controller's status (computed from the pods, after
 * every change of a pod or a budget in the namespace) and the eviction subresource's verdict (pkg/registry/core/pod/
 * storage/eviction.go): 500 when more than one budget selects the pod, 429 while the budget's status has not caught
 * up with its generation or allows no disruption, nothing to check for a pod that is not running or already going.
 *
 * Simplified where patchpilot does not look: the expected pod count is the number of selected pods (upstream asks
 * the pods' controllers for their scale when a percentage or maxUnavailable is used; in the sandbox every controller
 * has exactly its pods), and an eviction is not recorded in status.disruptedPods (the pod is marked for deletion in
 * the same step, which already takes it out of currentHealthy).
 */
import { isPlainObject, type KubeObject } from './objects.ts';
import { labelSelectorFromSpec, matchesLabels } from './selectors.ts';
import { internalError, tooManyRequests, type StatusError } from './status.ts';

/** What upstream's eviction answers, word for word. */
export const EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget.";
export const SEVERAL_BUDGETS = 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.';

type Json = Record<string, unknown>;

/** The store operations the controller needs (a KubeStore). */
export interface DisruptionStore {
  list(resource: string, options: { namespace?: string }): { items: KubeObject[] };
  modify(resource: string, ref: { namespace?: string; name: string }, change: (draft: KubeObject) => void, options: { internal: true }): KubeObject;
}

function selects(pdb: KubeObject, pod: KubeObject): boolean {
  const spec = isPlainObject(pdb.spec) ? pdb.spec : {};
  // policy/v1: an empty selector selects every pod in the namespace; a missing one selects none.
  if (!isPlainObject(spec.selector)) return false;
  return matchesLabels(labelSelectorFromSpec(spec.selector as Parameters<typeof labelSelectorFromSpec>[0]), pod.metadata.labels);
}

function healthy(pod: KubeObject): boolean {
  if (pod.metadata.deletionTimestamp !== undefined) return false;
  const status = isPlainObject(pod.status) ? pod.status : {};
  const conditions = Array.isArray(status.conditions) ? (status.conditions as Json[]) : [];
  return conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** intstr.GetScaledValueFromIntOrPercent with rounding up, as the controller calls it. */
function scaled(value: unknown, total: number): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+%$/.test(value)) return Math.ceil((Number(value.slice(0, -1)) * total) / 100);
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number(value);
  return 0;
}

/** The status the disruption controller writes for the budget, given the pods of its namespace. */
export function budgetStatus(pdb: KubeObject, pods: readonly KubeObject[]): Json {
  const spec = isPlainObject(pdb.spec) ? pdb.spec : {};
  const selected = pods.filter((pod) => selects(pdb, pod));
  const expectedPods = selected.length;
  const currentHealthy = selected.filter(healthy).length;
  let desiredHealthy = 0;
  if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== null) desiredHealthy = Math.max(0, expectedPods - scaled(spec.maxUnavailable, expectedPods));
  else if (spec.minAvailable !== undefined && spec.minAvailable !== null) desiredHealthy = scaled(spec.minAvailable, expectedPods);
  const disruptionsAllowed = Math.max(0, currentHealthy - desiredHealthy);
  const previous = isPlainObject(pdb.status) ? pdb.status : {};
  const status: Json = {
    observedGeneration: pdb.metadata.generation ?? 1,
    disruptionsAllowed,
    currentHealthy,
    desiredHealthy,
    expectedPods,
  };
  const conditions = [
    {
      type: 'DisruptionAllowed',
      status: disruptionsAllowed > 0 ? 'True' : 'False',
      reason: disruptionsAllowed > 0 ? 'SufficientPods' : 'InsufficientPods',
      message: '',
      observedGeneration: pdb.metadata.generation ?? 1,
      lastTransitionTime: pdb.metadata.creationTimestamp,
    },
  ];
  // Keep the transition time of a condition that did not change, as the controller does.
  const before = Array.isArray(previous.conditions) ? (previous.conditions as Json[])[0] : undefined;
  if (before && before.status === conditions[0]!.status && typeof before.lastTransitionTime === 'string') conditions[0]!.lastTransitionTime = before.lastTransitionTime;
  status.conditions = conditions;
  return status;
}

/** Recomputes every budget of the namespace, writing only those whose status changed. */
export function syncBudgets(store: DisruptionStore, namespace: string, now: () => string): void {
  const budgets = store.list('poddisruptionbudgets', { namespace }).items;
  if (budgets.length === 0) return;
  const pods = store.list('pods', { namespace }).items;
  for (const pdb of budgets) {
    const status = budgetStatus(pdb, pods);
    const conditions = status.conditions as Json[];
    if (conditions[0]!.lastTransitionTime === undefined) conditions[0]!.lastTransitionTime = now();
    store.modify('poddisruptionbudgets', { namespace, name: pdb.metadata.name! }, (draft) => void (draft.status = status), { internal: true });
  }
}

/**
 * The eviction subresource's verdict for a pod, before anything is deleted: a StatusError to answer with, or the
 * budget to charge (undefined: no budget applies).
 */
export function evictionVerdict(pod: KubeObject, budgets: readonly KubeObject[]): StatusError | KubeObject | undefined {
  const status = isPlainObject(pod.status) ? pod.status : {};
  // canIgnorePDB: a finished, pending or already terminating pod costs no disruption.
  if (status.phase === 'Succeeded' || status.phase === 'Failed' || status.phase === 'Pending' || pod.metadata.deletionTimestamp !== undefined) return undefined;
  const matching = budgets.filter((pdb) => selects(pdb, pod));
  if (matching.length === 0) return undefined;
  if (matching.length > 1) return internalError(SEVERAL_BUDGETS);
  const pdb = matching[0]!;
  const pdbStatus = isPlainObject(pdb.status) ? pdb.status : {};
  const observed = typeof pdbStatus.observedGeneration === 'number' ? pdbStatus.observedGeneration : 0;
  if (observed < (pdb.metadata.generation ?? 1)) {
    return tooManyRequests(EVICTION_REFUSED, 0, [{ type: 'DisruptionBudget', message: `The disruption budget ${pdb.metadata.name} is still being processed by the server.` }]);
  }
  const allowed = typeof pdbStatus.disruptionsAllowed === 'number' ? pdbStatus.disruptionsAllowed : 0;
  if (allowed <= 0) {
    const message = `The disruption budget ${pdb.metadata.name} needs ${String(pdbStatus.desiredHealthy ?? 0)} healthy pods and has ${String(pdbStatus.currentHealthy ?? 0)} currently`;
    return tooManyRequests(EVICTION_REFUSED, 0, [{ type: 'DisruptionBudget', message }]);
  }
  return pdb;
}
