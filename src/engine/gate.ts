/**
 * The health gate and the blockers, as one pure rule: given what was just observed of the cluster, may the next node
 * start? The fleet asks before every node it starts; while the answer is no it waits in `blocked` with the reason, and
 * halts with BLOCKED_TIMEOUT once it has waited longer than healthGate.blockedTimeoutSeconds.
 */
import type { ClusterHealth } from './effects.ts';
import type { Plan } from './plan.ts';

export type GateVerdict = { open: true } | { open: false; reason: string };

export interface GateContext {
  plan: Pick<Plan, 'healthGate' | 'blockers'>;
  /** Nodes this run is patching now: their NotReady (a reboot) and their cordon are expected. */
  inFlight: readonly string[];
  /** Nodes about to start: their own state is preflight's business, not the gate's. */
  starting: readonly string[];
  /**
   * Nodes this run failed: they are spent from the error budget (maxFailures), which the operator sized, so neither
   * their NotReady (a node that never came back) nor the cordon the failure policy kept on them holds the run back.
   */
  failedHere: readonly string[];
  /** Nodes a holder that lost the cluster left cordoned, which this run adopts first: not someone else's cordon. */
  adopting: readonly string[];
}

const list = (names: readonly string[], max = 5) => (names.length > max ? `${names.slice(0, max).join(', ')} and ${names.length - max} more` : names.join(', '));

/**
 * The failed nodes as a set, one per failedHere list. The gate is asked before every node starts, and a run's failures
 * grow with its size (2% of 100,000 nodes): a set of all of them built at every ask made each ask cost as much as the
 * failures so far. The fleet makes a new list at each failure and never changes one, so a list's set stays right.
 */
const failedSets = new WeakMap<readonly string[], ReadonlySet<string>>();

function failedSet(failedHere: readonly string[]): ReadonlySet<string> {
  let set = failedSets.get(failedHere);
  if (set === undefined) {
    set = new Set(failedHere);
    failedSets.set(failedHere, set);
  }
  return set;
}

/** Every reason the gate is closed, joined; open when there is none. */
export function gateVerdict(health: ClusterHealth, context: GateContext): GateVerdict {
  const reasons: string[] = [];
  const failed = failedSet(context.failedHere);
  const ours = new Set([...context.inFlight, ...context.starting, ...context.adopting]);
  const others = health.nodes.filter((n) => !ours.has(n.name) && !failed.has(n.name));

  if (!health.controlPlane.ready) reasons.push(`the control plane is not ready (/readyz: ${health.controlPlane.detail})`);

  const notReady = others.filter((n) => !n.ready).map((n) => n.name);
  const { maxNotReady } = context.plan.healthGate;
  if (notReady.length > maxNotReady) {
    reasons.push(`${notReady.length} other node(s) NotReady: ${list(notReady)} (healthGate.maxNotReady ${maxNotReady})`);
  }

  const leftCordoned = others.filter((n) => n.unschedulable && n.cordonedBy !== null).map((n) => `${n.name} (run ${n.cordonedBy})`);
  if (leftCordoned.length > 0) reasons.push(`node(s) still cordoned by patchpilot: ${list(leftCordoned)}`);

  if (health.blockingPods.length > 0) {
    reasons.push(`blocking pod(s) running: ${list(health.blockingPods)} (blockers.podSelector "${context.plan.blockers.podSelector}")`);
  }

  const prometheus = context.plan.blockers.prometheus;
  if (prometheus && health.alerts) {
    if ('error' in health.alerts) reasons.push(`cannot ask Prometheus for alerts: ${health.alerts.error}`);
    else {
      const filter = new RegExp(prometheus.alertFilter);
      const firing = [...new Set(health.alerts.firing.filter((name) => filter.test(name)))];
      if (firing.length > 0) reasons.push(`alert(s) firing: ${list(firing)}`);
    }
  }

  return reasons.length === 0 ? { open: true } : { open: false, reason: reasons.join('; ') };
}
