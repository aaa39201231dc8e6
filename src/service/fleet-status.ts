/**
 * The fleet view: each node's compliance as the cluster records it (patchpilot's annotations, written by runs and
 * scans), and per cluster how many nodes are compliant. Read by `patchpilot status`, `/patch status`, the App Home
 * tab, `/metrics` and the HTML report, so the rule for "compliant" lives here and only here.
 *
 * Compliant means: a Linux node whose newest evidence (a successful scan, or a successful patch after it) shows no
 * security update pending and no reboot pending. A node never scanned, or whose last scan failed, is not compliant:
 * nothing is taken for granted. Nor is a time that cannot be one: a scan or patch time later than now (beyond
 * CLOCK_SKEW_MS) or unreadable is no evidence, and the node is not compliant, its reason naming the annotation.
 */
import type { ClusterNode, ClusterPort } from '../cluster/port.ts';
import { ANNOTATIONS, SCAN_ANNOTATIONS } from '../engine/metadata.ts';
import { DISABLED, OS_LABEL } from '../engine/selection.ts';
import type { Store } from '../store/index.ts';

export interface LastPatch {
  at: string;
  status: string;
  runId: string | null;
  /** The trigger of the run (from the store), when known. */
  trigger: string | null;
  /** The version hash the node carries. */
  hash: string | null;
  error: string | null;
}

export interface NodeStatus {
  name: string;
  os: string;
  kernel: string | null;
  linux: boolean;
  scannedAt: string | null;
  scanError: string | null;
  /** null: unknown (never scanned, or the last scan failed). */
  securityUpdatesPending: number | null;
  securityUpdates: string[];
  rebootRequired: boolean | null;
  lastPatchedAt: string | null;
  lastPatch: LastPatch | null;
  cordoned: boolean;
  cordonedBy: string | null;
  disabled: boolean;
  compliant: boolean;
  /** Why the node is not compliant, in a few words ('' when it is). */
  reason: string;
  /** Annotations whose time is no evidence (in the future, or not a time), with why: named in `reason`. */
  untrusted: { annotation: string; problem: string }[];
}

export interface ClusterStatus {
  name: string;
  compliant: number;
  total: number;
  lastScanAt: string | null;
  /** The Linux node patched longest ago (or never), with when. */
  oldestUnpatched: { name: string; lastPatchedAt: string | null } | null;
  nodes: NodeStatus[];
  /** Set when the cluster could not be read: nothing else is known then. */
  error?: string;
}

export interface StatusOptions {
  labelKey: string;
  /** A run id's trigger, from the store; null when unknown. */
  triggerOf?: (runId: string) => string | null;
  /** Now, on the clock of whoever asks (epoch ms): a scan or patch time after it (beyond CLOCK_SKEW_MS) is no evidence. */
  now: number;
}

/**
 * How far a scan or patch time may lie ahead of the reader's clock and still count: the time was written by the
 * clock of the machine that scanned or patched, and is read on another. NTP keeps clocks within a second of each
 * other, but a laptop or VM just resumed, or a host without NTP, can be a few minutes off; five minutes is the
 * tolerance Kerberos (and Active Directory) allow for the same question. A time further ahead is a wrong clock or an
 * edited annotation, never a patch that happened: taking it would hide the updates a scan says are pending (a patch
 * "newer" than every scan, "patched 0s ago", for years).
 */
export const CLOCK_SKEW_MS = 5 * 60_000;

/**
 * An annotation's time: null when absent; `untrusted` when it is not a time or lies in the future, so that it is
 * named rather than taken (or silently ignored).
 */
function evidenceTime(annotations: Record<string, string>, annotation: string, of: string, now: number, untrusted: NodeStatus['untrusted']): string | null {
  const value = annotations[annotation];
  if (value === undefined) return null;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) {
    untrusted.push({ annotation, problem: `is ${JSON.stringify(value.slice(0, 40))}, not a time: no evidence of ${of}` });
    return null;
  }
  if (ms > now + CLOCK_SKEW_MS) {
    untrusted.push({ annotation, problem: `is ${JSON.stringify(value.slice(0, 40))}, in the future: no evidence of ${of}` });
    return null;
  }
  return new Date(ms).toISOString();
}

export function nodeStatus(node: ClusterNode, options: StatusOptions): NodeStatus {
  const a = node.annotations;
  const linux = node.labels[OS_LABEL] === 'linux';
  const untrusted: NodeStatus['untrusted'] = [];
  const scannedAt = evidenceTime(a, SCAN_ANNOTATIONS.time, 'a scan', options.now, untrusted);
  const scanOk = scannedAt !== null && a[SCAN_ANNOTATIONS.result] === 'ok';
  const pendingText = a[SCAN_ANNOTATIONS.securityUpdatesPending];
  const scannedPending = scanOk && pendingText !== undefined && /^\d+$/.test(pendingText) ? Number(pendingText) : null;
  const patchStatus = a[ANNOTATIONS.status];
  const patchedAt = evidenceTime(a, ANNOTATIONS.time, 'a patch', options.now, untrusted);
  const patchOk = patchStatus === 'patched' || patchStatus === 'no-updates';
  const runId = a[ANNOTATIONS.run] ?? null;
  // A successful patch newer than the scan applied every security update the scan saw (held packages aside).
  const patchIsNewer = patchOk && patchedAt !== null && (scannedAt === null || Date.parse(patchedAt) > Date.parse(scannedAt));
  const securityUpdatesPending = patchIsNewer ? 0 : scannedPending;
  const securityUpdates = patchIsNewer || scannedPending === null ? [] : (a[SCAN_ANNOTATIONS.securityUpdates] ?? '').split(',').filter((p) => p.length > 0);
  const scanReboot = a[SCAN_ANNOTATIONS.rebootRequired];
  const markReboot = a[ANNOTATIONS.rebootPending] === 'true';
  const rebootRequired = patchIsNewer ? markReboot : scanOk && scanReboot !== undefined ? scanReboot === 'true' || markReboot : markReboot ? true : null;
  const known = securityUpdatesPending !== null && rebootRequired !== null;
  const compliant = linux && known && securityUpdatesPending === 0 && rebootRequired === false && untrusted.length === 0;
  const evidence = !linux || !known || securityUpdatesPending !== 0 || rebootRequired !== false;
  const why = !evidence
    ? ''
    : !linux
      ? 'not Linux'
      : scannedAt !== null && !scanOk && !patchIsNewer
        ? 'last scan failed'
        : securityUpdatesPending === null
          ? untrusted.some((u) => u.annotation === SCAN_ANNOTATIONS.time) ? '' : 'never scanned'
          : securityUpdatesPending > 0
            ? `${securityUpdatesPending} security update(s) pending`
            : 'reboot pending';
  const reason = [...(linux ? untrusted.map((u) => `${u.annotation} ${u.problem}`) : []), ...(why ? [why] : [])].join('; ');
  return {
    name: node.name,
    os: node.osImage,
    kernel: node.kernelVersion ?? null,
    linux,
    scannedAt,
    scanError: scannedAt !== null && !scanOk ? (a[SCAN_ANNOTATIONS.error] ?? 'unknown') : null,
    securityUpdatesPending,
    securityUpdates,
    rebootRequired,
    lastPatchedAt: patchOk ? patchedAt : null,
    lastPatch:
      patchedAt === null
        ? null
        : {
            at: patchedAt,
            status: patchStatus ?? 'unknown',
            runId,
            trigger: runId && options.triggerOf ? options.triggerOf(runId) : null,
            hash: a[ANNOTATIONS.version] ?? null,
            error: a[ANNOTATIONS.error] ?? null,
          },
    cordoned: node.unschedulable,
    cordonedBy: node.unschedulable ? (a[ANNOTATIONS.cordonedBy] ?? 'someone else (no patchpilot annotation)') : null,
    disabled: node.labels[options.labelKey] === DISABLED,
    compliant,
    reason,
    untrusted,
  };
}

const byName = new Intl.Collator('en', { numeric: true }).compare;

export function clusterStatus(name: string, nodes: readonly ClusterNode[], options: StatusOptions): ClusterStatus {
  const statuses = nodes.map((n) => nodeStatus(n, options)).sort((x, y) => byName(x.name, y.name));
  const linux = statuses.filter((n) => n.linux);
  const scans = linux.map((n) => n.scannedAt).filter((t): t is string => t !== null).sort();
  const unpatched = [...linux].sort((x, y) => (x.lastPatchedAt ?? '').localeCompare(y.lastPatchedAt ?? '') || byName(x.name, y.name));
  const oldest = unpatched[0];
  return {
    name,
    compliant: linux.filter((n) => n.compliant).length,
    total: linux.length,
    lastScanAt: scans.at(-1) ?? null,
    oldestUnpatched: oldest ? { name: oldest.name, lastPatchedAt: oldest.lastPatchedAt } : null,
    nodes: statuses,
  };
}

/** The stable `--json` shape (README, issue 15): exactly these fields, whatever else the status knows; `reason` is null when compliant. */
export function statusJson(clusters: readonly ClusterStatus[]): unknown {
  return {
    clusters: clusters.map((c) => ({
      name: c.name,
      compliant: c.compliant,
      total: c.total,
      lastScanAt: c.lastScanAt,
      nodes: c.nodes.map((n) => ({
        name: n.name,
        os: n.os,
        kernel: n.kernel,
        securityUpdatesPending: n.securityUpdatesPending,
        rebootRequired: n.rebootRequired,
        lastPatchedAt: n.lastPatchedAt,
        cordoned: n.cordoned,
        compliant: n.compliant,
        reason: n.compliant ? null : n.reason,
      })),
      ...(c.error !== undefined ? { error: c.error } : {}),
    })),
  };
}

/** A cluster's status read from the cluster itself; an unreadable cluster is reported as such, never as compliant. */
export async function readClusterStatus(
  cluster: Pick<ClusterPort, 'name' | 'listNodes'>,
  options: StatusOptions & { signal?: AbortSignal },
): Promise<ClusterStatus> {
  try {
    return clusterStatus(cluster.name, await cluster.listNodes(options.signal), options);
  } catch (err) {
    return { name: cluster.name, compliant: 0, total: 0, lastScanAt: null, oldestUnpatched: null, nodes: [], error: err instanceof Error ? err.message : String(err) };
  }
}

/** The trigger id a run was started for, from the store's record of it (null when the run is not in this store). */
export function triggerOfRun(store: Pick<Store, 'getRun'>, runId: string): string | null {
  const trigger = store.getRun(runId)?.trigger as { id?: unknown } | undefined;
  return typeof trigger?.id === 'string' ? trigger.id : null;
}

/** The "last patched" cell: how long ago and how, "unknown" when its time is no evidence, else "never". */
export function lastPatchText(node: NodeStatus, now: number): string {
  const p = node.lastPatch;
  if (p) return `${age(p.at, now)} ${p.status}${p.trigger ? ` (trigger ${p.trigger})` : ''}${p.hash ? ` ${p.hash}` : ''}`;
  return node.untrusted.some((u) => u.annotation === ANNOTATIONS.time) ? 'unknown' : 'never';
}

/** "3m", "5h", "2d": how long ago, for people. */
export function age(iso: string | null, now: number): string {
  if (iso === null) return 'never';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** One line per cluster, the same in the terminal, in Slack and on the App Home tab. */
export function clusterSummary(status: ClusterStatus, now: number): string {
  if (status.error !== undefined) return `cluster ${status.name}: status unknown (${status.error})`;
  const oldest = status.oldestUnpatched;
  return [
    `cluster ${status.name}: ${status.compliant} of ${status.total} Linux node(s) compliant`,
    oldest ? `oldest unpatched: ${oldest.name} (${oldest.lastPatchedAt === null ? 'never patched' : `patched ${age(oldest.lastPatchedAt, now)}`})` : 'no Linux node',
    `last scan: ${status.lastScanAt === null ? 'never (run patchpilot scan)' : age(status.lastScanAt, now)}`,
  ].join('; ');
}

/** What the pending column shows: the count and the first few names. */
export function pendingText(node: NodeStatus, names = 3): string {
  if (node.securityUpdatesPending === null) return node.scanError ? 'scan failed' : 'unknown';
  if (node.securityUpdatesPending === 0) return '0';
  const shown = node.securityUpdates.slice(0, names);
  const more = node.securityUpdatesPending - shown.length;
  return `${node.securityUpdatesPending} (${shown.join(', ')}${more > 0 ? `, +${more}` : ''})`;
}
