/**
 * Runs saved by the code before the machines had state tags and emitted events (fixtures/snapshots/before-tags.json,
 * written by commit 3ddc9ed's orchestrator, detached mid-way) resume under this code: snapshot format 2, whose step
 * timers are migrated to format 3's one deadline per node and whose invoked effects to format 4's one effect runner,
 * and what the machines now tell their observers works on a restored run too.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryCluster, type MemoryClusterState } from '../../src/cluster/memory.ts';
import { VirtualClock } from '../../src/engine/clock.ts';
import { driveInVirtualTime } from '../../src/service/drive.ts';
import { Orchestrator, type RunEvent } from '../../src/service/orchestrator.ts';
import { openStore } from '../../src/store/index.ts';
import type { RunRecord } from '../../src/store/types.ts';

interface SavedRun {
  savedIn: string;
  now: number;
  run: RunRecord;
  snapshots: Record<string, unknown>;
  cluster: MemoryClusterState;
}

const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/snapshots/before-tags.json'), 'utf8')) as Record<
  'rolling' | 'awaitingApproval',
  SavedRun
>;

/** A store and cluster as the old orchestrator ('orchestrator-a') left them, and a new orchestrator of the same holder. */
function reopen(saved: SavedRun) {
  const clock = new VirtualClock(saved.now);
  const cluster = new MemoryCluster(structuredClone(saved.cluster), { clock });
  const store = openStore(':memory:');
  const { run } = saved;
  store.createRun({ id: run.id, cluster: run.cluster, hash: run.hash, plan: run.plan, trigger: run.trigger, requestedBy: run.requestedBy, createdAt: run.createdAt });
  store.commit({
    runId: run.id,
    at: run.updatedAt,
    run: { status: run.status, ...(run.queue ? { queue: run.queue } : {}) },
    snapshots: Object.entries(saved.snapshots).map(([actorId, snapshot]) => ({ actorId, snapshot })),
  });
  const events: RunEvent[] = [];
  const orchestrator = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-a', onEvent: (e) => events.push(e) });
  return { clock, cluster, store, orchestrator, events };
}

describe('snapshots saved before state tags', () => {
  it('a rolling run resumes, reports where it was saved, and finishes patching each node once', async () => {
    const saved = fixture.rolling;
    expect(saved.savedIn).toBe('rolling.active');
    const { clock, cluster, store, orchestrator, events } = reopen(saved);
    const handle = await orchestrator.resume(saved.run.id);
    // Format 2 had a timer child per step; restored, each node has its one deadline, armed where the step timer was.
    const deadlineOf = (child: string) => {
      const node = handle.actor.getSnapshot().children[child] as unknown as { getSnapshot(): { children: Record<string, { getSnapshot(): unknown }> } };
      return node.getSnapshot().children.deadline?.getSnapshot();
    };
    expect(deadlineOf('node-1')).toMatchObject({ status: 'active', event: 'STEP_TIMEOUT', at: 1795313530000 });
    expect(deadlineOf('node-2')).toMatchObject({ status: 'active', event: 'STEP_TIMEOUT', at: 1795314770000 });
    expect(clock.pending, 'the two restored deadlines are on the clock').toBeGreaterThanOrEqual(2);
    // Format 3 invoked each step's effect; the effect in flight is now the request of the node's one effect runner.
    const requestOf = (child: string) => {
      const node = handle.actor.getSnapshot().children[child] as unknown as { getSnapshot(): { children: Record<string, { getSnapshot(): unknown }> } };
      return (node.getSnapshot().children.effects?.getSnapshot() as { current?: { effect: string; input: { node: string } } } | undefined)?.current;
    };
    expect(requestOf('node-1')).toMatchObject({ effect: 'awaitRejoin', input: { node: 'kernel' } });
    expect(requestOf('node-2')).toMatchObject({ effect: 'runPatchJob', input: { node: 'w-1' } });
    const output = await driveInVirtualTime(handle, clock);

    expect(output).toMatchObject({ outcome: 'succeeded', failedNodes: [], notStarted: [] });
    expect(output?.tally.patched).toBe(4);
    expect(Object.values(cluster.state.patchJobsCreated)).toEqual([1, 1, 1, 1]);
    expect(cluster.state.nodes.filter((n) => n.unschedulable)).toEqual([]);
    expect(store.requireRun(saved.run.id)).toMatchObject({ status: 'done', outcome: 'succeeded' });

    // The saved state and the saved nodes' steps come back flagged restored, with the tags of that state.
    const restored = events.filter((e) => (e.type === 'run.state' || e.type === 'node.step') && e.restored);
    expect(restored).toEqual([
      expect.objectContaining({ type: 'run.state', state: 'rolling.active', tags: ['rolling'] }),
      expect.objectContaining({ type: 'node.step', node: 'kernel', position: 1, step: 'rejoin' }),
      expect.objectContaining({ type: 'node.step', node: 'w-1', position: 2, step: 'patch' }),
    ]);
    // The restored nodes go on from there, and so do the steps of the nodes started after the resume.
    const stepsOf = (node: string) => events.flatMap((e) => (e.type === 'node.step' && e.node === node ? [e.step] : []));
    expect(stepsOf('kernel')).toEqual(['rejoin', 'uncordon', 'mark']);
    expect(stepsOf('w-1')).toEqual(['patch', 'uncordon', 'mark']);
    expect(stepsOf('w-2')).toEqual(['preflight', 'scan', 'cordon', 'drain', 'patch', 'uncordon', 'mark']);
    expect(events.filter((e) => e.type === 'node.finished').map((e) => (e.type === 'node.finished' ? [e.position, e.outcome.node] : []))).toEqual([
      [1, 'kernel'],
      [2, 'w-1'],
      [3, 'w-2'],
    ]);
  });

  it('a run awaiting approval resumes under the rejection rule, and an approver starts it', async () => {
    const saved = fixture.awaitingApproval;
    expect(saved.savedIn).toBe('awaitingApproval');
    const { clock, store, orchestrator } = reopen(saved);
    const handle = await orchestrator.resume(saved.run.id);
    expect(handle.send({ type: 'REJECT', by: 'mallory' })).toEqual({
      ok: false,
      message: 'mallory is neither an approver for cluster test nor the requester of this run, and cannot reject it',
    });
    expect(store.getDecision(saved.run.id)).toBeNull();
    expect(handle.send({ type: 'APPROVE', by: 'bob' })).toMatchObject({ ok: true });
    const output = await driveInVirtualTime(handle, clock);
    expect(output).toMatchObject({ outcome: 'succeeded' });
    expect(output?.tally.patched).toBe(4);
  });
});
