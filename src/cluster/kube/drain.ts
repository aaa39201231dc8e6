/**
 * Draining a node as `kubectl drain --ignore-daemonsets` does (and, like it, refusing up front, evicting nothing, when
 * a pod has no controller or has emptyDir data the plan did not allow to lose: drain-rules.ts), through the Eviction API so that PodDisruptionBudgets
 * are honoured: DaemonSet pods (their controller would put them straight back), mirror pods (the kubelet owns them)
 * and pods that already finished are left alone; every other pod is evicted, a refused eviction (429: a PDB) is asked
 * again every poll until `giveUpAt`, and an evicted pod counts as gone once it no longer exists (or its name belongs
 * to a new pod). What is still refused or still terminating at `giveUpAt` is returned as `blocked`, with the reason.
 */
import type { CoreV1Api, V1Eviction, V1Pod } from '@kubernetes/client-node';
import type { Clock } from '../../engine/clock.ts';
import type { BlockedEviction } from '../../engine/effects.ts';
import { sleep } from '../in-process.ts';
import { drainRefusals } from '../drain-rules.ts';
import type { DrainOptions, DrainResult } from '../port.ts';
import { statusText, KubeApiError } from './errors.ts';
import { isNotFound, type KubeRequests } from './requests.ts';

export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

export interface DrainContext {
  core: CoreV1Api;
  requests: KubeRequests;
  clock: Clock;
  pollMs: number;
}

interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

/** Why a pod is not evicted, or null when it must be. */
export function skipReason(pod: V1Pod): string | null {
  if (pod.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet' && o.controller !== false)) return 'DaemonSet pod';
  if (pod.metadata?.annotations?.[MIRROR_POD_ANNOTATION] !== undefined) return 'mirror pod';
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return `pod already ${phase}`;
  return null;
}

const key = (pod: PodRef) => `${pod.namespace}/${pod.name}`;

export async function drainNode(ctx: DrainContext, node: string, options: DrainOptions): Promise<DrainResult> {
  const { core, requests, clock } = ctx;
  const { signal } = options;
  const list = await requests.send(
    { verb: 'list', resource: 'pods', group: '' },
    (o) => core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}`, ...(options.podSelector ? { labelSelector: options.podSelector } : {}) }, o),
    { signal },
  );
  const candidates = list.items.filter((pod) => skipReason(pod) === null);
  const refused = drainRefusals(
    candidates.map((pod) => ({
      namespace: pod.metadata?.namespace ?? 'default',
      name: pod.metadata?.name ?? '',
      controlled: pod.metadata?.ownerReferences?.some((o) => o.controller === true) ?? false,
      emptyDir: pod.spec?.volumes?.some((v) => v.emptyDir !== undefined) ?? false,
    })),
    options,
  );
  if (refused.length > 0) return { evicted: 0, blocked: refused, refused: true };
  const toEvict = new Map<string, PodRef>();
  for (const pod of candidates) {
    const ref = { namespace: pod.metadata?.namespace ?? 'default', name: pod.metadata?.name ?? '', uid: pod.metadata?.uid ?? '' };
    toEvict.set(key(ref), ref);
  }
  const refusals = new Map<string, string>();
  const leaving = new Map<string, { ref: PodRef; finalizers: string[] }>();
  let evicted = 0;

  for (;;) {
    for (const [id, ref] of toEvict) {
      const outcome = await evict(ctx, ref, options);
      if (outcome.kind === 'refused') {
        refusals.set(id, outcome.reason);
        continue;
      }
      toEvict.delete(id);
      refusals.delete(id);
      if (outcome.kind === 'evicted') {
        evicted += 1;
        leaving.set(id, { ref, finalizers: [] });
      }
    }
    for (const [id, entry] of leaving) {
      const current = await readPod(ctx, entry.ref, signal);
      if (current === null || current.metadata?.uid !== entry.ref.uid) leaving.delete(id);
      else entry.finalizers = current.metadata?.finalizers ?? [];
    }
    if (toEvict.size === 0 && leaving.size === 0) return { evicted, blocked: [] };
    const remaining = options.giveUpAt - clock.now();
    if (remaining <= 0) break;
    await sleep(clock, Math.min(ctx.pollMs, remaining), signal);
  }

  const blocked: BlockedEviction[] = [
    ...[...toEvict].map(([id, ref]) => ({ pod: ref.name, namespace: ref.namespace, reason: refusals.get(id) ?? 'eviction refused' })),
    ...[...leaving.values()].map(({ ref, finalizers }) => ({
      pod: ref.name,
      namespace: ref.namespace,
      reason: `pod stuck Terminating: ${finalizers.length > 0 ? `finalizers ${finalizers.join(', ')} not removed` : 'still terminating after its eviction'}`,
    })),
  ];
  return { evicted, blocked };
}

type EvictionOutcome = { kind: 'evicted' } | { kind: 'gone' } | { kind: 'refused'; reason: string };

async function evict(ctx: DrainContext, ref: PodRef, options: DrainOptions): Promise<EvictionOutcome> {
  const body: V1Eviction = {
    apiVersion: 'policy/v1',
    kind: 'Eviction',
    metadata: { name: ref.name, namespace: ref.namespace },
    // -1 keeps the pod's own terminationGracePeriodSeconds, as kubectl drain does.
    ...(options.gracePeriodSeconds >= 0 ? { deleteOptions: { gracePeriodSeconds: options.gracePeriodSeconds } } : {}),
  };
  try {
    await ctx.requests.send(
      { verb: 'create', resource: 'pods/eviction', group: '', namespace: ref.namespace, name: ref.name },
      (o) => ctx.core.createNamespacedPodEviction({ name: ref.name, namespace: ref.namespace, body }, o),
      // 429 here is a PodDisruptionBudget refusing, asked again at the drain's own pace until it gives up.
      { signal: options.signal, handles: [404, 429] },
    );
    return { kind: 'evicted' };
  } catch (err) {
    if (isNotFound(err)) return { kind: 'gone' };
    if (err instanceof KubeApiError && err.status === 429) return { kind: 'refused', reason: statusText(err.body) || err.message };
    throw err;
  }
}

async function readPod(ctx: DrainContext, ref: PodRef, signal: AbortSignal): Promise<V1Pod | null> {
  try {
    return await ctx.requests.send(
      { verb: 'get', resource: 'pods', group: '', namespace: ref.namespace, name: ref.name },
      (o) => ctx.core.readNamespacedPod({ name: ref.name, namespace: ref.namespace }, o),
      { signal },
    );
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
