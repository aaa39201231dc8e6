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
