/**
 * Takeover from the cluster alone: the holder dies mid-node (its lease unreleased, its database gone with it), and
 * another orchestrator with a database of its own takes the cluster once the lease has expired, then finishes the
 * same trigger from what the cluster shows: the dead holder's cordon (an older lease generation) becomes its own to
 * finish, its patch Job is waited for instead of doubled, nothing is left cordoned.
 */
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/engine/plan.ts';
import { driveInVirtualTime } from '../../src/service/drive.ts';
import { holderIdentity } from '../../src/service/holder.ts';
import { Orchestrator } from '../../src/service/orchestrator.ts';
import { openStore } from '../../src/store/index.ts';
import { buildCluster, T0, workers } from '../helpers/fixtures.ts';

const holder = (pid: number) => holderIdentity({ host: 'bastion-1', pid, startedAt: T0, suffix: 'abc123' });

describe('takeover from the cluster alone', () => {
  it.each(['patch', 'drain'])('finishes a dead holder\'s trigger from the cluster when it died in %s: no node patched twice, none left cordoned', async (diedIn) => {
    const { clock, cluster } = buildCluster(workers(4));
    const plan = parsePlan({ cluster: 'test', concurrency: 1 });
    const request = { plan, requestedBy: 'alice', triggerId: 'race-1', notBefore: null };
    const storeA = openStore(':memory:');
    const a = new Orchestrator({ cluster, clock, store: storeA, holder: holder(1) });
    const first = await a.start(request);
    // Drive the first holder until a node is mid-step, then it dies: no release, no more renewals.
    let victim = '';
    for (let i = 0; i < 10_000 && !victim; i++) {
      clock.advanceToNext();
      await new Promise((resolve) => setImmediate(resolve));
      const children = Object.entries(first.actor.getSnapshot().children as Record<string, { getSnapshot(): { value: unknown } }>);
      const stepping = children.find(([, child]) => (JSON.stringify(child.getSnapshot().value) ?? "").includes(diedIn));
      if (stepping && cluster.state.nodes.some((n) => n.unschedulable)) victim = stepping[0];
    }
    expect(victim).not.toBe('');
    first.detach();
    await first.result.catch(() => undefined);
    const cordoned = cluster.state.nodes.find((n) => n.unschedulable)!;
    expect(cordoned.annotations['patchpilot.io/cordon-generation']).toBe('0');

    const storeB = openStore(':memory:');
    const b = new Orchestrator({ cluster, clock, store: storeB, holder: holder(2) });
    await expect(b.start(request)).rejects.toMatchObject({ code: 'LEASE_HELD', message: expect.stringContaining('process 1 on bastion-1') });
    clock.increment(60_000);
    const second = await b.start(request);
    const output = await driveInVirtualTime(second, clock);
    expect(output?.outcome).toBe('succeeded');
    expect(cluster.state.nodes.filter((n) => n.unschedulable)).toEqual([]);
    // The dead holder's node went first: never two nodes cordoned at once with concurrency 1.
    expect(cluster.state.maxCordonedByUs).toBe(1);
    expect(cluster.state.nodes.every((n) => n.labels['patchpilot.io/os-patch'])).toBe(true);
    expect(Object.values(cluster.state.patchJobsCreated).every((count) => count === 1)).toBe(true);
    expect(Object.keys(cluster.state.patchJobsCreated)).toHaveLength(4);
    const adopted = storeB.auditRows({ runId: second.runId }).filter((r) => r.action === 'node.cordon-adopted');
    expect(adopted).toEqual([expect.objectContaining({ details: expect.objectContaining({ node: cordoned.name, fromRun: first.runId, fromGeneration: 0, generation: 1 }) })]);
    expect(cluster.state.lease).toMatchObject({ holder: '', generation: 1 });
  });
});
