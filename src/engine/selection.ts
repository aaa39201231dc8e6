/**
 * Node selection, as Palette and system-upgrade-controller do it (seed: "Node Selection Logic"): a node is eligible when
 * it carries the Linux OS label and its task label is neither the current hash nor "disabled". The order is
 * deterministic and safe: control-plane nodes first (the fleet never has two of them in flight), then workers spread
 * round-robin across zones so that concurrency above 1 never takes a whole zone down at once.
 */

import type { Plan } from './plan.ts';

export const OS_LABEL = 'kubernetes.io/os';
export const ZONE_LABEL = 'topology.kubernetes.io/zone';
export const CONTROL_PLANE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'] as const;
export const DISABLED = 'disabled';

export interface NodeView {
  name: string;
  labels: Readonly<Record<string, string>>;
  /**
   * Cordoned by a patchpilot run under an older lease generation: a holder that lost the cluster left it mid-patch.
   * Such nodes go first, so that finishing them takes the run's first slots and the cordons never exceed concurrency,
   * and they are selected even when they already carry the hash (their leftover cordon must still be lifted).
   */
  unfinished?: boolean;
}

export type Role = 'control-plane' | 'worker';

export interface NodeTarget {
  name: string;
  role: Role;
  zone: string;
}

export type ExclusionReason = 'not-linux' | 'already-patched' | 'disabled' | 'selector-mismatch' | 'not-requested';

export interface Exclusion {
  name: string;
  reason: ExclusionReason;
  detail: string;
}

export interface SelectionCriteria {
  labelKey: string;
  hash: string;
  nodeSelector?: Readonly<Record<string, string>>;
  /** An explicit list of node names; nodes outside it are excluded, names that match no node are reported. */
  nodes?: readonly string[] | undefined;
}

export interface Selection {
  selected: NodeTarget[];
  excluded: Exclusion[];
  /** Names from `criteria.nodes` that are not in the cluster. */
  unknown: string[];
}

export function roleOf(node: NodeView): Role {
  return CONTROL_PLANE_LABELS.some((key) => key in node.labels) ? 'control-plane' : 'worker';
}

export function zoneOf(node: NodeView): string {
  return node.labels[ZONE_LABEL] ?? '';
}

const byName = new Intl.Collator('en', { numeric: true }).compare;

function exclusionOf(node: NodeView, criteria: SelectionCriteria, requested: ReadonlySet<string> | null): Exclusion | null {
  const { name, labels } = node;
  if (requested && !requested.has(name)) return { name, reason: 'not-requested', detail: 'not in the requested node list' };
  if (labels[OS_LABEL] !== 'linux') {
    const os = labels[OS_LABEL];
    return { name, reason: 'not-linux', detail: os ? `${OS_LABEL}=${os}` : `no ${OS_LABEL} label` };
  }
  for (const [key, value] of Object.entries(criteria.nodeSelector ?? {})) {
    if (labels[key] !== value) return { name, reason: 'selector-mismatch', detail: `needs ${key}=${value}` };
  }
  const task = labels[criteria.labelKey];
  if (task === DISABLED) return { name, reason: 'disabled', detail: `${criteria.labelKey}=${DISABLED}` };
  // A node patched under this hash and still cordoned by a holder that lost the cluster is selected all the same:
  // the run adopts the cordon and lifts it (the node machine skips the patch).
  if (task === criteria.hash && !node.unfinished) return { name, reason: 'already-patched', detail: `${criteria.labelKey}=${task} (current hash)` };
  return null;
}

/** Interleaves groups: a1 b1 c1 a2 b2 c2 ... so consecutive nodes sit in different zones. */
function roundRobin<T>(groups: T[][]): T[] {
  const out: T[] = [];
  for (let i = 0; groups.some((g) => i < g.length); i++) {
    for (const group of groups) if (i < group.length) out.push(group[i]!);
  }
  return out;
}

function orderWithinRole(targets: NodeTarget[]): NodeTarget[] {
  const zones = new Map<string, NodeTarget[]>();
  for (const t of [...targets].sort((a, b) => byName(a.name, b.name))) {
    const list = zones.get(t.zone) ?? [];
    list.push(t);
    zones.set(t.zone, list);
  }
  const groups = [...zones.entries()].sort(([a], [b]) => byName(a, b)).map(([, list]) => list);
  return roundRobin(groups);
}

export function selectNodes(nodes: readonly NodeView[], criteria: SelectionCriteria): Selection {
  const requested = criteria.nodes ? new Set(criteria.nodes) : null;
  const names = new Set(nodes.map((n) => n.name));
  const excluded: Exclusion[] = [];
  const eligible: NodeTarget[] = [];
  for (const node of nodes) {
    const exclusion = exclusionOf(node, criteria, requested);
    if (exclusion) excluded.push(exclusion);
    else eligible.push({ name: node.name, role: roleOf(node), zone: zoneOf(node) });
  }
  const ordered = [
    ...orderWithinRole(eligible.filter((t) => t.role === 'control-plane')),
    ...orderWithinRole(eligible.filter((t) => t.role === 'worker')),
  ];
  const unfinished = new Set(nodes.filter((n) => n.unfinished).map((n) => n.name));
  const selected = [...ordered.filter((t) => unfinished.has(t.name)), ...ordered.filter((t) => !unfinished.has(t.name))];
  excluded.sort((a, b) => byName(a.name, b.name));
  const unknown = (criteria.nodes ?? []).filter((n) => !names.has(n));
  return { selected, excluded, unknown };
}

/**
 * The nodes a run of `plan` patches under `hash`, in order: what the fleet machine selects, and what a preview of the
 * run (the approval card, `run --dry-run`) shows, from the same nodes.
 */
export function selectForRun(plan: Pick<Plan, 'labelKey' | 'nodeSelector' | 'nodes'>, hash: string, nodes: readonly NodeView[]): Selection {
  return selectNodes(nodes, { labelKey: plan.labelKey, hash, nodeSelector: plan.nodeSelector, nodes: plan.nodes });
}

/** True when the cluster has no Linux node at all matching the selector: Palette's silent "no matching nodes". */
export function noMatchingNodes(selection: Selection): boolean {
  return selection.selected.length === 0 && !selection.excluded.some((e) => e.reason === 'already-patched' || e.reason === 'disabled');
}
