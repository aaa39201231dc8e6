/**
 * `doctor`: why does an On-Demand Update do nothing? One finding per cause in the seed's troubleshooting table, and
 * for the failures its field guide describes, each with the evidence (nodes, Jobs, times, report lines) and the exact
 * command that fixes it. Read-only: doctor never changes the cluster, Palette or the store.
 */
import type { ClusterNode, DiagnosticJob, LeaseInfo } from '../cluster/port.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import { classifyStoredOnDemand } from '../engine/schedule.ts';
import { DISABLED, OS_LABEL, selectNodes } from '../engine/selection.ts';
import type { RunRecord } from '../store/types.ts';
import { leaseName } from './orchestrator.ts';
import type { ClusterTarget } from './targets.ts';
import { paletteFindings, type PaletteFindingId } from './doctor-palette.ts';
import { SEED_ROWS } from './seed-rows.ts';
import { clearedOnDemand, osPatchPath, osPatchUpdateBody, type OsPatchConfig } from '../palette/index.ts';

export type FindingStatus = 'ok' | 'problem' | 'warning' | 'skipped';

export type FindingId =
  | 'run-in-progress'
  | 'on-demand-timestamp'
  | 'nodes-marked'
  | 'agent-health'
  | 'no-linux-nodes'
  | 'left-cordoned'
  | 'keyserver'
  | 'apt-lock'
  | PaletteFindingId;

export interface Finding {
  id: FindingId;
  status: FindingStatus;
  title: string;
  evidence: string[];
  /** The command (or step) that fixes it; null when there is nothing to fix. */
  fix: string | null;
  /** The row or section of the seed's troubleshooting guide this finding answers (seed-rows.ts). */
  row?: string;
}

export interface DoctorReport {
  cluster: string;
  at: number;
  findings: Finding[];
}

export type FixVerb = 'unstick' | 'reset' | 'run' | 'runs';

export interface DoctorOptions {
  signal?: AbortSignal;
  /**
   * How a fix that is one of patchpilot's own commands is written. Default: the CLI (`npx patchpilot unstick --cluster
   * X`); the bot passes its slash command.
   */
  command?: (verb: FixVerb, args: string[], target: ClusterTarget) => string;
}

const cliCommand = (verb: FixVerb, args: string[], target: ClusterTarget): string =>
  ['npx patchpilot', verb, ...(verb === 'runs' ? [] : ['--cluster', target.name]), ...args].join(' ');

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

function ago(ms: number, now: number): string {
  const s = Math.round(Math.abs(now - ms) / 1000);
  const text = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} days`;
  return now >= ms ? `${text} ago` : `in ${text}`;
}

/** A fact doctor could not read: the checks that need it are skipped, saying why. */
type Read<T> = { ok: true; value: T } | { ok: false; why: string };

async function read<T>(what: string, load: () => Promise<T>): Promise<Read<T>> {
  try {
    return { ok: true, value: await load() };
  } catch (err) {
    return { ok: false, why: `could not read ${what}: ${err instanceof Error ? err.message : String(err)}` };
  }
}

interface Facts {
  target: ClusterTarget;
  now: number;
  nodes: ClusterNode[];
  jobs: Read<DiagnosticJob[]>;
  lease: Read<LeaseInfo | null>;
  runs: { active: RunRecord[]; latest: RunRecord | null } | null;
  command: (verb: FixVerb, args: string[]) => string;
}

/** The cluster's nodes must be readable (otherwise nothing can be said and the caller explains the API error). */
export async function doctor(target: ClusterTarget, options: DoctorOptions = {}): Promise<DoctorReport> {
  const { signal } = options;
  const now = target.clock.now();
  const nodes = await target.cluster.listNodes(signal);
  const [jobs, lease, configMap, deployment, palette] = await Promise.all([
    read('patchpilot\'s Jobs', () => target.cluster.recentJobs(signal)),
    read('the cluster\'s Lease', () => target.cluster.readLease(leaseName(target.name), signal)),
    read('the agent ConfigMap', () => target.cluster.agentConfigMap(signal)),
    read('the orchestrator\'s Deployment', () => target.cluster.deployment(signal)),
    read('Palette\'s objects', () => target.cluster.paletteArtifacts(signal)),
  ]);
  const store = target.store;
  const runs = store ? { active: store.listRuns({ cluster: target.name, active: true }), latest: store.listRuns({ cluster: target.name, limit: 1 })[0] ?? null } : null;
  const format = options.command ?? cliCommand;
  const facts: Facts = { target, now, nodes, jobs, lease, runs, command: (verb, args) => format(verb, args, target) };
  const findings: Finding[] = [
    runInProgress(facts),
    await onDemandTimestamp(facts),
    nodesMarked(facts),
    agentHealth(facts, configMap, deployment),
    noLinuxNodes(facts),
    leftCordoned(facts),
    keyserver(facts),
    aptLock(facts),
  ].map((finding) => ({ ...finding, row: OWN_ROWS[finding.id] }));
  const managed = palette.ok && palette.value.managed;
  if (managed) {
    // On a Palette-managed cluster the marks are checked against Palette's own task below; whether the next On-Demand
    // Update reuses the hash is not known here, so a fully marked cluster is a warning, not a problem.
    const marked = findings.find((x) => x.id === 'nodes-marked');
    if (marked?.status === 'problem') {
      marked.status = 'warning';
      marked.evidence.push("if an On-Demand Update does nothing, this is why (Palette's own task is compared below)");
    }
  }
  findings.push(...paletteFindings({ artifacts: palette, nodes, now, command: facts.command }));
  return { cluster: target.name, at: now, findings };
}

/** The seed's rows patchpilot's own checks answer. */
const OWN_ROWS: Partial<Record<FindingId, string>> = {
  'run-in-progress': SEED_ROWS.inProgress,
  'on-demand-timestamp': SEED_ROWS.timestamp,
  'nodes-marked': SEED_ROWS.marked,
  'agent-health': SEED_ROWS.agent,
  'no-linux-nodes': SEED_ROWS.noMatch,
  'left-cordoned': SEED_ROWS.ownCordon,
  keyserver: SEED_ROWS.keyserver,
  'apt-lock': SEED_ROWS.aptLock,
};

export function doctorHasProblems(report: DoctorReport): boolean {
  return report.findings.some((f) => f.status === 'problem');
}

function leaseAlive(lease: LeaseInfo | null, now: number): boolean {
  return lease !== null && lease.holder !== null && lease.expiresAt !== null && lease.expiresAt > now;
}

function describeLease(lease: LeaseInfo, now: number): string {
  if (lease.holder === null) return `Lease ${lease.name}: released`;
  const until = lease.expiresAt === null ? 'never renewed' : `${lease.expiresAt > now ? 'valid until' : 'expired at'} ${iso(lease.expiresAt)} (${ago(lease.expiresAt, now)})`;
  return `Lease ${lease.name} held by ${lease.holder}, ${until}`;
}

function notBeforeOf(run: RunRecord): number | null {
  const value = (run.trigger as { notBefore?: unknown } | null)?.notBefore;
  return typeof value === 'number' ? value : null;
}

/** (1) A previous patch still in progress: an active run, a live Lease, patch Jobs running. */
function runInProgress(f: Facts): Finding {
  const evidence: string[] = [];
  let status: FindingStatus = 'ok';
  let fix: string | null = null;
  const alive = f.lease.ok && leaseAlive(f.lease.value, f.now);
  if (!f.lease.ok) evidence.push(f.lease.why);
  else if (f.lease.value?.holder) {
    evidence.push(describeLease(f.lease.value, f.now));
    if (alive) status = 'problem';
    else status = 'warning';
  }
  for (const run of f.runs?.active ?? []) {
    const notBefore = notBeforeOf(run);
    const when = run.status === 'scheduled' && notBefore !== null ? `, to start at ${iso(notBefore)} (${ago(notBefore, f.now)})` : '';
    evidence.push(`run ${run.id} (requested by ${run.requestedBy}) is ${run.status}${when}; last change ${iso(run.updatedAt)}`);
    status = 'problem';
  }
  const running = f.jobs.ok ? f.jobs.value.filter((j) => j.status === 'running') : [];
  for (const job of running) evidence.push(`job ${job.name} on node ${job.node ?? '?'} (run ${job.runId ?? '?'}) running since ${job.startedAt ? iso(job.startedAt) : '?'}`);
  if (running.length > 0) status = 'problem';
  if (!f.jobs.ok) evidence.push(f.jobs.why);
  if (f.runs === null) evidence.push('no run history (no store): only the Lease and the Jobs were checked');

  const active = f.runs?.active ?? [];
  // Runs the store calls active while no orchestrator holds the Lease: nobody drives them.
  const orphaned = alive ? [] : active;
  if (status === 'problem') {
    if (orphaned.length > 0) {
      const stuckScheduled = orphaned.some((r) => r.status === 'scheduled' && (notBeforeOf(r) ?? Infinity) <= f.now);
      fix = stuckScheduled
        ? `no orchestrator drives run ${orphaned.map((r) => r.id).join(', ')}: ${f.command('unstick', [])} cancels a scheduled run whose start has passed; ${f.command('run', [])} resumes the others`
        : `no orchestrator drives run ${orphaned.map((r) => r.id).join(', ')}: ${f.command('run', [])} resumes it`;
    } else {
      fix = `wait for it to finish (${active[0] ? `${f.command('runs', ['show', active[0].id])}` : 'kubectl get jobs -n os-patch'}), or cancel it where it runs`;
    }
  } else if (status === 'warning') {
    fix = `the next run takes the expired Lease over by itself, once it has seen it unchanged for a whole lease duration; ${f.command('unstick', [])} releases it at once only if its holder is a patchpilot process of this host that is gone`;
  }
  const title =
    status === 'problem' ? 'A previous patch is still in progress' : status === 'warning' ? 'An orchestrator left an expired Lease behind' : 'No patch in progress';
  if (status === 'ok' && evidence.length === 0) evidence.push('no active run, the Lease is free, no patch Job is running');
  return { id: 'run-in-progress', status, title, evidence, fix };
}

/** (2) Palette's onDemandPatchAfter stuck in the past (the seed's "common issue"). */
async function onDemandTimestamp(f: Facts): Promise<Finding> {
  const id = 'on-demand-timestamp';
  const palette = f.target.palette;
  if (!palette) {
    return {
      id,
      status: 'skipped',
      title: 'Palette onDemandPatchAfter not checked',
      evidence: ['Palette is not configured for this cluster (set PALETTE_API_KEY and the cluster uid: PALETTE_CLUSTER_UID or --palette-cluster)'],
      fix: null,
    };
  }
  let stored: string | undefined;
  let config: OsPatchConfig = {};
  try {
    config = await palette.client.getOsPatchConfig(palette.clusterUid);
    stored = config.onDemandPatchAfter;
  } catch (err) {
    const hint = (err as { hint?: string }).hint;
    return { id, status: 'problem', title: 'Palette could not be asked for onDemandPatchAfter', evidence: [err instanceof Error ? err.message : String(err)], fix: hint ?? null };
  }
  let verdict: ReturnType<typeof classifyStoredOnDemand>;
  try {
    verdict = classifyStoredOnDemand(stored, f.now);
  } catch (err) {
    return {
      id,
      status: 'problem',
      title: 'Palette\'s onDemandPatchAfter is not a time',
      evidence: [`cluster ${palette.clusterUid}: onDemandPatchAfter = ${JSON.stringify(stored)}`, err instanceof Error ? err.message : String(err)],
      // unstick refuses a value it cannot read (it clears only a time in the past): by hand, the same request.
      fix: `clear it by hand (unstick clears only a time in the past): PATCH ${osPatchPath(palette.clusterUid)} with ${JSON.stringify(osPatchUpdateBody(clearedOnDemand(config)))}, headers ApiKey and ProjectUid (README: "How unstick clears the timestamp")`,
    };
  }
  const where = `Palette cluster ${palette.clusterUid}`;
  if (verdict.state === 'unset') return { id, status: 'ok', title: 'onDemandPatchAfter is clear', evidence: [`${where}: onDemandPatchAfter is unset${stored ? ` (${stored})` : ''}`], fix: null };
  if (verdict.state === 'pending') {
    return { id, status: 'ok', title: 'An On-Demand Update is scheduled', evidence: [`${where}: onDemandPatchAfter = ${stored} (${ago(verdict.at, f.now)})`], fix: null };
  }
  return {
    id,
    status: 'problem',
    title: 'Palette\'s onDemandPatchAfter is stuck in the past',
    evidence: [`${where}: onDemandPatchAfter = ${stored} (${ago(verdict.at, f.now)})`, verdict.reason],
    fix: `${clearTimestampFix(f, palette.clusterUid, config)}; then click On-Demand Update again`,
  };
}

/**
 * How to clear the timestamp, saying exactly what `unstick` sends (the same functions build its request): the SDK's
 * `{"osPatchConfig": {...}}` body with the settings as read and `onDemandPatchAfter` emptied. The seed's curl sends a
 * bare `{"onDemandPatchAfter":""}`; which form the live API accepts was not checked against Palette (README).
 */
function clearTimestampFix(f: Facts, clusterUid: string, config: OsPatchConfig): string {
  const body = JSON.stringify(osPatchUpdateBody(clearedOnDemand(config)));
  return `${f.command('unstick', [])} clears it: it sends PATCH ${osPatchPath(clusterUid)} with ${body} (the settings as read now, onDemandPatchAfter emptied)`;
}

interface LinuxNodes {
  all: ClusterNode[];
  labelKey: string;
}

function linuxNodes(f: Facts): LinuxNodes {
  const { plan } = f.target;
  const requested = plan.nodes ? new Set(plan.nodes) : null;
  const all = f.nodes.filter(
    (n) => n.labels[OS_LABEL] === 'linux' && (!requested || requested.has(n.name)) && Object.entries(plan.nodeSelector).every(([k, v]) => n.labels[k] === v),
  );
  return { all, labelKey: plan.labelKey };
}

/** (3) Nodes already marked with the current hash (a re-run of the same trigger selects nothing), and opt-outs. */
function nodesMarked(f: Facts): Finding {
  const id = 'nodes-marked';
  const { all, labelKey } = linuxNodes(f);
  if (all.length === 0) return { id, status: 'skipped', title: 'Node marks not checked', evidence: ['no Linux node to look at (see the Linux nodes check)'], fix: null };
  const disabled = all.filter((n) => n.labels[labelKey] === DISABLED).map((n) => n.name);
  // The hash of the last run patchpilot knows of; without history, the hash most nodes carry (Palette's own task).
  let hash: string | null = f.runs?.latest?.hash ?? null;
  let source = f.runs?.latest ? `run ${f.runs.latest.id}` : '';
  if (hash === null || !all.some((n) => n.labels[labelKey] === hash)) {
    const counts = new Map<string, number>();
    for (const n of all) {
      const v = n.labels[labelKey];
      if (v !== undefined && v !== DISABLED) counts.set(v, (counts.get(v) ?? 0) + 1);
    }
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1])[0];
    hash = top?.[0] ?? null;
    source = 'the most common value on the nodes';
  }
  const evidence: string[] = [];
  let status: FindingStatus = 'ok';
  let title = 'Nodes would be selected by a new run';
  let fix: string | null = null;
  if (hash !== null) {
    const marked = all.filter((n) => n.labels[labelKey] === hash).map((n) => n.name);
    const eligible = all.filter((n) => n.labels[labelKey] !== hash && n.labels[labelKey] !== DISABLED).map((n) => n.name);
    evidence.push(`${marked.length} of ${all.length} Linux node(s) carry ${labelKey}=${hash} (${source}): ${marked.join(', ')}`);
    if (eligible.length === 0) {
      // Palette re-uses the task's hash for the next On-Demand Update; patchpilot hashes a new trigger id anew.
      status = f.target.plan.mode === 'palette' ? 'problem' : 'warning';
      title = 'Every eligible node is already marked patched';
      evidence.push(
        f.target.plan.mode === 'palette'
          ? 'the same task again selects nothing: Palette skips nodes whose task label is the current hash'
          : 'a re-run of the same trigger selects nothing (a new trigger id gets a new hash and patches them again)',
      );
      fix = `${f.command('reset', [])} removes the marks (add --nodes a,b for some only), then trigger again`;
    } else {
      evidence.push(`${eligible.length} node(s) without it would be selected: ${eligible.join(', ')}`);
    }
  } else {
    evidence.push(`no Linux node carries ${labelKey} yet: every one is eligible`);
  }
  if (disabled.length > 0) {
    evidence.push(`opted out with ${labelKey}=${DISABLED}: ${disabled.join(', ')}`);
    if (status === 'ok') {
      status = 'warning';
      title = 'Some nodes are opted out of patching';
      fix = `if that is not intended: ${f.command('reset', ['--nodes', disabled.join(','), '--include-disabled'])}`;
    } else {
      fix = `${fix}; ${disabled.join(', ')} stay opted out unless you add --include-disabled`;
    }
  }
  return { id, status, title, evidence, fix };
}

/** The newest Job of each node for an action (older ones were superseded). */
function newestPerNode(jobs: DiagnosticJob[], actions: readonly string[]): DiagnosticJob[] {
  const newest = new Map<string, DiagnosticJob>();
  for (const job of jobs) if (actions.includes(job.action)) newest.set(`${job.node ?? job.name}/${job.action}`, job);
  return [...newest.values()];
}

const OWN_CHECKS = new Set(['LOCK_TIMEOUT', 'KEYSERVER_UNREACHABLE']);

function describeJob(job: DiagnosticJob): string {
  const when = job.finishedAt ?? job.startedAt;
  return `job ${job.name} on node ${job.node ?? '?'} (run ${job.runId ?? '?'})${when ? ` at ${iso(when)}` : ''}`;
}

/** (4) The agent and the orchestrator: Jobs that failed without the agent's say, the ConfigMap, the Deployment. */
function agentHealth(
  f: Facts,
  configMap: Read<{ name: string; namespace: string; sha256: string | null; expectedSha256: string }>,
  deployment: Read<{ name: string; namespace: string; replicas: number; readyReplicas: number; problem: string | null } | null>,
): Finding {
  const evidence: string[] = [];
  const fixes: string[] = [];
  let problem = false;
  let warning = false;
  if (f.jobs.ok) {
    for (const job of newestPerNode(f.jobs.value, ['patch', 'prefetch', 'reboot'])) {
      if (job.status !== 'failed') continue;
      if (job.action === 'reboot') {
        warning = true;
        evidence.push(`${describeJob(job)}: the reboot Job failed${job.failure ? ` (${job.failure})` : ''}`);
        continue;
      }
      if (job.report === null) {
        problem = true;
        const tail = job.logLines.length > 0 ? `; log: ${job.logLines.join(' | ')}` : '; no log';
        evidence.push(`${describeJob(job)} failed without an agent report${job.failure ? ` (${job.failure})` : ''}${tail}`);
        if (job.node) fixes.push(`kubectl describe job ${job.name} -n ${f.target.cluster.namespace}`);
      } else if (job.report.error && !OWN_CHECKS.has(job.report.error.code)) {
        warning = true;
        evidence.push(`${describeJob(job)}: the agent failed: ${job.report.error.code}: ${job.report.error.message}`);
      }
    }
  } else evidence.push(f.jobs.why);
  if (configMap.ok) {
    const cm = configMap.value;
    const where = `ConfigMap ${cm.namespace}/${cm.name}`;
    const anyJobs = f.jobs.ok && f.jobs.value.some((j) => j.action !== 'reboot');
    if (cm.sha256 === null) {
      if (anyJobs) {
        warning = true;
        evidence.push(`${where} (the agent script) does not exist, yet patch Jobs do: their pods cannot start until a run ships it again`);
        fixes.push(`${f.command('run', [])} ships it before its first Job`);
      } else evidence.push(`${where} not shipped yet (no run has started a Job here)`);
    } else if (cm.sha256 !== cm.expectedSha256) {
      warning = true;
      evidence.push(`${where} holds another agent script (sha256 ${cm.sha256.slice(0, 12)}, this build ships ${cm.expectedSha256.slice(0, 12)}): the next run replaces it`);
    } else evidence.push(`${where} holds this build's agent script`);
  } else evidence.push(configMap.why);
  if (deployment.ok) {
    const d = deployment.value;
    if (d === null) evidence.push('no orchestrator Deployment (runs are started from the CLI or the bot)');
    else if (d.problem) {
      problem = true;
      evidence.push(`Deployment ${d.namespace}/${d.name} is not Ready: ${d.problem}`);
      fixes.push(`kubectl -n ${d.namespace} describe deployment ${d.name}; kubectl -n ${d.namespace} logs deployment/${d.name}`);
    } else evidence.push(`Deployment ${d.namespace}/${d.name}: ${d.readyReplicas}/${d.replicas} ready`);
  } else evidence.push(deployment.why);
  const status: FindingStatus = problem ? 'problem' : warning ? 'warning' : 'ok';
  const title = problem ? 'The agent or the orchestrator is unhealthy' : warning ? 'The agent needs attention' : 'Agent and orchestrator healthy';
  return { id: 'agent-health', status, title, evidence, fix: fixes.length > 0 ? [...new Set(fixes)].join('; ') : null };
}

/** (5) No node with kubernetes.io/os=linux (Palette's silent "no matching nodes"). */
function noLinuxNodes(f: Facts): Finding {
  const id = 'no-linux-nodes';
  const { plan } = f.target;
  const selection = selectNodes(f.nodes, { labelKey: plan.labelKey, hash: '', nodeSelector: plan.nodeSelector, nodes: plan.nodes });
  const linux = f.nodes.filter((n) => n.labels[OS_LABEL] === 'linux');
  const matching = linuxNodes(f).all;
  if (f.nodes.length === 0) return { id, status: 'problem', title: 'The cluster has no nodes', evidence: ['the API server lists no Node'], fix: 'check the kubeconfig context (--context)' };
  if (linux.length === 0) {
    const evidence = selection.excluded.filter((e) => e.reason === 'not-linux').map((e) => `${e.name}: ${e.detail}`);
    return {
      id,
      status: 'problem',
      title: `No node carries ${OS_LABEL}=linux`,
      evidence,
      fix: `nothing can be patched here: patchpilot, like Palette, patches only nodes labelled ${OS_LABEL}=linux (the kubelet sets it); check kubectl get nodes -L ${OS_LABEL}`,
    };
  }
  const evidence: string[] = [];
  if (selection.unknown.length > 0) evidence.push(`the plan names nodes that are not in the cluster: ${selection.unknown.join(', ')}`);
  if (matching.length === 0) {
    const selector = Object.entries(plan.nodeSelector).map(([k, v]) => `${k}=${v}`).join(',');
    evidence.push(`${linux.length} Linux node(s), but none matches ${selector ? `nodeSelector ${selector}` : ''}${selector && plan.nodes ? ' and ' : ''}${plan.nodes ? `the plan's nodes list` : ''}`);
    return { id, status: 'problem', title: 'No Linux node matches the plan', evidence, fix: 'fix nodeSelector or nodes in the plan (kubectl get nodes --show-labels)' };
  }
  evidence.push(`${matching.length} Linux node(s) match the plan: ${matching.map((n) => n.name).join(', ')}`);
  const other = f.nodes.length - linux.length;
  if (other > 0) evidence.push(`${other} other node(s) are never patched: ${f.nodes.filter((n) => n.labels[OS_LABEL] !== 'linux').map((n) => n.name).join(', ')}`);
  return { id, status: selection.unknown.length > 0 ? 'problem' : 'ok', title: selection.unknown.length > 0 ? 'The plan names unknown nodes' : 'Linux nodes present', evidence, fix: selection.unknown.length > 0 ? 'remove them from the plan\'s nodes list' : null };
}

/** (6) Nodes left cordoned by a patchpilot run that is no longer active. */
function leftCordoned(f: Facts): Finding {
  const id = 'left-cordoned';
  const evidence: string[] = [];
  const fixes: string[] = [];
  const alive = f.lease.ok && leaseAlive(f.lease.value, f.now);
  for (const node of f.nodes) {
    const run = node.annotations[ANNOTATIONS.cordonedBy];
    if (!node.unschedulable || !run) continue;
    const record = f.target.store?.getRun(run) ?? null;
    // Without history, a live Lease is the only sign that the run may still be going.
    const active = record ? record.status !== 'done' : f.runs === null && alive;
    if (active) continue;
    const how = record ? `run ${run} ended ${record.outcome ?? ''}${record.finishedAt ? ` at ${iso(record.finishedAt)}` : ''}` : `run ${run} is not in the run history`;
    const error = node.annotations[ANNOTATIONS.error];
    evidence.push(`${node.name} is cordoned by run ${run}; ${how}; node ${node.ready ? 'Ready' : 'NotReady'}${error ? `; last error ${error}` : ''}`);
    fixes.push(
      node.ready
        ? `kubectl uncordon ${node.name} && kubectl annotate node ${node.name} ${ANNOTATIONS.cordonedBy}-`
        : `${node.name} is NotReady: find out why first (kubectl describe node ${node.name}), then kubectl uncordon ${node.name} && kubectl annotate node ${node.name} ${ANNOTATIONS.cordonedBy}-`,
    );
  }
  if (evidence.length === 0) return { id, status: 'ok', title: 'No node left cordoned by patchpilot', evidence: ['no node carries a cordon of a finished patchpilot run'], fix: null };
  return { id, status: 'problem', title: 'Nodes left cordoned by a finished run', evidence, fix: fixes.join('; ') };
}

/** Failed patch Jobs (newest per node) whose report or log says `match`. */
function failedWith(f: Facts, code: string, line: RegExp): DiagnosticJob[] {
  if (!f.jobs.ok) return [];
  return newestPerNode(f.jobs.value, ['patch', 'prefetch']).filter((j) => j.report?.error?.code === code || (j.status === 'failed' && j.logLines.some((l) => line.test(l))));
}

function jobEvidence(job: DiagnosticJob, code: string, line: RegExp): string[] {
  const error = job.report?.error;
  const head = `${describeJob(job)}: ${error ? `${error.code}: ${error.message}` : `${code} in its log`}`;
  return [head, ...job.logLines.filter((l) => line.test(l)).map((l) => `  ${job.node ?? job.name}: ${l}`)];
}

/** (7) The legacy script's GPG keyserver fetch failing (the seed's air-gapped networks). */
function keyserver(f: Facts): Finding {
  const id = 'keyserver';
  const line = /keyserver|gpg:/i;
  if (!f.jobs.ok) return { id, status: 'skipped', title: 'Keyserver errors not checked', evidence: [f.jobs.why], fix: null };
  const jobs = failedWith(f, 'KEYSERVER_UNREACHABLE', line);
  if (jobs.length === 0) return { id, status: 'ok', title: 'No keyserver errors', evidence: ['no recent patch Job failed reaching a GPG keyserver'], fix: null };
  const nodes = jobs.map((j) => j.node ?? j.name);
  return {
    id,
    status: 'problem',
    title: 'Patch Jobs failed reaching a GPG keyserver',
    evidence: jobs.flatMap((j) => jobEvidence(j, 'KEYSERVER_UNREACHABLE', line)),
    fix:
      `the legacy patch script fetches a key from keyserver.ubuntu.com, which ${nodes.join(', ')} cannot reach; patchpilot's agent needs no keyserver: ` +
      `${f.command('run', [])} patches them (failed nodes carry no hash label, so they are selected again); or open ports 11371 and 443 to keyserver.ubuntu.com`,
  };
}

/** (8) A held apt/dpkg lock (unattended-upgrades) outlasting the agent's lock timeout. */
function aptLock(f: Facts): Finding {
  const id = 'apt-lock';
  const line = /lock/i;
  if (!f.jobs.ok) return { id, status: 'skipped', title: 'apt lock timeouts not checked', evidence: [f.jobs.why], fix: null };
  const jobs = failedWith(f, 'LOCK_TIMEOUT', /could not get lock|lock-frontend|LOCK_TIMEOUT/i);
  if (jobs.length === 0) return { id, status: 'ok', title: 'No apt lock timeouts', evidence: ['no recent patch Job gave up waiting for the apt/dpkg lock'], fix: null };
  const nodes = jobs.map((j) => j.node ?? j.name);
  return {
    id,
    status: 'problem',
    title: 'Patch Jobs gave up waiting for the apt lock',
    evidence: jobs.flatMap((j) => jobEvidence(j, 'LOCK_TIMEOUT', line)),
    fix:
      `another apt/dpkg process (usually unattended-upgrades) held the lock on ${nodes.join(', ')} longer than lockTimeoutSeconds (${f.target.plan.lockTimeoutSeconds} s): ` +
      `let it finish (systemctl status unattended-upgrades on the node) or raise lockTimeoutSeconds in the plan, then ${f.command('run', [])} (those nodes carry no hash label and are selected again)`,
  };
}

const MARK: Record<FindingStatus, string> = { ok: 'ok', problem: 'PROBLEM', warning: 'warning', skipped: 'skipped' };

/** The report as plain text; also valid Slack mrkdwn (commands in backticks, no <, > or & from us). */
export function formatDoctorReport(report: DoctorReport): string {
  const lines = [`patchpilot doctor: cluster ${report.cluster} at ${iso(report.at)}`, ''];
  for (const [i, finding] of report.findings.entries()) {
    lines.push(`${i + 1}. [${MARK[finding.status]}] ${finding.title}`);
    for (const e of finding.evidence) lines.push(`   - ${e}`);
    if (finding.fix) lines.push(`   fix: ${finding.fix}`);
    if (finding.row) lines.push(`   seed: ${finding.row}`);
  }
  const count = (s: FindingStatus) => report.findings.filter((x) => x.status === s).length;
  const problems = count('problem');
  lines.push('', problems === 0 ? `no problem found (${count('warning')} warning(s), ${count('skipped')} skipped)` : `${problems} problem(s), ${count('warning')} warning(s), ${count('skipped')} skipped`);
  return lines.join('\n');
}
