/**
 * What the container suites need from the rest of patchpilot at run time: the Kubernetes adapter (loaded by a computed
 * specifier, so these suites type-check and skip with a reason while it is absent or broken) and a wall clock for an
 * Orchestrator that drives a real cluster.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClusterPort } from '../../src/cluster/port.ts';
import type { Clock, TimerId } from '../../src/engine/clock.ts';

export type KubeClusterConstructor = new (options: { kubeConfig: KubeConfig; clock: Clock }) => ClusterPort;

export type AdapterProbe = { ok: true; KubeCluster: KubeClusterConstructor } | { ok: false; reason: string };

export async function loadKubeCluster(): Promise<AdapterProbe> {
  const specifier = new URL('../../src/cluster/kube/index.ts', import.meta.url).href;
  try {
    const module = (await import(specifier)) as { KubeCluster?: unknown };
    if (typeof module.KubeCluster !== 'function') {
      return { ok: false, reason: 'KubeCluster adapter not available (src/cluster/kube/index.ts does not export KubeCluster)' };
    }
    return { ok: true, KubeCluster: module.KubeCluster as KubeClusterConstructor };
  } catch (e) {
    return { ok: false, reason: `KubeCluster adapter not available (${(e as Error).message.split('\n')[0]})` };
  }
}

/** Node's timers overflow past 2^31 - 1 ms (about 24.8 days) and then fire at once; longer delays are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Real time, as the CLI's orchestrator runs: the engine's Clock over Node's timers. */
export function wallClock(): Clock {
  const timers = new Map<TimerId, NodeJS.Timeout>();
  let nextId = 1;
  const arm = (id: TimerId, dueAt: number, fn: () => void) => {
    const left = Math.max(0, dueAt - Date.now());
    timers.set(
      id,
      setTimeout(() => {
        if (left > MAX_TIMER_MS) return arm(id, dueAt, fn);
        timers.delete(id);
        fn();
      }, Math.min(left, MAX_TIMER_MS)),
    );
  };
  return {
    now: () => Date.now(),
    setTimeout(fn, delayMs) {
      const id = nextId++;
      arm(id, Date.now() + Math.max(0, delayMs), fn);
      return id;
    },
    clearTimeout(id) {
      clearTimeout(timers.get(id));
      timers.delete(id);
    },
  };
}
