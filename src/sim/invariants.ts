/**
 * The safety invariants of a simulated run: the figures the simulated cluster feeds as things happen (how many nodes
 * patchpilot had cordoned at once, patch Jobs per node and hash, packages upgraded that must not be), and the check of
 * a finished run against them. Every broken invariant is one sentence.
 */
import { resolveLimits, type Plan } from '../engine/plan.ts';
import type { SimNodeResult } from './runner.ts';
import type { Invariant } from './scenario.ts';

export interface InvariantResult {
  name: Invariant;
  ok: boolean;
  detail: string;
}

/** What a run did that the invariants judge, kept as the run goes. */
export interface InvariantStats {
  maxCordonedByUs: number;
  maxControlPlanesCordoned: number;
  /** Patch Jobs per `node@hash`: more than one means a node was patched twice for one hash. */
  patchJobs: Map<string, number>;
  /** Held packages that an agent upgraded anyway, as `node:package`. */
  heldUpgraded: string[];
  /** Kubernetes or runtime packages that an agent upgraded, as `node:package`. */
  kubernetesUpgraded: string[];
  /** Nodes that joined and got workloads before anyone cordoned them (patch on join came too late). */
  workloadsBeforeCordon: string[];
}

/** The simulated cluster tells it what happens; it keeps the figures of the current run. */
export class InvariantMonitor {
  /** Nodes cordoned by patchpilot whose node run has not finished (a failed node left cordoned on purpose is done), and whether each is a control plane. */
  readonly #cordonedInFlight = new Map<string, boolean>();
  #controlPlanesInFlight = 0;
  readonly stats: InvariantStats = {
    maxCordonedByUs: 0,
    maxControlPlanesCordoned: 0,
    patchJobs: new Map(),
    heldUpgraded: [],
    kubernetesUpgraded: [],
    workloadsBeforeCordon: [],
  };

  isCordonedInFlight(name: string): boolean {
    return this.#cordonedInFlight.has(name);
  }

  /** patchpilot's cordon is on the node (a cordon, or a write of the Node carrying our cordoned-by annotation). */
  cordoned(name: string, controlPlane: boolean): void {
    if (!this.#cordonedInFlight.has(name)) {
      this.#cordonedInFlight.set(name, controlPlane);
      if (controlPlane) this.#controlPlanesInFlight += 1;
    }
    this.stats.maxCordonedByUs = Math.max(this.stats.maxCordonedByUs, this.#cordonedInFlight.size);
    if (controlPlane) this.stats.maxControlPlanesCordoned = Math.max(this.stats.maxControlPlanesCordoned, this.#controlPlanesInFlight);
  }

  /** The cordon no longer counts: lifted, the node gone, or the engine finished with the node. */
  released(name: string): void {
    const controlPlane = this.#cordonedInFlight.get(name);
    if (controlPlane === undefined) return;
    this.#cordonedInFlight.delete(name);
    if (controlPlane) this.#controlPlanesInFlight -= 1;
  }

  patchJob(node: string, hash: string): void {
    const key = `${node}@${hash}`;
    this.stats.patchJobs.set(key, (this.stats.patchJobs.get(key) ?? 0) + 1);
  }

  upgraded(node: string, pkg: string, kind: { held: boolean; kubernetes: boolean }): void {
    if (kind.held) this.stats.heldUpgraded.push(`${node}:${pkg}`);
    if (kind.kubernetes) this.stats.kubernetesUpgraded.push(`${node}:${pkg}`);
  }

  workloadsLanded(node: string): void {
    this.stats.workloadsBeforeCordon.push(node);
  }

  /** Starts the figures afresh for a new run (cordons still in flight count from the start). */
  resetRun(): void {
    this.stats.maxCordonedByUs = this.#cordonedInFlight.size;
    this.stats.maxControlPlanesCordoned = this.#controlPlanesInFlight;
    this.stats.patchJobs.clear();
    this.stats.heldUpgraded.length = 0;
    this.stats.kubernetesUpgraded.length = 0;
    this.stats.workloadsBeforeCordon.length = 0;
  }
}

/**
 * Failures after which the engine keeps a healthy node cordoned on purpose, for a human. Stated here again rather than
 * imported from the node machine on purpose: an oracle that reads the implementation's list cannot catch it growing.
 */
const KEPT_CORDONED = new Set(['DPKG_INTERRUPTED', 'KUBELET_CHANGED']);

/**
 * The invariants of one run. "one-node-at-a-time" is a requirement only where the plan asks for one node at a time
 * (or the scenario names it), so it is left out of runs with a higher concurrency.
 */
export function checkInvariants(plan: Plan, nodes: readonly SimNodeResult[], stats: InvariantStats, requested: readonly Invariant[] = []): InvariantResult[] {
  const result = (name: Invariant, ok: boolean, good: string, bad: string): InvariantResult => ({ name, ok, detail: ok ? good : bad });
  const leftCordoned = nodes.filter((n) => {
    if (!n.cordonedAtEnd) return false;
    if (n.error === 'REJOIN_TIMEOUT' || n.error === 'NODE_NOT_READY') return false;
    if (n.error !== null && KEPT_CORDONED.has(n.error)) return false;
    if (n.error === 'DRAIN_TIMEOUT' && plan.drain.onTimeout === 'keep-cordoned') return false;
    return true;
  });
  // Percentages are of the nodes the run selected (every node it considered, patched or not).
  const selected = nodes.filter((n) => n.result !== 'not-selected' && n.result !== 'excluded').length;
  const { concurrency } = resolveLimits(plan, selected);
  const cordonedWithout = nodes.filter((n) => n.result === 'no-updates' && n.timeline.some((e) => e.step === 'cordon')).map((n) => n.name);
  const twice = [...stats.patchJobs.entries()].filter(([, count]) => count > 1).map(([key]) => key);
  const k8s = [...new Set([...stats.kubernetesUpgraded, ...stats.heldUpgraded])];
  const all = [
    result(
      'no-node-left-cordoned',
      leftCordoned.length === 0,
      'no healthy node was left cordoned by patchpilot',
      `left cordoned by patchpilot while healthy: ${leftCordoned.map((n) => n.name).join(', ')}`,
    ),
    result('k8s-packages-unchanged', k8s.length === 0, 'no Kubernetes, runtime or held package was upgraded', `upgraded anyway: ${k8s.join(', ')}`),
    result(
      'one-node-at-a-time',
      stats.maxCordonedByUs <= 1,
      'never more than one node cordoned by patchpilot at once',
      `${stats.maxCordonedByUs} nodes were cordoned by patchpilot at once`,
    ),
    result(
      'concurrency-respected',
      stats.maxCordonedByUs <= concurrency,
      `at most ${concurrency} node(s) in maintenance at once`,
      `${stats.maxCordonedByUs} nodes were cordoned by patchpilot at once (concurrency ${plan.concurrency})`,
    ),
    result(
      'control-plane-one-at-a-time',
      stats.maxControlPlanesCordoned <= 1,
      'never more than one control-plane node in maintenance',
      `${stats.maxControlPlanesCordoned} control-plane nodes were in maintenance at once`,
    ),
    result('patched-at-most-once', twice.length === 0, 'every node was patched at most once for this hash', `patched twice for one hash: ${twice.join(', ')}`),
    result(
      'no-updates-never-cordoned',
      cordonedWithout.length === 0,
      'no node without updates was cordoned',
      `cordoned although nothing applied: ${cordonedWithout.join(', ')}`,
    ),
    result(
      'cordoned-before-workloads',
      stats.workloadsBeforeCordon.length === 0,
      'every node that joined was cordoned before workloads landed on it',
      `workloads landed before the cordon on: ${stats.workloadsBeforeCordon.join(', ')}`,
    ),
  ];
  return all.filter((i) => i.name !== 'one-node-at-a-time' || concurrency === 1 || requested.includes(i.name));
}
