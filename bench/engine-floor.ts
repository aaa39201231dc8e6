/**
 * The engine's own cost, without a cluster: `node bench/engine-floor.ts NODES [CONCURRENCY]` runs the provided fleet
 * machine (real node machines, effect and timer actors, the virtual clock) against effects that answer after a fixed
 * virtual delay and model nothing, and prints one JSON line. What bench/sim.ts takes beyond this is the simulator's and
 * the service's; this much no change to them can remove (issue 13: XState's per-child and per-action work).
 * Every node patches without faults, so nothing is retried; a node's steps take 1 s of virtual time (the patch 60 s).
 */
import { createActor } from 'xstate';
import { VirtualClock } from '../src/engine/clock.ts';
import type { AgentReport } from '../src/engine/report.ts';
import type { ClusterHealth, EngineEffects, NodeState } from '../src/engine/effects.ts';
import { parsePlan } from '../src/engine/plan.ts';
import { settle } from '../src/service/drive.ts';
import { provideFleetMachine } from '../src/service/runtime.ts';

const nodes = Number(process.argv[2] ?? 10_000);
const concurrency = Number(process.argv[3] ?? 50);
const clock = new VirtualClock(0);
const after = <T>(value: T, ms = 1000) => new Promise<T>((resolve) => clock.setTimeout(() => resolve(value), ms));
const state = (name: string): NodeState => ({
  name,
  labels: { 'kubernetes.io/os': 'linux' },
  exists: true,
  ready: true,
  unschedulable: false,
  cordonedBy: null,
  bootId: 'boot-1',
  kubeletVersion: 'v1.31.0',
});
const report = (result: AgentReport['result']): AgentReport => ({
  result,
  upgraded: [{ name: 'openssl', from: '1', to: '2' }],
  held: [],
  rebootRequired: false,
  rebootPackages: [],
  error: null,
  durationSeconds: 60,
});
const healthy: ClusterHealth = { nodes: [], controlPlane: { ready: true, detail: 'ok' }, blockingPods: [], alerts: null };
const effects: EngineEffects = {
  inspectNode: ({ node }) => after(state(node)),
  cordonNode: () => after(null),
  drainNode: () => after({ evicted: 1, blocked: [] }),
  runPatchJob: () => after(report('patched'), 60_000),
  rebootNode: () => after(null),
  awaitRejoin: ({ node }) => after(state(node)),
  uncordonNode: () => after(null),
  markNode: () => after(null),
  listNodes: async () => Array.from({ length: nodes }, (_, i) => ({ name: `node-${i + 1}`, labels: { 'kubernetes.io/os': 'linux' } })),
  prefetch: async () => ({ prefetched: [], failed: [] }),
  scanNode: () => after(report('patched')),
  soakNodes: async () => null,
  observeCluster: async () => healthy,
};

const machine = provideFleetMachine({ effects, clock });
const plan = parsePlan({ cluster: 'floor', concurrency, maxFailures: nodes });
const cpu = process.cpuUsage();
const started = performance.now();
const actor = createActor(machine, { input: { runId: 'floor', plan, hash: 'h', requestedBy: 'bench', createdAt: 0, notBefore: null }, clock });
actor.start();
for (;;) {
  await settle();
  if (actor.getSnapshot().status !== 'active') break;
  const next = clock.nextDueAt();
  if (next === undefined) break;
  clock.set(next);
}
const used = process.cpuUsage(cpu);
const snapshot = actor.getSnapshot();
console.log(
  JSON.stringify({
    nodes,
    concurrency,
    wallMs: Math.round(performance.now() - started),
    cpuMs: Math.round((used.user + used.system) / 1000),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
    status: snapshot.status,
    tally: snapshot.status === 'done' ? snapshot.output?.tally : null,
  }),
);
