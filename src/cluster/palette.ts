/**
 * Palette's own OS-patching objects on a target cluster, as the seed's monitoring table names them, and what `doctor`
 * reads of them (DiagnosticsPort.paletteArtifacts). Nothing here was checked against a real Palette:
 * - from Palette's published documents: the SpectroSystemTask kind in `cluster.spectrocloud.com/v1alpha1` and its spec
 *   fields (librarium, agent-mode "Configure Regularly Scheduled OS Upgrades"); the `cluster-<uid>` namespace with the
 *   `cluster-management-agent` and `palette-controller-manager` pods (librarium, "Palette Specific Namespaces and Pods");
 *   the status fields, which the SpectroSystemTask shares with system-upgrade-controller's Plan it derives from;
 * - from the seed's guide only (a public guide, not Spectro Cloud's): the `os-patch` namespace, the task and Job names
 *   (`apply-on-demand-os-patch-on-<node>`), the `app.kubernetes.io/name=crony` label, the node label
 *   `task.cluster.spectrocloud.com/on-demand-os-patch=<hash>`, and that node annotations matching `spectronodetask`
 *   carry a status, a time and an error message;
 * - assumed here: the annotations' exact keys (below) and values.
 */

export const PALETTE_GROUP = 'cluster.spectrocloud.com';
export const PALETTE_VERSION = 'v1alpha1';
export const SPECTRO_SYSTEM_TASKS = 'spectrosystemtasks';
/** The seed's namespace for the managed on-demand patch (agent mode uses `spectro-task-<hash>` instead). */
export const PALETTE_PATCH_NAMESPACE = 'os-patch';
export const PALETTE_ON_DEMAND_TASK = 'on-demand-os-patch';
export const PALETTE_TASK_LABEL = `task.${PALETTE_GROUP}/${PALETTE_ON_DEMAND_TASK}`;
export const CRONY_SELECTOR = 'app.kubernetes.io/name=crony';
/** Palette's agent namespace is `cluster-<uid>`; its uids are 24 hex digits. */
export const PALETTE_AGENT_NAMESPACE = /^cluster-[0-9a-f]{24}$/;
export const PALETTE_AGENT_DEPLOYMENTS = ['cluster-management-agent', 'palette-controller-manager'] as const;

/** An assumption: the seed says only that annotations matching `spectronodetask` hold a status, a time and an error. */
export const NODE_TASK_ANNOTATIONS = {
  status: `spectronodetask.${PALETTE_GROUP}/${PALETTE_ON_DEMAND_TASK}.status`,
  time: `spectronodetask.${PALETTE_GROUP}/${PALETTE_ON_DEMAND_TASK}.time`,
  message: `spectronodetask.${PALETTE_GROUP}/${PALETTE_ON_DEMAND_TASK}.message`,
} as const;

export function paletteJobName(node: string): string {
  return `apply-${PALETTE_ON_DEMAND_TASK}-on-${node}`;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface TaskSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface TaskCondition {
  type: string;
  status: string;
  reason: string | null;
  message: string | null;
  lastUpdateTime: number | null;
}

/** A SpectroSystemTask as doctor reads it. */
export interface PaletteTask {
  namespace: string;
  name: string;
  createdAt: number | null;
  version: string | null;
  concurrency: number | null;
  nodeSelector: TaskSelector | null;
  latestVersion: string | null;
  latestHash: string | null;
  applying: string[];
  conditions: TaskCondition[];
}

export interface PalettePod {
  namespace: string;
  name: string;
  node: string | null;
  phase: string;
  ready: boolean;
  restarts: number;
  /** The container's waiting reason (CrashLoopBackOff, ImagePullBackOff) or terminated reason. */
  reason: string | null;
  startedAt: number | null;
}

/** One of Palette's crony Jobs, with the last lines of its newest pod's log. */
export interface PaletteJob {
  name: string;
  node: string | null;
  status: 'running' | 'succeeded' | 'failed' | 'pending';
  startedAt: number | null;
  finishedAt: number | null;
  failure: string | null;
  pod: PalettePod | null;
  logTail: string[];
}

export type PaletteArtifacts =
  | { managed: false; why: string }
  | {
      managed: true;
      namespace: string;
      tasks: PaletteTask[];
      jobs: PaletteJob[];
      /** Pods of Palette's agent in `cluster-<uid>` namespaces (empty when none is found). */
      agentPods: PalettePod[];
      agentNamespaces: string[];
    };

/** Whether a node's labels satisfy a task's nodeSelector (metav1.LabelSelector semantics). */
export function selectorMatches(selector: TaskSelector | null, labels: Record<string, string>): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const r of selector.matchExpressions ?? []) {
    const value = labels[r.key];
    const values = r.values ?? [];
    if (r.operator === 'In' && (value === undefined || !values.includes(value))) return false;
    if (r.operator === 'NotIn' && value !== undefined && values.includes(value)) return false;
    if (r.operator === 'Exists' && value === undefined) return false;
    if (r.operator === 'DoesNotExist' && value !== undefined) return false;
  }
  return true;
}

export function describeSelector(selector: TaskSelector | null): string {
  if (!selector) return '(every node)';
  const parts = [
    ...Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`),
    ...(selector.matchExpressions ?? []).map((r) =>
      r.operator === 'Exists' ? r.key : r.operator === 'DoesNotExist' ? `!${r.key}` : `${r.key} ${r.operator.toLowerCase()} (${(r.values ?? []).join(',')})`,
    ),
  ];
  return parts.join(', ') || '(every node)';
}
