/** Builders shared by engine and service tests. */
import { MemoryCluster, type MemoryNodeSpec } from '../../src/cluster/memory.ts';
import { VirtualClock } from '../../src/engine/clock.ts';
import { parsePlan, type PlanInput } from '../../src/engine/plan.ts';
import { driveInVirtualTime } from '../../src/service/drive.ts';
import { Orchestrator, type OrchestratorOptions, type RunEvent } from '../../src/service/orchestrator.ts';
import type { Store } from '../../src/store/store.ts';

export const T0 = Date.parse('2026-11-22T02:00:00Z');

export function buildCluster(nodes: MemoryNodeSpec[], clock = new VirtualClock(T0)) {
  return { clock, cluster: MemoryCluster.create('test', nodes, { clock }) };
}

export interface Harness {
  clock: VirtualClock;
  cluster: MemoryCluster;
  orchestrator: Orchestrator;
  events: RunEvent[];
}

export function harness(nodes: MemoryNodeSpec[], options: { store?: Store; holder?: string } & Partial<OrchestratorOptions> = {}): Harness {
  const { clock, cluster } = buildCluster(nodes);
  const events: RunEvent[] = [];
  let n = 0;
  const orchestrator = new Orchestrator({
    cluster,
    clock,
    store: options.store ?? null,
    holder: options.holder ?? 'test-orchestrator',
    newRunId: () => `run-${++n}`,
    onEvent: (e) => events.push(e),
    ...(options.membership ? { membership: options.membership } : {}),
  });
  return { clock, cluster, orchestrator, events };
}

/** Starts a run of `plan` and drives it to its end in virtual time. */
export async function runPlan(h: Harness, plan: PlanInput, requestedBy = 'alice', triggerId = 'trigger-1') {
  const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', ...plan }), requestedBy, triggerId, notBefore: null });
  const output = await driveInVirtualTime(handle, h.clock);
  if (!output) throw new Error('run did not finish');
  return { handle, output };
}

export function workers(count: number, extra: Partial<MemoryNodeSpec> = {}): MemoryNodeSpec[] {
  return Array.from({ length: count }, (_, i) => ({ name: `worker-${i + 1}`, zone: `zone-${(i % 3) + 1}`, ...extra }));
}
