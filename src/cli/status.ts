/**
 * `patchpilot scan` and `patchpilot status`, for one cluster or many (kubeconfig contexts: `--context` repeated, or
 * `--all-contexts`). A context that does not exist or a cluster that cannot be reached is named on stderr and the
 * other clusters go on; such a cluster is listed with its error and no node, never as compliant. Exit codes: 0 every
 * cluster read (status) or scanned (scan), 1 some could not be, 2 none could (bad input).
 */
import type { Writable } from 'node:stream';
import { KubeConfigError } from '../cluster/kube/config-error.ts';
import { loadKubeConfig } from '../cluster/kube/kubeconfig.ts';
import { parsePlan, type Plan } from '../engine/plan.ts';
import { clusterSummary, lastPatchText, pendingText, readClusterStatus, statusJson, triggerOfRun, type ClusterStatus } from '../service/fleet-status.ts';
import { scanCluster, type NodeScanResult } from '../service/scan.ts';
import { SystemClock } from '../service/system-clock.ts';
import type { Store } from '../store/index.ts';
import { table } from './format.ts';
import { openCliStore } from './paths.ts';
import { loadPlanFile } from './plan-check.ts';
import { checkOutputFile, writeOutputFile } from './output-file.ts';
import { kubeTarget, type KubeTarget } from './targets.ts';
import { UserError } from './user-error.ts';
import { untilSignal } from './signals.ts';
import { parseDuration } from '../sim/duration.ts';
import { PatchpilotMetrics, serveMetrics } from '../service/metrics.ts';

export interface FleetCliOptions {
  kubeconfig?: string;
  /** Repeatable: one cluster per context. */
  context?: string[];
  allContexts?: boolean;
  plan?: string;
  db?: string;
  json?: boolean;
}

export interface StatusCliOptions extends FleetCliOptions {
  report?: string;
}

export interface ScanCliOptions extends FleetCliOptions {
  concurrency?: number;
  timeout?: number;
  /** Scan again every this long (`6h`), until stopped: the scheduled scan. */
  every?: string;
  /** Serve the fleet metrics at /metrics on this port while scanning on a schedule. */
  metricsPort?: number;
}

export interface FleetIo {
  out: Writable;
  err?: Writable;
  env?: NodeJS.ProcessEnv;
}

interface Fleet {
  targets: KubeTarget[];
  /** Contexts that could not be used, with why. */
  failed: ClusterStatus[];
  store: Store;
}

/** The clusters the options name. With several contexts each cluster is named after its context's cluster. */
export function openFleet(options: FleetCliOptions, io: FleetIo): Fleet {
  const env = io.env ?? process.env;
  const plan = options.plan ? loadPlanFile(options.plan) : null;
  let contexts: (string | undefined)[] = options.context && options.context.length > 0 ? [...new Set(options.context)] : [undefined];
  if (options.allContexts) {
    if (options.context?.length) throw new UserError('--context and --all-contexts exclude each other', 'give contexts one by one, or all of them');
    const { kubeConfig } = loadKubeConfig({ path: options.kubeconfig, env });
    contexts = kubeConfig.getContexts().map((c) => c.name);
    if (contexts.length === 0) throw new UserError('the kubeconfig defines no context', 'check it with: kubectl config get-contexts');
  }
  if (plan && contexts.length > 1) throw new UserError('--plan names one cluster, but several contexts were given', 'give one --context with --plan, or leave --plan out (defaults, each cluster named after its context)');
  const store = openCliStore(options.db);
  const targets: KubeTarget[] = [];
  const failed: ClusterStatus[] = [];
  for (const context of contexts) {
    try {
      const { kubeConfig } = loadKubeConfig({ path: options.kubeconfig, context, env });
      const clusterName = contexts.length > 1 ? (context ?? 'default') : (kubeConfig.getCurrentCluster()?.name ?? 'default');
      const targetPlan: Plan = plan ?? parsePlan({ cluster: clusterName });
      targets.push(kubeTarget({ kubeconfig: options.kubeconfig, ...(context ? { context } : {}), plan: targetPlan, db: store, palette: null, env }));
    } catch (err) {
      if (!(err instanceof KubeConfigError)) throw err;
      failed.push({ name: context ?? 'default', compliant: 0, total: 0, lastScanAt: null, oldestUnpatched: null, nodes: [], error: err.message });
    }
  }
  return { targets, failed, store };
}

function exitCode(statuses: readonly ClusterStatus[]): number {
  const bad = statuses.filter((s) => s.error !== undefined).length;
  if (bad === 0) return 0;
  return bad === statuses.length ? 2 : 1;
}

async function readAll(fleet: Fleet): Promise<ClusterStatus[]> {
  const read = await Promise.all(fleet.targets.map((t) => readClusterStatus(t.cluster, { labelKey: t.plan.labelKey, triggerOf: (id) => triggerOfRun(fleet.store, id), now: Date.now() })));
  return [...read, ...fleet.failed];
}

function reportErrors(statuses: readonly ClusterStatus[], io: FleetIo): void {
  for (const s of statuses) if (s.error !== undefined) (io.err ?? process.stderr).write(`error: cluster ${s.name}: ${s.error}\n`);
}

export async function statusCommand(options: StatusCliOptions, io: FleetIo): Promise<number> {
  if (options.report) checkOutputFile(options.report, '--report');
  const fleet = openFleet(options, io);
  try {
    const statuses = await readAll(fleet);
    reportErrors(statuses, io);
    const now = Date.now();
    if (options.report) {
      const { renderFleetReport } = await import('./status-report.ts');
      writeOutputFile(options.report, '--report', renderFleetReport(statuses, (cluster) => fleet.store.scanHistory(cluster), now));
    }
    if (options.json) io.out.write(`${JSON.stringify(statusJson(statuses), null, 2)}\n`);
    else {
      io.out.write(`${statuses.map((s) => statusText(s, now)).join('\n\n')}\n`);
      if (options.report) io.out.write(`\nreport: ${options.report}\n`);
    }
    return exitCode(statuses);
  } finally {
    fleet.targets.forEach((t) => t.close());
    fleet.store.close();
  }
}

export async function scanCommand(options: ScanCliOptions, io: FleetIo & { stopped?: Promise<string> }): Promise<number> {
  const everyMs = options.every === undefined ? null : parseDuration(options.every);
  if (typeof everyMs === 'string') throw new UserError(`--every ${everyMs}`, 'give how often to scan, e.g. --every 6h (at least 1m)');
  if (everyMs !== null && everyMs < 60_000) throw new UserError('--every must be at least 1m', 'scans run a Job on every node: every few hours is plenty');
  if (options.metricsPort !== undefined && everyMs === null) throw new UserError('--metrics-port needs --every', 'a single scan ends at once; serve metrics from a scheduled scan (--every 6h) or from run');
  const fleet = openFleet(options, io);
  try {
    // One refusal up front rather than one per cluster after the scan Jobs have run and the annotations are written.
    fleet.store.assertWritable();
  } catch (err) {
    fleet.targets.forEach((t) => t.close());
    fleet.store.close();
    throw err;
  }
  const clock = new SystemClock();
  const metrics = options.metricsPort === undefined ? null : new PatchpilotMetrics();
  metrics?.watchFleet(() => readAll(fleet));
  const served = metrics && options.metricsPort !== undefined ? await serveMetrics(metrics, options.metricsPort) : null;
  try {
    if (served) io.out.write(`metrics: http://0.0.0.0:${served.port}/metrics\n`);
    let code = await scanOnce(fleet, options, clock, io);
    if (everyMs === null) return code;
    const stopped = io.stopped ?? untilSignal();
    let stop = false;
    void stopped.then(() => (stop = true));
    while (!stop) {
      io.out.write(`next scan at ${new Date(clock.now() + everyMs).toISOString()} (every ${options.every}; Ctrl-C stops)\n`);
      let timer: number | undefined;
      const reason = await Promise.race([stopped, new Promise<null>((resolve) => (timer = clock.setTimeout(() => resolve(null), everyMs)))]);
      if (timer !== undefined) clock.clearTimeout(timer);
      if (reason !== null) break;
      code = await scanOnce(fleet, options, clock, io);
    }
    io.out.write('scans stopped\n');
    return code;
  } finally {
    await served?.close();
    fleet.targets.forEach((t) => t.close());
    fleet.store.close();
  }
}

/** One scan of every cluster, then their status printed; the exit code of that status. */
async function scanOnce(fleet: Fleet, options: ScanCliOptions, clock: SystemClock, io: FleetIo): Promise<number> {
  const scanned = await Promise.all(
    fleet.targets.map(async (t): Promise<ClusterStatus | null> => {
      try {
        const summary = await scanCluster({
          cluster: t.cluster,
          plan: t.plan,
          clock,
          store: fleet.store,
          ...(options.concurrency ? { concurrency: options.concurrency } : {}),
          ...(options.timeout ? { timeoutSeconds: options.timeout } : {}),
          onNode: (r) => {
            if (!options.json) io.out.write(`${scanLine(t.name, r)}\n`);
          },
        });
        if (!options.json) io.out.write(`cluster ${t.name}: scanned ${summary.nodes.length} Linux node(s) in ${Math.round((summary.finishedAt - summary.startedAt) / 1000)} s${summary.skipped.length ? `; not Linux, not scanned: ${summary.skipped.join(', ')}` : ''}\n`);
        return null;
      } catch (err) {
        return { name: t.name, compliant: 0, total: 0, lastScanAt: null, oldestUnpatched: null, nodes: [], error: err instanceof Error ? err.message : String(err) };
      }
    }),
  );
  const unscannable = new Map(scanned.filter((s): s is ClusterStatus => s !== null).map((s) => [s.name, s]));
  const statuses = (await readAll(fleet)).map((s) => unscannable.get(s.name) ?? s);
  reportErrors(statuses, io);
  const now = Date.now();
  if (options.json) io.out.write(`${JSON.stringify(statusJson(statuses), null, 2)}\n`);
  else io.out.write(`\n${statuses.map((s) => statusText(s, now)).join('\n\n')}\n`);
  return exitCode(statuses);
}

function scanLine(cluster: string, r: NodeScanResult): string {
  const f = r.findings;
  const what = f.pending === null ? `scan failed: ${f.error}` : `${f.pending.length} security update(s) pending${f.pending.length ? ` (${f.pending.slice(0, 5).join(', ')}${f.pending.length > 5 ? ', …' : ''})` : ''}${f.rebootRequired ? ', reboot needed after them' : ''}`;
  return `  ${cluster}/${r.node}: ${what}${r.annotateError ? ` (annotations not written: ${r.annotateError})` : ''}`;
}

export function statusText(status: ClusterStatus, now: number): string {
  const head = clusterSummary(status, now);
  if (status.error !== undefined || status.nodes.length === 0) return head;
  const rows = status.nodes.map((n) => [
    n.name,
    n.os || '-',
    n.kernel ?? '-',
    n.linux ? pendingText(n) : 'n/a',
    n.rebootRequired === null ? '?' : n.rebootRequired ? 'yes' : 'no',
    lastPatchText(n, now),
    n.cordoned ? `by ${n.cordonedBy}` : 'no',
    n.disabled ? 'disabled' : n.linux ? '' : 'not Linux',
    n.compliant ? 'yes' : `no: ${n.reason}`,
  ]);
  return `${head}\n${table(['node', 'os', 'kernel', 'security updates', 'reboot', 'last patched', 'cordoned', 'excluded', 'compliant'], rows)}`;
}
