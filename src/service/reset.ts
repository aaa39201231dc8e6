/**
 * `reset`: makes nodes eligible again by removing patchpilot's marks, the seed's "Resetting the Patch State": the task
 * label (the version hash a node was patched to) and patchpilot's status annotations. Two steps, so the CLI and the
 * bot can show what would change before anything does: `planReset` reads the nodes, `reset` applies a plan only when
 * told `confirmed: true`. Kept on purpose:
 * - a `disabled` task label (an operator's opt-out) unless `includeDisabled`;
 * - `patchpilot.io/cordoned-by`, which proves whose cordon a cordoned node carries (unstick and doctor deal with it).
 */
import { ANNOTATIONS } from '../engine/metadata.ts';
import { DISABLED } from '../engine/selection.ts';
import { leaseName } from './orchestrator.ts';
import type { ClusterTarget } from './targets.ts';

/** The annotations a reset removes: every patchpilot annotation but the cordon's proof of ownership. */
export const RESET_ANNOTATIONS: readonly string[] = Object.values(ANNOTATIONS).filter((a) => a !== ANNOTATIONS.cordonedBy);

/** A reset stopped by its operator between two nodes (ResetOptions.interrupt). */
export class ResetInterrupted extends Error {
  override readonly name = 'ResetInterrupted';
}

export class ResetError extends Error {
  override readonly name = 'ResetError';
  readonly hint: string;

  constructor(message: string, hint: string) {
    super(message);
    this.hint = hint;
  }
}

export interface ResetNode {
  name: string;
  /** The task label's value that will be removed, or null when the label stays (absent, or `disabled` and kept). */
  label: string | null;
  annotations: string[];
}

export interface ResetPlan {
  cluster: string;
  labelKey: string;
  includeDisabled: boolean;
  /** Nodes that carry something to remove. */
  nodes: ResetNode[];
  /** Nodes whose `disabled` opt-out is kept. */
  keptDisabled: string[];
  /** Nodes looked at that carry nothing to remove. */
  untouched: string[];
}

export interface PlanResetOptions {
  /** Only these nodes (every name must exist); default every node. */
  nodes?: readonly string[];
  includeDisabled?: boolean;
  signal?: AbortSignal;
}

export async function planReset(target: ClusterTarget, options: PlanResetOptions = {}): Promise<ResetPlan> {
  const labelKey = target.plan.labelKey;
  const includeDisabled = options.includeDisabled ?? false;
  const all = await target.cluster.listNodes(options.signal);
  let chosen = all;
  if (options.nodes !== undefined) {
    const names = [...new Set(options.nodes.map((n) => n.trim()).filter(Boolean))];
    if (names.length === 0) throw new ResetError('no node named: --nodes is empty', 'name nodes as --nodes a,b, or leave --nodes out for every node');
    const known = new Set(all.map((n) => n.name));
    const unknown = names.filter((n) => !known.has(n));
    if (unknown.length > 0) {
      throw new ResetError(`no node named ${unknown.join(', ')} in cluster ${target.name}; nothing was changed`, 'check the names with kubectl get nodes');
    }
    const wanted = new Set(names);
    chosen = all.filter((n) => wanted.has(n.name));
  }
  const nodes: ResetNode[] = [];
  const keptDisabled: string[] = [];
  const untouched: string[] = [];
  for (const node of chosen) {
    const value = node.labels[labelKey];
    const disabled = value === DISABLED;
    if (disabled && !includeDisabled) keptDisabled.push(node.name);
    const label = value !== undefined && (!disabled || includeDisabled) ? value : null;
    const annotations = RESET_ANNOTATIONS.filter((a) => a in node.annotations);
    if (label === null && annotations.length === 0) {
      if (!(disabled && !includeDisabled)) untouched.push(node.name);
      continue;
    }
    nodes.push({ name: node.name, label, annotations });
  }
  return { cluster: target.name, labelKey, includeDisabled, nodes, keptDisabled, untouched };
}

export interface ResetOptions {
  by: string;
  /** Must be true: a reset makes every node in the plan eligible for the next run. */
  confirmed: true;
  signal?: AbortSignal;
  /**
   * An operator's stop (Ctrl-C), looked at before each node: the node in progress is finished first, its patch and
   * its audit record, so that no node is reset without a record; then the reset ends with ResetInterrupted.
   */
  interrupt?: AbortSignal;
  /**
   * Told of each node as it is done (reset and audited, or found already clear), so that a caller can say which nodes
   * were reset when a later one fails (the API server going away part-way). 'reset, not audited': its patch went
   * through and then its audit record could not be written (the error that follows says why).
   */
  onNode?: (node: string, outcome: 'reset' | 'reset, not audited' | 'already clear') => void;
}

export interface ResetResult {
  cluster: string;
  changed: string[];
  /** Nodes of the plan already without what it would remove (someone else reset them meanwhile). */
  unchanged: string[];
}

export async function reset(target: ClusterTarget, plan: ResetPlan, options: ResetOptions): Promise<ResetResult> {
  if ((options as { confirmed?: unknown }).confirmed !== true) {
    throw new ResetError(`reset of ${plan.nodes.length} node(s) in cluster ${plan.cluster} not confirmed; nothing was changed`, 'show the plan, then call again with confirmed: true (CLI: --yes)');
  }
  if (typeof options.by !== 'string' || options.by.trim() === '') throw new TypeError('reset needs `by`: who asks (for the audit log)');
  if (plan.cluster !== target.name || plan.labelKey !== target.plan.labelKey) {
    throw new ResetError(`this reset plan is for cluster ${plan.cluster} (label ${plan.labelKey}), not ${target.name} (label ${target.plan.labelKey})`, 'plan the reset again for this cluster');
  }
  // Every node changed is audited after its patch: a database that cannot take the record refuses before the first.
  target.store?.assertWritable();
  // Removing marks under a running run would make it patch nodes twice or lose their state: refuse while one is on.
  const active = target.store?.listRuns({ cluster: target.name, active: true }) ?? [];
  const lease = await target.cluster.readLease(leaseName(target.name), options.signal);
  const now = target.clock.now();
  if (lease?.holder && lease.expiresAt !== null && lease.expiresAt > now) {
    throw new ResetError(`an orchestrator (${lease.holder}) is working on cluster ${target.name}; nothing was changed`, 'reset after its run ends (patchpilot doctor shows it)');
  }
  if (active[0]) throw new ResetError(`run ${active[0].id} of cluster ${target.name} is ${active[0].status}; nothing was changed`, 'let it finish or cancel it (patchpilot unstick cancels a scheduled run nobody drives)');
  const current = new Map((await target.cluster.listNodes(options.signal)).map((n) => [n.name, n]));
  const gone = plan.nodes.filter((n) => !current.has(n.name)).map((n) => n.name);
  if (gone.length > 0) throw new ResetError(`node(s) ${gone.join(', ')} no longer exist in cluster ${target.name}; nothing was changed`, 'plan the reset again');

  const changed: string[] = [];
  const unchanged: string[] = [];
  for (const node of plan.nodes) {
    if (options.interrupt?.aborted === true) throw new ResetInterrupted(`the reset was interrupted before ${node.name}`);
    const labels: Record<string, null> = node.label !== null ? { [plan.labelKey]: null } : {};
    const annotations = Object.fromEntries(node.annotations.map((a) => [a, null]));
    const before = current.get(node.name)!;
    const present = (node.label !== null && plan.labelKey in before.labels) || node.annotations.some((a) => a in before.annotations);
    if (!present) {
      unchanged.push(node.name);
      options.onNode?.(node.name, 'already clear');
      continue;
    }
    await target.cluster.patchNodeMetadata(
      node.name,
      // An opt-out set since the plan was made is kept (the adapter's `test` of the label's value).
      { labels, annotations, ...(plan.includeDisabled ? {} : { keepLabelValues: { [plan.labelKey]: DISABLED } }) },
      options.signal,
    );
    changed.push(node.name);
    try {
      target.store?.appendAudit({
        at: target.clock.now(),
        actor: options.by,
        action: 'node.reset',
        node: node.name,
        details: { cluster: target.name, label: node.label === null ? null : `${plan.labelKey}=${node.label}`, annotations: node.annotations },
      });
    } catch (err) {
      options.onNode?.(node.name, 'reset, not audited');
      throw err;
    }
    options.onNode?.(node.name, 'reset');
  }
  return { cluster: target.name, changed, unchanged };
}

/** What a reset plan would remove, one line per node (CLI and bot). */
export function formatResetPlan(plan: ResetPlan): string {
  const lines: string[] = [];
  if (plan.nodes.length === 0) lines.push(`nothing to reset in cluster ${plan.cluster}: no node carries ${plan.labelKey} or patchpilot's annotations`);
  else {
    lines.push(`reset would remove, in cluster ${plan.cluster}:`);
    for (const node of plan.nodes) {
      const what = [...(node.label !== null ? [`label ${plan.labelKey}=${node.label}`] : []), ...(node.annotations.length > 0 ? [`${node.annotations.length} annotation(s) ${node.annotations.join(', ')}`] : [])];
      lines.push(`  ${node.name}: ${what.join('; ')}`);
    }
  }
  if (plan.keptDisabled.length > 0) lines.push(`kept: the ${DISABLED} opt-out of ${plan.keptDisabled.join(', ')} (add --include-disabled to remove it)`);
  return lines.join('\n');
}
