/**
 * doctor's checks of Palette's own patching, from what DiagnosticsPort.paletteArtifacts reads on the cluster: the
 * SpectroSystemTask and its state, Palette's crony Jobs and their states, the last lines of their logs sorted into
 * the seed's causes, Palette's agent pods, the nodes the task selects and marks, and the `spectronodetask` node
 * annotations. Every finding names the row or section of the seed's guide it answers (SEED_ROWS). Where the cluster
 * is not Palette-managed there is one finding that says so. Pure: facts in, findings out.
 */
import type { ClusterNode } from '../cluster/port.ts';
import {
  describeSelector,
  PALETTE_TASK_LABEL,
  paletteJobName,
  selectorMatches,
  type PaletteArtifacts,
  type PaletteJob,
  type PalettePod,
  type PaletteTask,
  type TaskSelector,
} from '../cluster/palette.ts';
import { SEED_ROWS } from './seed-rows.ts';
import type { Finding, FindingStatus, FixVerb } from './doctor.ts';

export type PaletteFindingId =
  | 'palette-managed'
  | 'palette-task'
  | 'palette-jobs'
  | 'palette-keyserver'
  | 'palette-apt-lock'
  | 'palette-reboot-pending'
  | 'palette-logs'
  | 'palette-agent'
  | 'palette-selection'
  | 'palette-marked'
  | 'palette-node-status';

/** A task applying on one node for longer than this is "stuck" (Palette publishes no figure; SUC's Job deadline is 600 s). */
export const STUCK_APPLYING_MS = 3600_000;
/** The selector Palette's task uses when there is no task to read it from (the seed: "OS label exists (Linux nodes)"). */
const DEFAULT_SELECTOR: TaskSelector = { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] };

const KEYSERVER_LINE = /keyserver receive failed|gpg: keyserver|keyserver\.ubuntu\.com.*(fail|time)/i;
const APT_LOCK_LINE = /could not get lock|waiting for other apt process|lock-frontend|dpkg.*lock/i;
/** "REBOOT REQUIRED: /var/run/reboot-required exists" and apt's "*** System restart required ***", never "No reboot required." */
const REBOOT_LINE = /^(?!.*\bno reboot required)(?=.*(reboot required|reboot-required exists|system restart required))/i;

export interface PaletteFacts {
  artifacts: { ok: true; value: PaletteArtifacts } | { ok: false; why: string };
  nodes: ClusterNode[];
  now: number;
  command: (verb: FixVerb, args: string[]) => string;
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');

function ago(ms: number, now: number): string {
  const s = Math.round(Math.abs(now - ms) / 1000);
  const text = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : s < 172_800 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86_400)} days`;
  return now >= ms ? `${text} ago` : `in ${text}`;
}

const short = (hash: string) => (hash.length > 12 ? `${hash.slice(0, 12)}…` : hash);
/** At most `max` names, then how many more: a thousand-node cluster's report stays readable (and fits in Slack). */
const names = (list: string[], max = 20) => (list.length <= max ? list.join(', ') : `${list.slice(0, max).join(', ')} … and ${list.length - max} more`);
/** Lines kept per finding for things that are fine; problems are always listed in full. */
const FINE_LINES = 5;

export function paletteFindings(f: PaletteFacts): Finding[] {
  if (!f.artifacts.ok) {
    const forbidden = /HTTP 403/.test(f.artifacts.why);
    return [
      {
        id: 'palette-managed',
        status: 'skipped',
        title: "Palette's own patching not checked",
        evidence: [f.artifacts.why],
        fix: forbidden ? 'grant list on spectrosystemtasks.cluster.spectrocloud.com and namespaces (deploy/clusterrole.yaml has both)' : null,
        row: SEED_ROWS.monitoring,
      },
    ];
  }
  const a = f.artifacts.value;
  if (!a.managed) {
    return [
      {
        id: 'palette-managed',
        status: 'skipped',
        title: "Not a Palette-managed cluster: Palette's task, Jobs and node annotations not checked",
        evidence: [a.why, "patchpilot's own runs, Jobs and labels are what the checks above looked at"],
        fix: null,
        row: SEED_ROWS.monitoring,
      },
    ];
  }
  const task = newestTask(a.tasks);
  const jobs = newestJobPerNode(a.jobs);
  return [
    taskFinding(f, a.tasks, jobs),
    jobsFinding(f, a.namespace, jobs),
    ...logFindings(f, a.namespace, jobs),
    agentFinding(a.agentPods, a.agentNamespaces, jobs),
    selectionFinding(f, task),
    markedFinding(f, task),
    nodeStatusFinding(f),
  ];
}

function newestTask(tasks: PaletteTask[]): PaletteTask | null {
  const resolved = (t: PaletteTask) => t.conditions.find((c) => c.type === 'LatestResolved')?.lastUpdateTime ?? t.createdAt ?? 0;
  return [...tasks].sort((x, y) => resolved(x) - resolved(y)).at(-1) ?? null;
}

function newestJobPerNode(jobs: PaletteJob[]): PaletteJob[] {
  const newest = new Map<string, PaletteJob>();
  for (const job of jobs) newest.set(job.node ?? job.name, job);
  return [...newest.values()];
}

const condition = (t: PaletteTask, type: string) => t.conditions.find((c) => c.type === type);

function crashLooping(pod: PalettePod | null): boolean {
  return pod !== null && (pod.reason === 'CrashLoopBackOff' || (!pod.ready && pod.restarts >= 3 && pod.phase === 'Running'));
}

function taskState(t: PaletteTask): string {
  const complete = condition(t, 'Complete');
  if (t.applying.length > 0) return `applying on ${t.applying.join(', ')}${complete?.status === 'False' && complete.reason ? ` (Complete=False, ${complete.reason}${complete.message ? `: ${complete.message}` : ''})` : ''}`;
  if (complete?.status === 'True') return 'Complete';
  if (complete) return `Complete=${complete.status}${complete.reason ? ` (${complete.reason}${complete.message ? `: ${complete.message}` : ''})` : ''}`;
  return 'no Complete condition yet';
}

/** "Previous patch still in progress" (or stuck applying). */
function taskFinding(f: PaletteFacts, tasks: PaletteTask[], jobs: PaletteJob[]): Finding {
  const base = { id: 'palette-task' as const, row: SEED_ROWS.inProgress };
  if (tasks.length === 0) {
    return { ...base, status: 'ok', title: 'No Palette patch task in progress', evidence: ['no SpectroSystemTask in os-patch: Palette has not run an On-Demand Update here, or its task was removed'], fix: null };
  }
  const evidence: string[] = [];
  let status: FindingStatus = 'ok';
  let title = 'No Palette patch in progress';
  let stuck = false;
  const fixes: string[] = [];
  for (const t of tasks) {
    const resolvedAt = condition(t, 'LatestResolved')?.lastUpdateTime ?? null;
    const age = [t.createdAt !== null ? `created ${ago(t.createdAt, f.now)}` : null, resolvedAt !== null ? `version resolved ${ago(resolvedAt, f.now)}` : null].filter(Boolean).join(', ');
    evidence.push(`SpectroSystemTask ${t.namespace}/${t.name}: version ${t.latestVersion ?? t.version ?? '?'}${t.latestHash ? `, hash ${short(t.latestHash)}` : ''}, ${taskState(t)}${age ? `; ${age}` : ''}`);
    for (const node of t.applying) {
      const job = jobs.find((j) => j.node === node) ?? null;
      const since = job?.startedAt ?? null;
      const failed = job?.status === 'failed';
      const looping = crashLooping(job?.pod ?? null);
      const long = since !== null && f.now - since > STUCK_APPLYING_MS;
      if (job) evidence.push(`  ${node}: Job ${job.name} ${job.status}${since !== null ? `, started ${iso(since)} (${ago(since, f.now)})` : ''}${looping ? `, pod ${job.pod!.name} ${job.pod!.reason ?? 'not Ready'} (${job.pod!.restarts} restarts)` : ''}`);
      else evidence.push(`  ${node}: no crony Job found for it (expected ${paletteJobName(node)})`);
      status = 'problem';
      if (failed || looping || long || !job) {
        title = `Palette's task is stuck applying on ${node}`;
        evidence.push(
          `  ${failed ? 'its Job failed' : looping ? 'its pod is crash-looping' : !job ? 'nothing runs for it' : `applying for longer than ${STUCK_APPLYING_MS / 3600_000} h`}: Palette patches one node at a time and goes no further until ${node} succeeds; the node stays cordoned meanwhile`,
        );
        const name = job?.name ?? paletteJobName(node);
        fixes.push(
          `waiting will not help: find out why ${node} is stuck (the findings below, when they name a cause; kubectl describe job ${name} -n os-patch; kubectl logs -n os-patch job/${name}; ` +
            `the guide's "Patching Seems Stuck" checks: can the node reach its package repositories, is its disk full, does another apt/yum process hold the lock); ` +
            `${node} stays cordoned until it is patched or you run kubectl uncordon ${node}`,
        );
        stuck = true;
      } else {
        if (title === 'No Palette patch in progress') title = `A previous Palette patch is still in progress (applying on ${node})`;
        fixes.push(`wait for it to finish (kubectl get jobs -n os-patch -w): an On-Demand Update clicked meanwhile does nothing`);
      }
    }
  }
  const row = stuck ? `${SEED_ROWS.inProgress}; Patching Seems Stuck` : base.row;
  return { ...base, row, status, title, evidence, fix: fixes.length > 0 ? [...new Set(fixes)].join('; ') : null };
}

function describeJob(job: PaletteJob, now: number): string {
  const when =
    job.status === 'running' || job.status === 'pending'
      ? job.startedAt !== null ? ` since ${iso(job.startedAt)} (${ago(job.startedAt, now)})` : ''
      : job.finishedAt !== null ? ` at ${iso(job.finishedAt)} (${ago(job.finishedAt, now)})` : '';
  const state = { running: 'Running', succeeded: 'Succeeded', failed: 'Failed', pending: 'Pending' }[job.status];
  return `job ${job.name} on node ${job.node ?? '?'}: ${state}${job.failure ? ` (${job.failure})` : ''}${when}`;
}

/** Palette's Jobs and their states (the seed's "Patching Jobs and Status"). */
function jobsFinding(f: PaletteFacts, namespace: string, jobs: PaletteJob[]): Finding {
  const base = { id: 'palette-jobs' as const, row: SEED_ROWS.jobs };
  if (jobs.length === 0) return { ...base, status: 'ok', title: "No Palette crony Job", evidence: [`no Job labelled app.kubernetes.io/name=crony in ${namespace}`], fix: null };
  const failed = jobs.filter((j) => j.status === 'failed');
  const succeeded = jobs.filter((j) => j.status === 'succeeded');
  const evidence = [
    ...(succeeded.length > FINE_LINES ? [`${succeeded.length} Jobs succeeded; the newest:`] : []),
    ...succeeded.slice(-FINE_LINES).map((j) => describeJob(j, f.now)),
    ...jobs.filter((j) => j.status !== 'succeeded').map((j) => describeJob(j, f.now)),
  ];
  if (failed.length === 0) return { ...base, status: 'ok', title: `Palette's crony Jobs: ${count(jobs, 'succeeded')} succeeded, ${count(jobs, 'running')} running`, evidence, fix: null };
  return {
    ...base,
    status: 'warning',
    title: `Palette's crony Job failed on ${failed.map((j) => j.node ?? j.name).join(', ')}`,
    evidence,
    fix: `its log says why (see the log findings; kubectl logs -n ${namespace} job/${failed[0]!.name})`,
  };
}

const count = (jobs: PaletteJob[], status: PaletteJob['status']) => jobs.filter((j) => j.status === status).length;

/** The crony logs' last lines sorted into the seed's causes; one finding per cause found, or one that found none. */
function logFindings(f: PaletteFacts, namespace: string, jobs: PaletteJob[]): Finding[] {
  const findings: Finding[] = [];
  const quote = (job: PaletteJob, line: RegExp) => job.logTail.filter((l) => line.test(l)).slice(-2).map((l) => `  ${job.node ?? job.name}: ${l.trim()}`);
  const keyserver = jobs.filter((j) => j.status !== 'succeeded' && j.logTail.some((l) => KEYSERVER_LINE.test(l)));
  if (keyserver.length > 0) {
    const nodes = keyserver.map((j) => j.node ?? j.name);
    findings.push({
      id: 'palette-keyserver',
      status: 'problem',
      title: "Palette's patch script cannot reach the GPG keyserver",
      evidence: keyserver.flatMap((j) => [describeJob(j, f.now), ...quote(j, KEYSERVER_LINE)]),
      fix:
        `${nodes.join(', ')} cannot reach keyserver.ubuntu.com, which Palette's script asks before it patches (the key is usually not needed: kubelet and friends come pre-installed). ` +
        `patchpilot's agent never contacts a keyserver: ${f.command('run', [])} patches them; or open ports 11371, 443 and 80 to keyserver.ubuntu.com`,
      row: SEED_ROWS.keyserver,
    });
  }
  const locked = jobs.filter((j) => j.status !== 'succeeded' && j.logTail.some((l) => APT_LOCK_LINE.test(l)));
  if (locked.length > 0) {
    const nodes = locked.map((j) => j.node ?? j.name);
    const lines = locked.flatMap((j) => {
      const waits = j.logTail.filter((l) => APT_LOCK_LINE.test(l));
      return [describeJob(j, f.now), `  ${j.node ?? j.name}: ${waits.at(-1)!.trim()}${waits.length > 1 ? ` (the last ${waits.length} log lines say so)` : ''}`];
    });
    findings.push({
      id: 'palette-apt-lock',
      status: 'problem',
      title: "Palette's patch script is waiting for another apt process's lock",
      evidence: lines,
      fix:
        `on ${nodes.join(', ')}, another apt/dpkg process (usually unattended-upgrades) holds the lock and Palette's script waits as long as it does: ` +
        `sudo fuser -v /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock names it; let it finish, or stop it (sudo systemctl stop unattended-upgrades). ` +
        `patchpilot's agent waits at most the plan's lockTimeoutSeconds and says so`,
      row: SEED_ROWS.aptLock,
    });
  }
  const pending = jobs.filter((j) => j.status === 'succeeded' && j.logTail.some((l) => REBOOT_LINE.test(l)) && !j.logTail.some((l) => /rebooting/i.test(l)));
  if (pending.length > 0) {
    const nodes = pending.map((j) => j.node ?? j.name);
    findings.push({
      id: 'palette-reboot-pending',
      status: 'problem',
      title: `A reboot is pending on ${nodes.join(', ')}: the patched kernel or libraries are not running yet`,
      evidence: pending.flatMap((j) => [describeJob(j, f.now), ...quote(j, REBOOT_LINE)]),
      fix:
        `reboot one node at a time: kubectl drain ${nodes[0]} --ignore-daemonsets --delete-emptydir-data, reboot it, kubectl uncordon ${nodes[0]}; ` +
        `or turn on Palette's "Reboot if required" for the cluster (its docs place it in Cluster Configuration), so that the next run reboots where needed`,
      row: SEED_ROWS.rebootPending,
    });
  }
  if (findings.length === 0) {
    const read = jobs.filter((j) => j.logTail.length > 0);
    findings.push({
      id: 'palette-logs',
      status: jobs.length === 0 ? 'skipped' : 'ok',
      title: jobs.length === 0 ? 'No crony log to read' : "Palette's crony logs show none of the guide's failures",
      evidence:
        jobs.length === 0
          ? [`no crony Job in ${namespace}`]
          : [
              `read the last lines of ${read.length} crony pod log(s): no keyserver error, no apt lock wait, no pending reboot`,
              ...read.slice(-3).map((j) => `  ${j.node ?? j.name}: ${j.logTail.at(-1)!.trim()}`),
            ],
      fix: null,
      row: SEED_ROWS.logs,
    });
  }
  return findings;
}

function describePod(pod: PalettePod): string {
  return `${pod.namespace}/${pod.name}${pod.node ? ` on ${pod.node}` : ''}: ${pod.phase}, ${pod.ready ? 'Ready' : 'not Ready'}${pod.reason ? `, ${pod.reason}` : ''}${pod.restarts > 0 ? `, ${pod.restarts} restart(s)` : ''}`;
}

/** "Cluster agent issues": Palette's agent pods not Ready, crony pods crash-looping. */
function agentFinding(agentPods: PalettePod[], agentNamespaces: string[], jobs: PaletteJob[]): Finding {
  const base = { id: 'palette-agent' as const, row: SEED_ROWS.agent };
  const unready = agentPods.filter((p) => p.phase !== 'Succeeded' && !p.ready);
  const looping = jobs.map((j) => j.pod).filter((p): p is PalettePod => crashLooping(p));
  const evidence: string[] = [];
  if (agentNamespaces.length === 0) evidence.push("no cluster-<uid> namespace: Palette's agent pods were not found, so not checked");
  else evidence.push(...agentPods.filter((p) => p.ready).slice(0, FINE_LINES).map(describePod), ...agentPods.filter((p) => !p.ready).map(describePod));
  evidence.push(...looping.map((p) => `crony ${describePod(p)}`));
  const empty = agentNamespaces.filter((ns) => !agentPods.some((p) => p.namespace === ns));
  if (empty.length > 0) {
    return {
      ...base,
      status: 'problem',
      title: "Palette's cluster agent has no pod",
      evidence: [...evidence, ...empty.map((ns) => `no pod in ${ns}: nothing there talks to Palette`)],
      fix: `check cluster health and the agent: kubectl -n ${empty[0]} get deployments,replicasets,events`,
    };
  }
  if (unready.length === 0 && looping.length === 0) {
    return { ...base, status: agentNamespaces.length === 0 ? 'skipped' : 'ok', title: agentNamespaces.length === 0 ? "Palette's agent pods not found" : "Palette's agent pods are Ready", evidence, fix: null };
  }
  const fixes = [
    ...unready.map((p) => `kubectl -n ${p.namespace} describe pod ${p.name}; kubectl -n ${p.namespace} logs ${p.name} --previous`),
    ...looping.map((p) => `kubectl -n ${p.namespace} logs ${p.name} --previous (why the crony container exits); kubectl -n ${p.namespace} describe pod ${p.name}`),
  ];
  return {
    ...base,
    status: 'problem',
    title: unready.length > 0 ? "Palette's cluster agent is not Ready" : "Palette's crony pods are crash-looping",
    evidence,
    fix: `check cluster health and the agent's connectivity (it must reach your Palette): ${fixes.join('; ')}`,
  };
}

/** "No matching nodes": the task's nodeSelector against the nodes. */
function selectionFinding(f: PaletteFacts, task: PaletteTask | null): Finding {
  const base = { id: 'palette-selection' as const, row: SEED_ROWS.noMatch };
  const selector = task?.nodeSelector ?? DEFAULT_SELECTOR;
  const source = task ? `task ${task.name}'s nodeSelector` : 'the selector Palette uses (no task to read it from)';
  const matching = f.nodes.filter((n) => selectorMatches(selector, n.labels) && n.labels[PALETTE_TASK_LABEL] !== 'disabled');
  if (f.nodes.length === 0) return { ...base, status: 'skipped', title: 'No node to select', evidence: ['the API server lists no Node'], fix: null };
  if (matching.length > 0) {
    return { ...base, status: 'ok', title: "Palette's task selects nodes", evidence: [`${matching.length} of ${f.nodes.length} node(s) match ${source} (${describeSelector(selector)}): ${names(matching.map((n) => n.name))}`], fix: null };
  }
  const keys = [...Object.keys(selector.matchLabels ?? {}), ...(selector.matchExpressions ?? []).map((r) => r.key)];
  const evidence = [
    `no node matches ${source}: ${describeSelector(selector)}`,
    ...f.nodes.slice(0, 10).map((n) => `  ${n.name}: ${keys.map((k) => `${k}=${n.labels[k] ?? '(none)'}`).join(', ')}${n.labels[PALETTE_TASK_LABEL] === 'disabled' ? `, ${PALETTE_TASK_LABEL}=disabled` : ''}`),
  ];
  const osKey = keys.includes('kubernetes.io/os');
  return {
    ...base,
    status: 'problem',
    title: "Palette's task selects no node",
    evidence,
    fix: osKey
      ? 'check that the nodes have the OS label: kubectl get nodes -L kubernetes.io/os; the kubelet sets kubernetes.io/os=linux when it registers a Linux node, so a node without it was relabelled: kubectl label node NODE kubernetes.io/os=linux'
      : `check the nodes' labels against the selector: kubectl get nodes --show-labels`,
  };
}

/** "Nodes already marked as patched": every node the task selects carries its hash. */
function markedFinding(f: PaletteFacts, task: PaletteTask | null): Finding {
  const base = { id: 'palette-marked' as const, row: SEED_ROWS.marked };
  const selector = task?.nodeSelector ?? DEFAULT_SELECTOR;
  const nodes = f.nodes.filter((n) => selectorMatches(selector, n.labels));
  const disabled = nodes.filter((n) => n.labels[PALETTE_TASK_LABEL] === 'disabled').map((n) => n.name);
  const hash = task?.latestHash ?? null;
  const evidence: string[] = [];
  if (disabled.length > 0) evidence.push(`opted out with ${PALETTE_TASK_LABEL}=disabled: ${names(disabled)}`);
  if (nodes.length === 0) return { ...base, status: 'skipped', title: 'Node marks not compared', evidence: ['the task selects no node (see the selection check)'], fix: null };
  if (hash === null) {
    const marked = nodes.filter((n) => n.labels[PALETTE_TASK_LABEL] !== undefined && n.labels[PALETTE_TASK_LABEL] !== 'disabled');
    evidence.unshift(`no task hash to compare with; ${marked.length} node(s) carry ${PALETTE_TASK_LABEL}`);
    return { ...base, status: 'ok', title: 'Node marks not compared (no task hash)', evidence, fix: null };
  }
  const marked = nodes.filter((n) => n.labels[PALETTE_TASK_LABEL] === hash).map((n) => n.name);
  const eligible = nodes.filter((n) => n.labels[PALETTE_TASK_LABEL] !== hash && n.labels[PALETTE_TASK_LABEL] !== 'disabled').map((n) => n.name);
  evidence.unshift(`${marked.length} of ${nodes.length} selected node(s) carry ${PALETTE_TASK_LABEL}=${short(hash)} (task ${task!.name}'s latestHash)${marked.length > 0 ? `: ${names(marked)}` : ''}`);
  if (eligible.length > 0 || marked.length === 0) {
    evidence.push(`${eligible.length} node(s) without it would be selected: ${names(eligible) || '-'}`);
    return { ...base, status: 'ok', title: 'Nodes remain for Palette to patch, or none is marked', evidence, fix: null };
  }
  evidence.push('Palette skips a node whose task label is the task\'s hash: if an On-Demand Update does nothing, this is why');
  return {
    ...base,
    status: 'warning',
    title: "Every node Palette's task selects already carries its hash",
    evidence,
    fix: `remove the marks (only those, keeping disabled opt-outs): kubectl label nodes -l ${PALETTE_TASK_LABEL}=${hash} ${PALETTE_TASK_LABEL}- ; then click On-Demand Update again`,
  };
}

/** The `spectronodetask` node annotations (the seed: status, time and error message per node). */
function nodeStatusFinding(f: PaletteFacts): Finding {
  const base = { id: 'palette-node-status' as const, row: SEED_ROWS.nodeStatus };
  const evidence: string[] = [];
  const fine: string[] = [];
  const failed: string[] = [];
  for (const node of f.nodes) {
    const entries = Object.entries(node.annotations).filter(([k]) => k.includes('spectronodetask'));
    if (entries.length === 0) continue;
    const text = entries.map(([k, v]) => `${k.replace(/^.*[/.](?=[^/.]+$)/, '')}=${v}`).join(', ');
    const line = `${node.name}${node.unschedulable ? ' (cordoned)' : ''}: ${text}`;
    const bad = entries.some(([, v]) => /fail|error/i.test(v));
    if (bad) failed.push(node.name);
    if (bad || node.unschedulable || !entries.some(([, v]) => v === 'Completed')) evidence.push(line);
    else fine.push(line);
  }
  evidence.unshift(...fine.slice(0, FINE_LINES));
  if (fine.length > FINE_LINES) evidence.splice(FINE_LINES, 0, `… and ${fine.length - FINE_LINES} more node(s) Completed`);
  if (evidence.length === 0) return { ...base, status: 'ok', title: 'No spectronodetask annotation on any node', evidence: ['no node carries an annotation matching spectronodetask'], fix: null };
  if (failed.length === 0) return { ...base, status: 'ok', title: "Palette's per-node status shows no failure", evidence, fix: null };
  return {
    ...base,
    status: 'problem',
    title: `Palette's per-node status says patching failed on ${failed.join(', ')}`,
    evidence,
    fix: `the annotation's message names the cause (see the findings above); a node whose Palette Job failed stays cordoned (Palette's docs): once it is patched, kubectl uncordon ${failed.join(' ')}`,
  };
}
