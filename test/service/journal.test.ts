/**
 * The durability rule itself: every side effect on the cluster is preceded by a store commit that records the step it
 * belongs to. (The crash-resume test shows the outcome survives crashes; this shows the ordering that makes it so.)
 */
import { describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.ts';
import { harness, runPlan } from '../helpers/fixtures.ts';

type Entry = { kind: 'commit'; steps: Map<string, string> } | { kind: 'effect'; method: string; node: string };

/** Which node step a mutating cluster call belongs to. */
const STEP_OF: Record<string, string[]> = {
  cordon: ['cordon'],
  startPatchJob: ['patch', 'scan'],
  reboot: ['reboot'],
  uncordon: ['uncordon', 'recovering'],
  patchNodeMetadata: ['mark', 'recovering'],
};

describe('journal ordering', () => {
  it('commits the step a node entered before the effect of that step touches the cluster', async () => {
    const store = openStore(':memory:');
    const h = harness(
      [
        { name: 'cp-1', role: 'control-plane' },
        { name: 'kernel', behaviour: { report: { rebootRequired: true, rebootPackages: ['linux-image'] } } },
        { name: 'blocked', behaviour: { drainBlocked: true } },
      ],
      { store },
    );
    const log: Entry[] = [];
    const commit = store.commit.bind(store);
    store.commit = (batch) => {
      const steps = new Map<string, string>();
      for (const row of batch.audit ?? []) if (row.action === 'node.step' && row.node) steps.set(row.node, String(row.details?.step));
      log.push({ kind: 'commit', steps });
      commit(batch);
    };
    const cluster = h.cluster as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const method of Object.keys(STEP_OF)) {
      const original = (cluster[method] as (...args: unknown[]) => unknown).bind(h.cluster);
      cluster[method] = (...args: unknown[]) => {
        const spec = args[0] as string | { node: string };
        log.push({ kind: 'effect', method, node: typeof spec === 'string' ? spec : spec.node });
        return original(...args);
      };
    }
    const { output } = await runPlan(h, { maxFailures: 1, drainTimeoutSeconds: 60 });
    expect(output.outcome).toBe('partial');

    const committedStep = new Map<string, string>();
    let effects = 0;
    for (const entry of log) {
      if (entry.kind === 'commit') {
        for (const [node, step] of entry.steps) committedStep.set(node, step);
        continue;
      }
      effects += 1;
      expect(STEP_OF[entry.method], `${entry.method} on ${entry.node} ran while the store said "${committedStep.get(entry.node)}"`).toContain(
        committedStep.get(entry.node),
      );
    }
    expect(effects).toBeGreaterThanOrEqual(10);
  });
});
