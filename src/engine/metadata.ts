/**
 * The labels and annotations patchpilot writes on nodes. The cluster is the system of record (as in
 * system-upgrade-controller and Palette): a replacement orchestrator can tell from these alone what is done and which
 * cordons are its own.
 */

const PREFIX = 'patchpilot.io';

export const ANNOTATIONS = {
  /** Set together with spec.unschedulable, in the same patch: proves the cordon is ours (kured keeps this in its lock). */
  cordonedBy: `${PREFIX}/cordoned-by`,
  /**
   * The lease generation (fencing token) the cordon was made under, beside cordoned-by: a holder with a later
   * generation knows the run that made it lost the cluster, and finishes the node instead of leaving it cordoned.
   */
  cordonGeneration: `${PREFIX}/cordon-generation`,
  status: `${PREFIX}/last-patch-status`,
  time: `${PREFIX}/last-patch-time`,
  version: `${PREFIX}/patched-version`,
  error: `${PREFIX}/last-patch-error`,
  rebootPending: `${PREFIX}/reboot-pending`,
  run: `${PREFIX}/last-patch-run`,
} as const;

export type PatchStatus = 'patched' | 'no-updates' | 'failed';

export interface MarkRequest {
  labelKey: string;
  hash: string;
  runId: string;
  status: PatchStatus;
  at: number;
  error: string | null;
  rebootPending: boolean;
}

/** Labels and annotations for the final mark. Only success moves the task label: a failed node stays eligible. */
export function markMetadata(req: MarkRequest): { labels: Record<string, string>; annotations: Record<string, string | null> } {
  const succeeded = req.status !== 'failed';
  const annotations: Record<string, string | null> = {
    [ANNOTATIONS.status]: req.status,
    [ANNOTATIONS.time]: new Date(req.at).toISOString(),
    [ANNOTATIONS.run]: req.runId,
    [ANNOTATIONS.error]: req.error,
    [ANNOTATIONS.rebootPending]: req.rebootPending ? 'true' : null,
  };
  // A failure keeps the last good version visible: null would delete it.
  if (succeeded) annotations[ANNOTATIONS.version] = req.hash;
  return { labels: succeeded ? { [req.labelKey]: req.hash } : {}, annotations };
}

/**
 * What a scan (the agent report-only, issue 15) leaves on the node. Values are strings, as annotations must be; the
 * package list is capped so that the annotations stay far below the API server's 256 KiB limit on all of them.
 */
export const SCAN_ANNOTATIONS = {
  time: `${PREFIX}/scan-time`,
  /** `ok` or `failed` (then `error` says why). */
  result: `${PREFIX}/scan-result`,
  error: `${PREFIX}/scan-error`,
  securityUpdatesPending: `${PREFIX}/security-updates-pending`,
  /** Comma-separated package names, at most SCAN_PACKAGE_LIMIT of them, then `+N more`. */
  securityUpdates: `${PREFIX}/security-updates`,
  rebootRequired: `${PREFIX}/scan-reboot-required`,
} as const;

export const SCAN_PACKAGE_LIMIT = 100;

export interface ScanFindings {
  at: number;
  /** null when the scan failed: nothing is known then, and nothing may be taken as compliant. */
  pending: string[] | null;
  rebootRequired: boolean | null;
  error: string | null;
}

/** The annotations for a scan's findings (a failed scan clears the findings of an earlier one). */
export function scanMetadata(scan: ScanFindings): Record<string, string | null> {
  const failed = scan.pending === null;
  const names = scan.pending ?? [];
  const shown = names.slice(0, SCAN_PACKAGE_LIMIT);
  const list = shown.join(',') + (names.length > shown.length ? `,+${names.length - shown.length} more` : '');
  return {
    [SCAN_ANNOTATIONS.time]: new Date(scan.at).toISOString(),
    [SCAN_ANNOTATIONS.result]: failed ? 'failed' : 'ok',
    [SCAN_ANNOTATIONS.error]: failed ? (scan.error ?? 'the scan failed').slice(0, 1000) : null,
    [SCAN_ANNOTATIONS.securityUpdatesPending]: failed ? null : String(names.length),
    [SCAN_ANNOTATIONS.securityUpdates]: failed ? null : list,
    [SCAN_ANNOTATIONS.rebootRequired]: failed || scan.rebootRequired === null ? null : String(scan.rebootRequired),
  };
}
