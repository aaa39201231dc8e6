/** `patchpilot runs` and `patchpilot audit`: what happened, from the store. */
import type { Store } from '../store/store.ts';
import type { AuditRow } from '../store/types.ts';
import { checkAnchor, type AuditAnchor } from '../store/audit.ts';
import { duration, isoMinute, table } from './format.ts';
import { UserError } from './user-error.ts';

export function listRuns(store: Store, options: { cluster?: string; active?: boolean; limit: number }): string {
  const runs = store.listRuns(options);
  if (runs.length === 0) return `no runs in ${store.path}${options.cluster ? ` for cluster ${options.cluster}` : ''}`;
  return table(
    ['run', 'cluster', 'status', 'outcome', 'requested by', 'created', 'took'],
    runs.map((r) => [
      r.id,
      r.cluster,
      r.status,
      r.outcome ?? '',
      r.requestedBy,
      isoMinute(r.createdAt),
      r.finishedAt ? duration(r.finishedAt - r.createdAt) : '',
    ]),
  );
}

export function showRun(store: Store, runId: string): string {
  const run = store.requireRun(runId);
  const nodes = store.getNodeRuns(runId);
  const head = [
    `run ${run.id} on cluster ${run.cluster}, requested by ${run.requestedBy} at ${isoMinute(run.createdAt)}`,
    `status ${run.status}${run.outcome ? `, outcome ${run.outcome}` : ''}${run.reason ? ` - ${run.reason}` : ''}`,
    `version hash ${run.hash}`,
  ];
  if (nodes.length === 0) return head.join('\n');
  const current = run.status === 'done' ? new Map<string, string>() : currentSteps(store, runId);
  const rows = nodes.map((n) => [
    String(n.position + 1),
    n.node,
    n.result,
    n.result === 'in-progress' ? (current.get(n.node) ?? n.phase) : n.phase,
    n.errorCode ? `${n.errorCode}: ${n.errorMessage ?? ''}` : (n.errorMessage ?? ''),
    n.startedAt && n.finishedAt ? duration(n.finishedAt - n.startedAt) : '',
  ]);
  return `${head.join('\n')}\n\n${table(['#', 'node', 'result', 'last step', 'error / note', 'took'], rows)}`;
}

/** The step each node of an active run is in: its latest node.step audit entry. */
function currentSteps(store: Store, runId: string): Map<string, string> {
  const steps = new Map<string, string>();
  for (const row of store.auditRows({ runId })) {
    if (row.action === 'node.step' && row.node) steps.set(row.node, String(row.details.step));
  }
  return steps;
}

function auditLine(row: AuditRow): string {
  const details = Object.entries(row.details)
    .filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(row.seq).padStart(6)}  ${new Date(row.at).toISOString()}  ${row.actor.padEnd(14)} ${row.action.padEnd(14)} ${row.node ?? ''} ${details}`.trimEnd();
}

export function showAudit(store: Store, options: { runId?: string; limit: number }): string {
  const rows = store.auditRows({ ...(options.runId !== undefined ? { runId: options.runId } : {}), limit: options.limit });
  if (rows.length === 0 && options.runId !== undefined) {
    // A mistyped run id is not an empty log: say which it is.
    store.requireRun(options.runId);
    return `no audit records for run ${options.runId}`;
  }
  if (rows.length === 0) return 'the audit log is empty';
  return rows.map(auditLine).join('\n');
}

/**
 * The chain's own check, then every anchor given (the cluster's ConfigMap, a head copied from the run's Slack thread).
 * Says which anchors it checked; without any, says what the chain alone cannot show.
 */
export function verifyAudit(store: Store, anchors: AuditAnchor[] = [], notChecked: string[] = [], given: { kubeconfig?: boolean } = {}): { ok: boolean; text: string } {
  const result = store.verifyAudit();
  const head = store.auditHead();
  const tailAllowed = store.hasActiveRun();
  const newest = Math.max(-1, ...anchors.map((a) => a.seq));
  const checks = anchors.map((anchor) => checkAnchor(anchor, head, (seq) => store.auditHashAt(seq), { newest: anchor.seq === newest, tailAllowed }));
  const ok = result.ok && checks.every((c) => c.ok);
  const lines: string[] = [];
  if (result.ok) lines.push(`chain intact: ${result.checked} records, verified up to #${result.headSeq ?? 0}`);
  else {
    lines.push(`chain broken: ${result.problems.length} problem(s) in ${result.checked} records`);
    lines.push(...result.problems.map((p) => `  #${p.seq}: ${p.problem}`));
  }
  if (checks.length > 0) {
    lines.push(`anchors checked (${checks.length}):`);
    lines.push(...checks.map((c) => `  ${c.ok ? 'ok' : 'MISMATCH'}  ${c.source}: ${c.detail}`));
  } else {
    lines.push('no anchor checked: a chain alone cannot show its newest records removed, records appended, or the whole chain recomputed');
    // Only an option not given yet: "pass --kubeconfig" after --kubeconfig found no anchor would send the user in circles.
    lines.push(given.kubeconfig ? '  (pass --anchor SEQ:HASH from the run\'s Slack thread to check the head it shows)' : '  (pass --kubeconfig to check the cluster\'s anchor, or --anchor SEQ:HASH from the run\'s Slack thread)');
  }
  lines.push(...notChecked.map((u) => `  not checked: ${u}`));
  const problems = result.problems.length + checks.filter((c) => !c.ok).length;
  const verdict = ok ? `audit log intact: ${result.checked} records, chain verified up to #${result.headSeq ?? 0}` : `audit log TAMPERED: ${problems} problem(s) in ${result.checked} records`;
  return { ok, text: [verdict, ...lines].join('\n') };
}

/** `--anchor SEQ:HASH`, as the run's final Slack message shows it. */
export function parseAnchorOption(value: string): AuditAnchor {
  const match = /^#?(\d+):(?:sha256:)?([0-9a-f]{64})$/.exec(value.trim());
  // A sequence number past 2^53 would be rounded, and compared as some other record's.
  if (!match || !Number.isSafeInteger(Number(match[1]))) throw new UserError(`--anchor must be SEQ:HASH (the audit head a run's Slack thread shows, e.g. 57:3f2a…), got "${value}"`, 'copy it from the final message of the run\'s thread');
  return { seq: Number(match[1]), hash: match[2]!, at: 0, source: '--anchor' };
}
