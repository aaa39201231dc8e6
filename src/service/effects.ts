/**
 * The engine's effects on top of a ClusterPort. Each is idempotent and re-reads the cluster before acting, so that a
 * step repeated after a crash finds its own earlier work and does not do it twice.
 */
import type { ClusterNode, ClusterPort } from '../cluster/port.ts';
import { patchJobName } from '../cluster/jobs.ts';
import { EffectError, type EngineEffects, type NodeState } from '../engine/effects.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import { DISABLED } from '../engine/selection.ts';

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

export interface EffectsOptions {
  /** Our lease generation (fencing token); without one (tests of the engine alone) no cordon is ever adopted. */
  generation?: () => number;
  /** Told when a stale holder's cordon is taken over, for the audit log. */
  onAdopted?: (node: string, from: { runId: string; generation: number }) => void;
}

export function clusterEffects(cluster: ClusterPort, options: EffectsOptions = {}): EngineEffects {
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

    async drainNode({ node, gracePeriodSeconds, podSelector, giveUpAt }, signal) {
      return cluster.drain(node, { gracePeriodSeconds, podSelector, giveUpAt, signal });
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
      const generation = options.generation?.();
      return (await cluster.listNodes(signal)).map((n) => {
        const stale = cordonGeneration(n);
        const unfinished = n.unschedulable && generation !== undefined && stale !== null && stale < generation;
        return { name: n.name, labels: n.labels, ...(unfinished ? { unfinished: true } : {}) };
      });
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
