/**
 * A ClusterTarget is everything doctor, unstick and reset act on for one cluster: its Kubernetes side (ClusterPort and
 * DiagnosticsPort), the run history (a Store, when there is one), the plan (label key, node selector, mode), a clock
 * and, when the cluster is managed by Palette, a Palette API client with the cluster's uid. The CLI builds one from a
 * kubeconfig and the environment (src/cli/targets.ts); tests build them around the sandbox.
 */
import type { ClusterPort, DiagnosticsPort } from '../cluster/port.ts';
import type { Clock } from '../engine/clock.ts';
import type { Plan } from '../engine/plan.ts';
import type { PaletteClient } from '../palette/index.ts';
import type { Store } from '../store/store.ts';

export interface PaletteTarget {
  client: PaletteClient;
  /** The cluster's uid in Palette (the `…/clusters/<uid>/overview` part of its URL). */
  clusterUid: string;
}

export interface ClusterTarget {
  /** The cluster's name: the plan's `cluster`, which names its Lease and its runs in the store. */
  name: string;
  cluster: ClusterPort & DiagnosticsPort;
  store: Store | null;
  plan: Plan;
  clock: Clock;
  palette: PaletteTarget | null;
}
