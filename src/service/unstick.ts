/**
 * `unstick`: undoes what wedges an On-Demand Update, and only that. Each action is taken only when its condition
 * holds, said in a line, and audited (who, what, which cluster); a second call finds nothing to do and says so.
 * - Palette: clears `onDemandPatchAfter` when it is stuck in the past (the seed's procedure through the API); a
 *   pending or unset value is left alone.
 * - The Lease: released only when its holder is provably gone: a patchpilot process of this host whose pid no longer
 *   runs. A record that merely looks expired (renewTime plus duration in the past) is left to the next orchestrator,
 *   which takes it over once it has seen it unchanged for a whole duration by its own clock: judging a holder dead by
 *   comparing its renewTime with our wall clock is what clock skew between two machines turns into two holders.
 * - Runs: a run still `scheduled` whose start time has passed while no orchestrator holds the Lease will never start by
 *   itself (and would be resumed, with its old plan, ahead of any new run): it is finished as cancelled.
 */
import { hostname } from 'node:os';
import { classifyStoredOnDemand } from '../engine/schedule.ts';
import type { AuditEntry, RunRecord } from '../store/types.ts';
import { describeHolder, isProcessAlive, parseHolder } from './holder.ts';
import { leaseName } from './orchestrator.ts';
import type { ClusterTarget } from './targets.ts';

export interface UnstickOptions {
  /** Who asks (a user, a Slack user id): the audit records' actor. */
  by: string;
  /** Whether a process of this host is running (default: process.kill(pid, 0)); injected by tests. */
  pidAlive?: (pid: number) => boolean;
  signal?: AbortSignal;
}

export interface UnstickResult {
  cluster: string;
  changed: boolean;
  /** What was changed, one line each. */
  actions: string[];
  /** What was looked at and left as it is, and why. */
  notes: string[];
}

const iso = (ms: number) => new Date(ms).toISOString();

export async function unstick(target: ClusterTarget, options: UnstickOptions): Promise<UnstickResult> {
  if (typeof options.by !== 'string' || options.by.trim() === '') throw new TypeError('unstick needs `by`: who asks (for the audit log)');
  const by = options.by;
  const pidAlive = options.pidAlive ?? isProcessAlive;
  const store = target.store;
  // Each change is audited after it is made (Palette's timestamp, the Lease): a store that cannot take the record
  // refuses before anything is changed, rather than after.
  store?.assertWritable();
  const now = target.clock.now();
  const actions: string[] = [];
  const notes: string[] = [];
  const audit = (entry: Omit<AuditEntry, 'at' | 'actor'>) => {
    store?.appendAudit({ at: target.clock.now(), actor: by, ...entry, details: { cluster: target.name, ...entry.details } });
  };

  // 1. Palette's stuck timestamp.
  if (target.palette) {
    const { client, clusterUid } = target.palette;
    const config = await client.getOsPatchConfig(clusterUid);
    const verdict = classifyStoredOnDemand(config.onDemandPatchAfter, now);
    if (verdict.state === 'stuck') {
      const cleared = await client.clearOnDemandPatchAfter(clusterUid);
      if (cleared.changed) {
        actions.push(`cleared Palette's onDemandPatchAfter of cluster ${clusterUid} (was ${cleared.previous}, in the past): On-Demand Update works again`);
        audit({ action: 'palette.on-demand-cleared', details: { clusterUid, previous: cleared.previous } });
      }
    } else if (verdict.state === 'pending') {
      notes.push(`Palette's onDemandPatchAfter of cluster ${clusterUid} is ${config.onDemandPatchAfter}, in the future: an On-Demand Update is scheduled, left as it is`);
    } else {
      notes.push(`Palette's onDemandPatchAfter of cluster ${clusterUid} is unset: nothing to clear`);
    }
  } else {
    notes.push('Palette is not configured for this cluster: its onDemandPatchAfter was not checked');
  }

  // 2. The Lease.
  const name = leaseName(target.name);
  const active = store ? store.listRuns({ cluster: target.name, active: true }) : [];
  let lease = await target.cluster.readLease(name, options.signal);
  let free = lease === null || lease.holder === null || (lease.expiresAt !== null && lease.expiresAt <= now);
  if (lease?.holder) {
    const holder = lease.holder;
    const parts = parseHolder(holder);
    const goneFromThisHost = parts !== null && parts.host === hostname() && !pidAlive(parts.pid);
    const renewed = lease.renewedAt === null ? 'never renewed' : `last renewed at ${iso(lease.renewedAt)} by its record`;
    if (goneFromThisHost) {
      await target.cluster.releaseLease(name, holder);
      lease = await target.cluster.readLease(name, options.signal);
      if (lease?.holder === holder) {
        free = false;
        notes.push(`Lease ${name} of ${describeHolder(holder)} could not be released (it stays until it expires)`);
      } else if (lease?.holder) {
        // Someone took it over between our read and our release: they are alive, so nothing is stuck.
        free = false;
        notes.push(`Lease ${name} was taken over by ${describeHolder(lease.holder)} meanwhile: left to it`);
      } else {
        free = true;
        actions.push(`released Lease ${name} held by ${describeHolder(holder)} (that process is gone from this host; ${renewed})`);
        audit({ action: 'lease.released', details: { lease: name, holder, reason: 'holder process gone' } });
      }
    } else if (free) {
      notes.push(
        `Lease ${name} of ${describeHolder(holder)} looks expired (${renewed}), but its holder cannot be proven gone from here ` +
          '(another machine, whose clock may differ): left as it is; the next orchestrator takes it over once it has seen it unchanged for a whole lease duration',
      );
    } else {
      notes.push(`Lease ${name} is held by ${describeHolder(holder)} until ${iso(lease.expiresAt!)}: that orchestrator is alive, left to it`);
    }
  } else {
    notes.push(`Lease ${name} is free`);
  }

  // 3. Runs scheduled for a time that has passed, with nobody to start them.
  if (!store) notes.push('no store: runs were not checked and nothing could be audited');
  for (const run of active) {
    const notBefore = notBeforeOf(run);
    if (run.status === 'scheduled' && notBefore !== null && notBefore <= now && free) {
      const at = target.clock.now();
      const reason = `cancelled by unstick (${by}): scheduled for ${iso(notBefore)}, never started, and no orchestrator holds the cluster's Lease`;
      store!.commit({
        runId: run.id,
        at,
        run: { status: 'done', outcome: 'cancelled', reason, finishedAt: at },
        audit: [{ at, actor: by, action: 'run.unstuck', runId: run.id, details: { cluster: target.name, status: run.status, notBefore } }],
      });
      actions.push(`cancelled run ${run.id}: ${reason.replace(/^cancelled by unstick \([^)]*\): /, '')}`);
    } else if (run.status === 'scheduled') {
      notes.push(`run ${run.id} is scheduled for ${notBefore === null ? 'now' : iso(notBefore)}${free ? '' : ' and an orchestrator holds the Lease'}: left as it is`);
    } else {
      notes.push(`run ${run.id} is ${run.status}${free ? ': no orchestrator drives it; `patchpilot run` resumes it' : ''}: left as it is`);
    }
  }

  if (actions.length === 0) notes.unshift('nothing to unstick');
  return { cluster: target.name, changed: actions.length > 0, actions, notes };
}

function notBeforeOf(run: RunRecord): number | null {
  const value = (run.trigger as { notBefore?: unknown } | null)?.notBefore;
  return typeof value === 'number' ? value : null;
}
