/**
 * Runs a scenario's engine through the real Kubernetes adapter (client-node over HTTP) against the sandbox serving
 * the scenario's simulated cluster, in virtual time: the clock jumps only when no HTTP request is in flight, so the
 * run is as deterministic as the simulator's and takes about as few wall seconds.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { KubeCluster } from '../../src/cluster/kube/index.ts';
import { settle } from '../../src/service/drive.ts';
import { ApiChaos, startKubeApiServer, kubeconfig } from '../../src/sim/kube-api/index.ts';
import type { ClusterThrough } from '../../src/sim/runner.ts';
import { SandboxBinding } from '../../src/sim/sandbox/index.ts';
import type { Scenario } from '../../src/sim/scenario.ts';

export interface KubeThrough extends ClusterThrough {
  /** HTTP requests the adapter sent. */
  readonly requests: () => number;
  /** What the adapter warned about (Events the API refused). */
  readonly warnings: () => readonly string[];
  /** Node watches the adapter opened and node lists it made (a re-watch, a re-list after 410 Gone). */
  readonly nodeReads: () => { watches: number; lists: number };
  /** What API chaos injected (all zero without chaos). */
  readonly chaos: () => ApiChaos['injected'];
}

/** `chaos`: the share of requests failed transiently and of watches dropped (default: the scenario's apiChaos). */
export function throughKubeApi(scenario: Scenario, options: { chaos?: number } = {}): KubeThrough {
  const rate = options.chaos ?? scenario.apiChaos ?? 0;
  const chaos = rate > 0 ? new ApiChaos({ rate, seed: scenario.seed }) : undefined;
  const warnings: string[] = [];
  const nodeReads = { watches: 0, lists: 0 };
  let binding: SandboxBinding | null = null;
  let inFlight = 0;
  let sent = 0;
  let waiters: Array<() => void> = [];
  const activity = {
    begin() {
      inFlight += 1;
      sent += 1;
    },
    end() {
      inFlight -= 1;
      if (inFlight === 0) {
        const wake = waiters;
        waiters = [];
        for (const w of wake) w();
      }
    },
  };
  return {
    requests: () => sent,
    warnings: () => warnings,
    nodeReads: () => ({ ...nodeReads }),
    chaos: () => chaos?.injected ?? { tooManyRequests: 0, internalError: 0, conflict: 0, watchDropped: 0 },
    onNodeChange: (name) => binding?.nodeChanged(name),
    async attach(sim, clock) {
      binding = new SandboxBinding({ sim, clock, agent: scenario.plan.agent, seed: scenario.seed });
      binding.store.hooks.onRequest((request) => {
        if (request.resource !== 'nodes' || request.name !== undefined) return;
        if (request.verb === 'watch') nodeReads.watches += 1;
        if (request.verb === 'list') nodeReads.lists += 1;
      });
      const server = await startKubeApiServer({ store: binding.store, ...(chaos ? { chaos } : {}) });
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfig(server.url));
      // Chaos refuses some Events: the adapter's once-per-refusal warning is expected there, not worth a test's stderr.
      const port = new KubeCluster({ kubeConfig: kc, clock, name: scenario.clusterName, activity, events: true, onWarning: (message) => warnings.push(message) });
      return {
        port,
        async idle() {
          // Quiet means: nothing in flight, and still nothing after everything that could start one has run.
          for (;;) {
            while (inFlight > 0) await new Promise<void>((resolve) => waiters.push(resolve));
            await settle();
            if (inFlight === 0) return;
          }
        },
        async close() {
          binding?.close();
          await server.close();
        },
      };
    },
  };
}
