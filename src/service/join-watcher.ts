/**
 * Patch on join (plan trigger `on-boot`, Palette's "patch on boot"): the long-running orchestrator (the in-cluster
 * Deployment, `patchpilot run` with an on-boot plan, the simulator's runner) tells the watcher about every node that
 * appears. A node that joins without the current hash (Linux, matching the plan's selector, not `disabled`) gets a run
 * of its own at once, with the engine's join plan (joinPlan: that node alone, cordoned first, no scan, no canary), so
 * that it is cordoned before the scheduler places workloads on it and then goes through the same steps as any node.
 */
import { joinPlan, type Plan } from '../engine/plan.ts';
import { versionHash } from '../engine/hash.ts';
import { selectNodes, type NodeView } from '../engine/selection.ts';
import type { Orchestrator, RunHandle } from './orchestrator.ts';

export interface JoinWatcherOptions {
  orchestrator: Orchestrator;
  /** The on-boot plan. */
  plan: Plan;
  /** The trigger whose hash joining nodes must carry (the same as the first run's). */
  triggerId: string;
  requestedBy?: string;
}

export class JoinWatcher {
  readonly #options: JoinWatcherOptions;
  readonly #hash: string;
  /** Nodes whose join run was started: a node is handled once, whatever the watch reports again. */
  readonly #started = new Set<string>();

  constructor(options: JoinWatcherOptions) {
    if (options.plan.trigger.kind !== 'on-boot') throw new Error(`patch on join needs a plan with trigger on-boot, not ${options.plan.trigger.kind}`);
    this.#options = options;
    this.#hash = versionHash(options.plan, options.triggerId);
  }

  /** Whether the node lacks the current hash and the plan covers it (the engine's selection rule, for one node). */
  needsPatch(node: NodeView): boolean {
    const { plan } = this.#options;
    return selectNodes([node], { labelKey: plan.labelKey, hash: this.#hash, nodeSelector: plan.nodeSelector }).selected.length === 1;
  }

  /** A node appeared: starts its run at once when it needs one (null when it does not, or already has one). */
  async nodeJoined(node: NodeView): Promise<RunHandle | null> {
    if (this.#started.has(node.name) || !this.needsPatch(node)) return null;
    this.#started.add(node.name);
    const { orchestrator, plan, triggerId, requestedBy = 'on-boot' } = this.#options;
    return orchestrator.start({ plan: joinPlan(plan, node.name), requestedBy, triggerId, notBefore: null });
  }
}
