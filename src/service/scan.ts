/**
 * A scan: the agent report-only (`ClusterPort.scanNode`, a Job each) on every Linux node, a few at a time, nothing
 * cordoned. Each node's findings go onto the node (annotations: the cluster is the system of record) and into the
 * store (history, for the report's chart). A node whose Job never reports, fails, or cannot be annotated is recorded
 * as "scan failed" where that is possible, and the other nodes go on: nothing is taken as compliant that was not
 * scanned.
 */
import { createHash } from 'node:crypto';
import type { ClusterNode, ClusterPort } from '../cluster/port.ts';
import type { Clock } from '../engine/clock.ts';
import { scanMetadata, type ScanFindings } from '../engine/metadata.ts';
import type { Plan } from '../engine/plan.ts';
import type { AgentReport } from '../engine/report.ts';
import { OS_LABEL } from '../engine/selection.ts';
import type { Store } from '../store/index.ts';

export interface ScanOptions {
  cluster: ClusterPort;
  plan: Plan;
  clock: Clock;
  store?: Store | null;
  /** Nodes scanned at once (default 5). */
  concurrency?: number;
  /** How long a node's scan Job may take to report before it counts as failed (default 10 minutes). */
  timeoutSeconds?: number;
  /** Called as each node finishes (live output). */
  onNode?: (result: NodeScanResult) => void;
  signal?: AbortSignal;
}

export interface NodeScanResult {
  node: string;
  findings: ScanFindings;
  /** The annotations could not be written (the store still has the findings). */
  annotateError: string | null;
}

export interface ScanSummary {
  scanId: string;
  cluster: string;
  startedAt: number;
  finishedAt: number;
  nodes: NodeScanResult[];
  /** Linux nodes only: Windows nodes have no agent. */
  skipped: string[];
}

export const DEFAULT_SCAN_CONCURRENCY = 5;
export const DEFAULT_SCAN_TIMEOUT_SECONDS = 600;

/** Scans every Linux node of the cluster. Throws only when the nodes cannot be listed at all. */
export async function scanCluster(options: ScanOptions): Promise<ScanSummary> {
  const { cluster, clock } = options;
  // Findings go onto the nodes before they go into the store: a store that cannot take them refuses the scan first.
  options.store?.assertWritable();
  const startedAt = clock.now();
  const scanId = `scan-${new Date(startedAt).toISOString().replace(/[-:.TZ]/g, '').slice(0, 14)}`;
  // The Job name carries this hash: a new scan gets new Jobs, the same scan repeated finds its own again.
  const hash = createHash('sha256').update(`${cluster.name}\n${scanId}`).digest('hex').slice(0, 10);
  const nodes = await cluster.listNodes(options.signal);
  const linux = nodes.filter((n) => n.labels[OS_LABEL] === 'linux');
  const skipped = nodes.filter((n) => n.labels[OS_LABEL] !== 'linux').map((n) => n.name);
  const results: NodeScanResult[] = [];
  const queue = [...linux];
  const width = Math.max(1, Math.min(options.concurrency ?? DEFAULT_SCAN_CONCURRENCY, queue.length));
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let node = queue.shift(); node; node = queue.shift()) {
        const result = await scanOne(node, { ...options, scanId, hash });
        results.push(result);
        options.onNode?.(result);
      }
    }),
  );
  const order = new Map(linux.map((n, i) => [n.name, i]));
  results.sort((a, b) => (order.get(a.node) ?? 0) - (order.get(b.node) ?? 0));
  return { scanId, cluster: cluster.name, startedAt, finishedAt: clock.now(), nodes: results, skipped };
}

async function scanOne(node: ClusterNode, options: ScanOptions & { scanId: string; hash: string }): Promise<NodeScanResult> {
  const { cluster, plan, clock } = options;
  const timeoutSeconds = options.timeoutSeconds ?? DEFAULT_SCAN_TIMEOUT_SECONDS;
  const controller = new AbortController();
  const stop = () => controller.abort();
  options.signal?.addEventListener('abort', stop);
  let timedOut = false;
  const timer = clock.setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutSeconds * 1000);
  let findings: ScanFindings;
  try {
    const report = await cluster.scanNode(
      {
        runId: options.scanId,
        node: node.name,
        hash: options.hash,
        mode: plan.mode,
        securityOnly: plan.securityOnly,
        holdPackages: [...plan.holdPackages],
        lockTimeoutSeconds: plan.lockTimeoutSeconds,
      },
      controller.signal,
    );
    findings =
      report.result === 'failed'
        ? { at: clock.now(), pending: null, rebootRequired: null, error: `${report.error?.code ?? 'FAILED'}: ${report.error?.message ?? 'the agent reported a failure'}` }
        : { at: clock.now(), pending: report.upgraded.map((u) => u.name), rebootRequired: rebootPendingNow(report), error: null };
  } catch (err) {
    const error = timedOut
      ? `the scan Job did not report within ${timeoutSeconds} s`
      : options.signal?.aborted
        ? 'the scan was cancelled'
        : `the scan failed: ${err instanceof Error ? err.message : String(err)}`;
    findings = { at: clock.now(), pending: null, rebootRequired: null, error };
  } finally {
    clock.clearTimeout(timer);
    options.signal?.removeEventListener('abort', stop);
  }
  let annotateError: string | null = null;
  try {
    await cluster.patchNodeMetadata(node.name, { annotations: scanMetadata(findings) });
  } catch (err) {
    annotateError = err instanceof Error ? err.message : String(err);
  }
  options.store?.recordScan({
    scanId: options.scanId,
    cluster: cluster.name,
    node: node.name,
    at: findings.at,
    pending: findings.pending === null ? null : findings.pending.length,
    packages: findings.pending ?? [],
    rebootRequired: findings.rebootRequired,
    error: findings.error,
  });
  return { node: node.name, findings, annotateError };
}

/**
 * Whether the node needs a reboot now. The dry run's `rebootRequired` also covers the reboot that applying the listed
 * upgrades would need (a kernel among them): those are pending updates, counted as such, not a pending reboot.
 */
export function rebootPendingNow(report: AgentReport): boolean {
  if (!report.rebootRequired) return false;
  const upgrading = new Set(report.upgraded.map((u) => u.name));
  return report.rebootPackages.length === 0 || report.rebootPackages.some((p) => !upgrading.has(p));
}
