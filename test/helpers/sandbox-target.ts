/**
 * A ClusterTarget on the sandbox: a scenario's simulated cluster served by the sandbox API server, reached through the
 * real KubeCluster over HTTP, in virtual time (test/kube/support.ts's VirtualTime: the clock jumps only when no
 * request is in flight), with an in-memory store. `patch` runs the real Orchestrator against it first, so that the
 * Jobs, reports, cordons and labels doctor reads are the ones a run really leaves.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { KubeCluster } from '../../src/cluster/kube/index.ts';
import type { FleetOutput } from '../../src/engine/fleet.machine.ts';
import { parsePlan, type Plan } from '../../src/engine/plan.ts';
import { Orchestrator, type RunHandle } from '../../src/service/orchestrator.ts';
import type { ClusterTarget, PaletteTarget } from '../../src/service/targets.ts';
import { kubeconfig, startKubeApiServer, type KubeApiServer, type KubeStore } from '../../src/sim/kube-api/index.ts';
import { createSandbox, type Sandbox } from '../../src/sim/sandbox/index.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { openStore, type Store } from '../../src/store/index.ts';
import { VirtualTime } from '../kube/support.ts';

export const ORCHESTRATOR = 'test-orchestrator';

export interface SandboxTarget {
  target: ClusterTarget & { cluster: KubeCluster };
  time: VirtualTime;
  sandbox: Sandbox;
  kube: KubeStore;
  server: KubeApiServer;
  store: Store;
  /** Runs the plan (default the scenario's) through the Orchestrator to its end. */
  patch(options?: { triggerId?: string; plan?: Plan }): Promise<FleetOutput>;
  /** Starts a run and returns its handle without driving it. */
  start(options?: { triggerId?: string; plan?: Plan; notBefore?: number | null }): Promise<RunHandle>;
  close(): Promise<void>;
}

export async function sandboxTarget(scenarioFile: string, options: { plan?: Record<string, unknown>; palette?: PaletteTarget | null } = {}): Promise<SandboxTarget> {
  const scenario = loadScenario(`fixtures/scenarios/${scenarioFile}`);
  const time = new VirtualTime();
  const sandbox = createSandbox(scenario, time.clock);
  const server = await startKubeApiServer({ store: sandbox.store });
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfig(server.url));
  const plan = options.plan ? parsePlan({ ...scenario.planInput, cluster: scenario.clusterName, ...options.plan }) : scenario.plan;
  const cluster = new KubeCluster({ kubeConfig: kc, clock: time.clock, name: plan.cluster, activity: time.activity, retry: { attempts: 4, baseMs: 100, maxMs: 2000 } });
  const store = openStore(':memory:');
  const target = { name: plan.cluster, cluster, store, plan, clock: time.clock, palette: options.palette ?? null };
  let runs = 0;
  const orchestrator = () => new Orchestrator({ cluster, clock: time.clock, store, holder: ORCHESTRATOR, newRunId: () => `run-${++runs}` });
  const start = (o: { triggerId?: string; plan?: Plan; notBefore?: number | null } = {}) =>
    time.run(orchestrator().start({ plan: o.plan ?? plan, requestedBy: 'tester', triggerId: o.triggerId ?? 't1', notBefore: o.notBefore === undefined ? null : o.notBefore }));
  return {
    target,
    time,
    sandbox,
    kube: sandbox.store,
    server,
    store,
    start,
    async patch(o = {}) {
      const handle = await start(o);
      return time.run(handle.result);
    },
    async close() {
      sandbox.binding.close();
      await server.close();
      store.close();
    },
  };
}
