/**
 * Orchestrator.preview is what the approval card shows: the version hash and the nodes, in order, that the run then
 * patches. Checked against the run started from the preview, on a cluster where every rule of selection matters
 * (control plane first, zones interleaved, a node selector, Windows, an opt-out) and where a node is still cordoned by
 * a holder that lost the cluster (the run finishes it first: a preview that read the nodes as the plain cluster list
 * would put it in its usual place).
 */
import { describe, expect, it } from 'vitest';
import { ANNOTATIONS } from '../../src/engine/metadata.ts';
import { NATIVE_LABEL_KEY, parsePlan } from '../../src/engine/plan.ts';
import { driveInVirtualTime } from '../../src/service/drive.ts';
import { leaseName, Orchestrator } from '../../src/service/orchestrator.ts';
import { openStore } from '../../src/store/index.ts';
import { buildCluster } from '../helpers/fixtures.ts';

const general = { pool: 'general' };

function cluster() {
  return buildCluster([
    { name: 'worker-1', zone: 'a', labels: general },
    { name: 'worker-2', zone: 'a', labels: general },
    { name: 'worker-3', zone: 'b', labels: general, unschedulable: true, annotations: { [ANNOTATIONS.cordonedBy]: 'run-of-a-lost-holder', [ANNOTATIONS.cordonGeneration]: '0' } },
    { name: 'worker-4', zone: 'b', labels: general },
    { name: 'cp-1', role: 'control-plane', zone: 'a', labels: general },
    { name: 'gpu-1', zone: 'a', labels: { pool: 'gpu' } },
    { name: 'win-1', zone: 'a', os: 'windows', labels: general },
    { name: 'opted-out', zone: 'b', labels: { ...general, [NATIVE_LABEL_KEY]: 'disabled' } },
  ]);
}

describe('a run preview', () => {
  it('has the hash and the nodes, in order, of the run started from it', async () => {
    const { clock, cluster: memory } = cluster();
    // The lost holder's lease (generation 0) ran out; the next holder gets a newer generation.
    await memory.acquireLease({ name: leaseName('test'), holder: 'lost-holder', durationSeconds: 10 });
    clock.increment(11_000);
    const store = openStore(':memory:');
    const orchestrator = new Orchestrator({ cluster: memory, clock, store, holder: 'bot' });
    const plan = parsePlan({ cluster: 'test', nodeSelector: general, concurrency: 1 });

    const preview = await orchestrator.preview({ plan, requestedBy: 'alice', triggerId: 'slack-1', notBefore: null });
    const shown = preview.selection.selected.map((n) => n.name);
    expect(shown).toEqual(['worker-3', 'cp-1', 'worker-1', 'worker-2', 'worker-4']);
    expect(preview.selection.excluded.map((e) => `${e.name}:${e.reason}`)).toEqual(['gpu-1:selector-mismatch', 'opted-out:disabled', 'win-1:not-linux']);

    const handle = await orchestrator.start(preview);
    const output = await driveInVirtualTime(handle, clock);
    expect(output?.outcome).toBe('succeeded');
    const run = store.requireRun(handle.runId);
    expect(run.hash).toBe(preview.hash);
    expect(run.queue).toEqual(shown);
    expect(store.getNodeRuns(handle.runId).map((n) => n.node)).toEqual(shown);
    for (const name of shown) expect((await memory.getNode(name))!.labels[NATIVE_LABEL_KEY]).toBe(preview.hash);
    store.close();
  });

  it('derives the trigger as start does: the same request previews the same hash, another trigger another', async () => {
    const { clock, cluster: memory } = cluster();
    const orchestrator = new Orchestrator({ cluster: memory, clock, holder: 'bot' });
    const plan = parsePlan({ cluster: 'test' });
    const one = await orchestrator.preview({ plan, requestedBy: 'alice', triggerId: 'slack-1', notBefore: null });
    const again = await orchestrator.preview({ plan, requestedBy: 'bob', triggerId: 'slack-1', notBefore: null });
    const other = await orchestrator.preview({ plan, requestedBy: 'alice', triggerId: 'slack-2', notBefore: null });
    expect(again.hash).toBe(one.hash);
    expect(other.hash).not.toBe(one.hash);
    expect(one).toMatchObject({ triggerId: 'slack-1', notBefore: null, requestedBy: 'alice' });
    // Without a generation newer than the cordon's, the cordoned node would not count as unfinished: it is selected
    // all the same (not patched under this hash), in its zone's turn.
    expect(one.selection.selected.map((n) => n.name)).toContain('worker-3');
  });
});
