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

  /** Drives `handle` until one of its nodes is mid-`step` with a cordon on the cluster; returns that node's name. */
  async function dieIn(handle: Awaited<ReturnType<Orchestrator['start']>>, clock: ReturnType<typeof buildCluster>['clock'], cluster: ReturnType<typeof buildCluster>['cluster'], step: string) {
    for (let i = 0; i < 10_000; i++) {
      clock.advanceToNext();
      await new Promise((resolve) => setImmediate(resolve));
      const children = Object.values(handle.actor.getSnapshot().children as Record<string, { getSnapshot(): { value: unknown; context: { input: { node: string } } } }>);
      const stepping = children.find((child) => (JSON.stringify(child.getSnapshot().value) ?? '').includes(step));
      if (stepping && cluster.state.nodes.some((n) => n.unschedulable)) {
        handle.detach();
        await handle.result.catch(() => undefined);
        return stepping.getSnapshot().context.input.node;
      }
    }
    throw new Error(`no node reached ${step}`);
  }

  it('lifts a cordon a holder that lost the cluster left on a node that already carries the hash, without patching it again', async () => {
    const { clock, cluster } = buildCluster(workers(3));
    const plan = parsePlan({ cluster: 'test', concurrency: 1 });
    const request = { plan, requestedBy: 'alice', triggerId: 'race-2', notBefore: null };
    const a = new Orchestrator({ cluster, clock, store: openStore(':memory:'), holder: holder(1) });
    const first = await a.start(request);
    const node = await dieIn(first, clock, cluster, 'patch');
    // Its patch finished on the node and the hash label landed (a late write of the dead holder), the cordon stayed.
    const record = cluster.state.nodes.find((n) => n.name === node)!;
    record.labels['patchpilot.io/os-patch'] = first.actor.getSnapshot().context.hash;
    const jobsBefore = { ...cluster.state.patchJobsCreated };

    clock.increment(60_000);
    const storeB = openStore(':memory:');
    const second = await new Orchestrator({ cluster, clock, store: storeB, holder: holder(2) }).start(request);
    const output = await driveInVirtualTime(second, clock);
    expect(output?.outcome).toBe('succeeded');
    expect(cluster.state.nodes.filter((n) => n.unschedulable).map((n) => n.name)).toEqual([]);
    expect(output?.tally).toMatchObject({ patched: 2, skipped: 1 });
    // Not patched twice: its Job is the one the dead holder made.
    const jobsOfNode = (jobs: Record<string, number>) => Object.entries(jobs).filter(([key]) => key.includes(node)).map(([, n]) => n);
    expect(jobsOfNode(cluster.state.patchJobsCreated)).toEqual(jobsOfNode(jobsBefore));
    expect(storeB.auditRows({ runId: second.runId }).some((r) => r.action === 'node.cordon-adopted')).toBe(true);
  });

  it('supersedes a run of its own database that another orchestrator took over meanwhile, instead of replaying its saved steps', async () => {
    const { clock, cluster } = buildCluster(workers(3));
    const plan = parsePlan({ cluster: 'test', concurrency: 1 });
    const request = { plan, requestedBy: 'alice', triggerId: 'race-3', notBefore: null };
    const storeA = openStore(':memory:');
    const first = await new Orchestrator({ cluster, clock, store: storeA, holder: holder(1), pidAlive: () => false }).start(request);
    await dieIn(first, clock, cluster, 'drain');

    // Another orchestrator, with a database of its own, takes the cluster over and finishes the trigger.
    clock.increment(60_000);
    const other = await new Orchestrator({ cluster, clock, store: openStore(':memory:'), holder: holder(2) }).start(request);
    expect((await driveInVirtualTime(other, clock))?.outcome).toBe('succeeded');
    const jobs = { ...cluster.state.patchJobsCreated };
    const maxBefore = cluster.state.maxCordonedByUs;

    // The first database's run is picked up by a restarted process: its saved steps (a drain) are stale by now.
    const restarted = new Orchestrator({ cluster, clock, store: storeA, holder: holder(3), pidAlive: () => false });
    const successor = await restarted.resume(first.runId);
    expect(successor.runId).not.toBe(first.runId);
    const output = await driveInVirtualTime(successor, clock);
    expect(output?.outcome).toBe('succeeded');
    expect(output?.selected).toEqual([]);
    expect(cluster.state.patchJobsCreated).toEqual(jobs);
    expect(cluster.state.maxCordonedByUs).toBe(maxBefore);
    expect(cluster.state.nodes.filter((n) => n.unschedulable)).toEqual([]);
    expect(storeA.getRun(first.runId)).toMatchObject({ status: 'done', outcome: 'cancelled', reason: expect.stringContaining(`superseded by run ${successor.runId}`) });
    expect(storeA.getRun(successor.runId)?.trigger).toMatchObject({ id: 'race-3', supersedes: first.runId });
    expect(storeA.auditRows({ runId: first.runId }).at(-1)).toMatchObject({ action: 'run.superseded', details: expect.objectContaining({ by: successor.runId }) });
    expect(storeA.verifyAudit()).toMatchObject({ ok: true });
  });

  it('resumes its saved steps when nobody held the cluster after its dead owner', async () => {
    const { clock, cluster } = buildCluster(workers(3));
    const plan = parsePlan({ cluster: 'test', concurrency: 1 });
    const store = openStore(':memory:');
    const first = await new Orchestrator({ cluster, clock, store, holder: holder(1), pidAlive: () => false }).start({ plan, requestedBy: 'alice', triggerId: 'race-4', notBefore: null });
    await dieIn(first, clock, cluster, 'drain');
    clock.increment(60_000);
    const resumed = await new Orchestrator({ cluster, clock, store, holder: holder(3), pidAlive: () => false }).resume(first.runId);
    expect(resumed.runId).toBe(first.runId);
    expect((await driveInVirtualTime(resumed, clock))?.outcome).toBe('succeeded');
    expect(store.auditRows({ runId: first.runId }).some((r) => r.action === 'run.resumed')).toBe(true);
    expect(cluster.state.maxCordonedByUs).toBe(1);
    expect(Object.values(cluster.state.patchJobsCreated).every((count) => count === 1)).toBe(true);
  });
});
