/**
 * The engine's effects on top of a ClusterPort. Each is idempotent and re-reads the cluster before acting, so that a
 * step repeated after a crash finds its own earlier work and does not do it twice.
 */
import { sleep } from '../cluster/in-process.ts';
import type { ClusterNode, ClusterPort, PodInfo } from '../cluster/port.ts';
import type { Clock } from '../engine/clock.ts';
import { prometheusAlerts, type AlertSource } from './prometheus.ts';
import { patchJobName } from '../cluster/jobs.ts';
import { EffectError, type EngineEffects, type NodeState } from '../engine/effects.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import { DISABLED, type NodeView } from '../engine/selection.ts';

export function nodeState(node: ClusterNode | null, name: string): NodeState {
  if (!node) {
    return { name, labels: {}, exists: false, ready: false, unschedulable: false, cordonedBy: null, bootId: '', kubeletVersion: '' };
  }
  return {
    name: node.name,
    labels: node.labels,
    exists: true,
    ready: node.ready,
    unschedulable: node.unschedulable,
    cordonedBy: node.annotations[ANNOTATIONS.cordonedBy] ?? null,
    bootId: node.bootId,
    kubeletVersion: node.kubeletVersion,
  };
}

/**
 * The lease generation of a cordon when patchpilot made it under one (the cordon-generation annotation), else null
 * (someone else's cordon, or one made before cordons carried it).
 */
export function cordonGeneration(node: ClusterNode): number | null {
  if (node.annotations[ANNOTATIONS.cordonedBy] === undefined) return null;
  const raw = node.annotations[ANNOTATIONS.cordonGeneration];
  if (raw === undefined || !/^\d+$/.test(raw)) return null;
  return Number(raw);
}

/**
 * The nodes as selection sees them (src/engine/selection.ts): a node still cordoned by patchpilot under a lease
 * generation older than `generation` was left mid-patch by a holder that lost the cluster (unfinished). Without a
 * generation no cordon counts as such.
 */
export function nodeViews(nodes: readonly ClusterNode[], generation: number | undefined): NodeView[] {
  return nodes.map((n) => {
    const stale = cordonGeneration(n);
    const unfinished = n.unschedulable && generation !== undefined && stale !== null && stale < generation;
    return { name: n.name, labels: n.labels, ...(unfinished ? { unfinished: true } : {}) };
  });
}

/** How often a soak looks at its nodes. */
export const SOAK_POLL_MS = 10_000;

export interface ClusterEffectsOptions {
  clock: Clock;
  /** Where firing alerts come from (default: Prometheus over HTTP). */
  alerts?: AlertSource;
  /** Our lease generation (fencing token); without one (tests of the engine alone) no cordon is ever adopted. */
  generation?: () => number;
  /** Told when a stale holder's cordon is taken over, for the audit log. */
  onAdopted?: (node: string, from: { runId: string; generation: number }) => void;
}

const finished = (pod: PodInfo) => pod.phase === 'Succeeded' || pod.phase === 'Failed';

export function clusterEffects(cluster: ClusterPort, options: ClusterEffectsOptions): EngineEffects {
  const { clock, alerts = prometheusAlerts } = options;

  /** Every node must be there and Ready; at the end of the soak, its unfinished pods must be Ready too. */
  async function checkSoak(nodes: readonly string[], final: boolean, signal: AbortSignal): Promise<void> {
    for (const name of nodes) {
      const node = await cluster.getNode(name, signal);
      if (!node) throw new EffectError('SOAK_FAILED', `node ${name} disappeared during its soak`);
      if (!node.ready) throw new EffectError('SOAK_FAILED', `node ${name} went NotReady during its soak`);
      if (!final) continue;
      const unready = (await cluster.listPods({ node: name }, signal)).filter((p) => !finished(p) && !p.ready);
      if (unready.length > 0) {
        const names = unready.slice(0, 5).map((p) => `${p.namespace}/${p.name}`).join(', ');
        throw new EffectError('SOAK_FAILED', `${unready.length} pod(s) on ${name} not Ready at the end of its soak: ${names}`);
      }
    }
  }

  return {
    async inspectNode({ node, runId }, signal) {
      const current = await cluster.getNode(node, signal);
      const generation = options.generation?.();
      const staleGeneration = current ? cordonGeneration(current) : null;
      if (current?.unschedulable && generation !== undefined && staleGeneration !== null && staleGeneration < generation) {
        // A cordon a patchpilot run made under an older lease generation: its holder lost the cluster (we hold it now)
        // and left the node half-done. It becomes ours to finish, so the node is neither skipped nor left cordoned.
        const from = { runId: current.annotations[ANNOTATIONS.cordonedBy] ?? '', generation: staleGeneration };
        if (from.runId !== runId) {
          await cluster.patchNodeMetadata(node, { annotations: { [ANNOTATIONS.cordonedBy]: runId, [ANNOTATIONS.cordonGeneration]: String(generation) } }, signal);
          options.onAdopted?.(node, from);
          return nodeState(await cluster.getNode(node, signal), node);
        }
      }
      return nodeState(current, node);
    },

    async cordonNode({ runId, node }, signal) {
      const result = await cluster.cordon(node, runId, signal);
      // Preflight saw it schedulable; someone cordoned it since. Their cordon wins and we must not claim it.
      if (result === 'foreign') throw new EffectError('API_ERROR', `node ${node} was cordoned by someone else during preflight`);
      return null;
    },

    async drainNode({ node, gracePeriodSeconds, podSelector, force, deleteEmptyDirData, giveUpAt }, signal) {
      return cluster.drain(node, { gracePeriodSeconds, podSelector, force: force ?? false, deleteEmptyDirData: deleteEmptyDirData ?? false, giveUpAt, signal });
    },

    async runPatchJob(input, signal) {
      const jobName = patchJobName(input.mode, input.node, input.hash);
      await cluster.startPatchJob({ ...input, jobName, downloadOnly: false }, signal);
      return cluster.awaitAgentReport(jobName, signal);
    },

    async rebootNode({ runId, node, bootIdBefore }, signal) {
      const current = await cluster.getNode(node, signal);
      if (!current) throw new EffectError('NODE_GONE', `node ${node} disappeared before its reboot`);
      // Already rebooted (we crashed after asking): asking again would reboot it a second time.
      if (current.bootId !== bootIdBefore) return null;
      await cluster.reboot(node, `${runId}/${node}`, signal);
      return null;
    },

    async awaitRejoin({ node, bootIdBefore }, signal) {
      return nodeState(await cluster.awaitReady(node, bootIdBefore, signal), node);
    },

    async uncordonNode({ runId, node }, signal) {
      await cluster.uncordon(node, runId, signal);
      return null;
    },

    async markNode({ node, labels, annotations }, signal) {
      // An operator who set a task label to "disabled" while the node was in maintenance keeps their opt-out: the
      // annotations still say what happened, the label is left alone.
      const keepLabelValues = Object.fromEntries(Object.keys(labels).map((key) => [key, DISABLED]));
      await cluster.patchNodeMetadata(node, { labels, annotations, keepLabelValues }, signal);
      return null;
    },

    async listNodes(_input, signal) {
      return nodeViews(await cluster.listNodes(signal), options.generation?.());
    },

    async scanNode(input, signal) {
      return cluster.scanNode(input, signal);
    },

    async soakNodes({ nodes, until }, signal) {
      for (;;) {
        const now = clock.now();
        if (now >= until) {
          await checkSoak(nodes, true, signal);
          return null;
        }
        await checkSoak(nodes, false, signal);
        await sleep(clock, Math.min(SOAK_POLL_MS, until - now), signal);
      }
    },

    async observeCluster({ podSelector, prometheus }, signal) {
      const [nodes, controlPlane, pods, firing] = await Promise.all([
        cluster.unhealthyNodes(signal),
        cluster.controlPlaneReady(signal),
        podSelector.trim() === '' ? Promise.resolve([]) : cluster.listPods({ selector: podSelector }, signal),
        prometheus === null
          ? Promise.resolve(null)
          : alerts.firingAlerts(prometheus.url, signal).then(
              (names) => ({ firing: names }),
              (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) }),
            ),
      ]);
      return {
        nodes,
        controlPlane,
        blockingPods: pods.filter((p) => !finished(p)).map((p) => `${p.namespace}/${p.name}`),
        alerts: firing,
      };
    },

    async prefetch({ nodes, ...spec }, signal) {
      const outcomes = await Promise.allSettled(
        nodes.map(async (node) => {
          const jobName = patchJobName(spec.mode, node, spec.hash, { downloadOnly: true });
          await cluster.startPatchJob({ ...spec, node, jobName, downloadOnly: true }, signal);
          await cluster.awaitAgentReport(jobName, signal);
          return node;
        }),
      );
      return {
        prefetched: nodes.filter((_, i) => outcomes[i]?.status === 'fulfilled'),
        failed: nodes.filter((_, i) => outcomes[i]?.status === 'rejected'),
      };
    },
  };
}
