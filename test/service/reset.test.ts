/**
 * reset on the sandbox after a real run: what a plan would remove, refusal without confirmation or with unknown names
 * (nothing changed), the `disabled` opt-out kept unless asked, cordon ownership kept, one audit record per node, and
 * a run after the reset patching the nodes again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { doctor } from '../../src/service/doctor.ts';
import { formatResetPlan, planReset, reset, ResetError } from '../../src/service/reset.ts';
import { sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';

let bench: SandboxTarget | undefined;

afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

const LABEL = 'patchpilot.io/os-patch';

async function patched(): Promise<SandboxTarget> {
  bench = await sandboxTarget('apt-lock-timeout.yaml');
  await bench.patch();
  return bench;
}

describe('planReset and reset', () => {
  it('plans the removal of the task label and patchpilot\'s annotations, and does it only when confirmed', async () => {
    const b = await patched();
    const plan = await b.time.run(planReset(b.target));
    expect(plan.nodes.map((n) => [n.name, n.label !== null])).toEqual([
      ['cp-1', true],
      ['worker-1', true],
      ['worker-2', false],
      ['worker-3', true],
    ]);
    expect(plan.nodes[2]!.annotations).toEqual(expect.arrayContaining(['patchpilot.io/last-patch-status', 'patchpilot.io/last-patch-error']));
    expect(formatResetPlan(plan)).toMatch(/^reset would remove, in cluster apt-lock-timeout:\n {2}cp-1: label patchpilot\.io\/os-patch=\w+; \d annotation\(s\) /);

    const before = JSON.stringify(b.kube.list('nodes').items.map((n) => n.metadata.labels));
    await expect(reset(b.target, plan, { by: 'dave', confirmed: false as unknown as true })).rejects.toThrow(/not confirmed; nothing was changed/);
    expect(JSON.stringify(b.kube.list('nodes').items.map((n) => n.metadata.labels))).toBe(before);

    const result = await b.time.run(reset(b.target, plan, { by: 'dave', confirmed: true }));
    expect(result.changed).toEqual(['cp-1', 'worker-1', 'worker-2', 'worker-3']);
    for (const node of b.kube.list('nodes').items) {
      expect(node.metadata.labels?.[LABEL]).toBeUndefined();
      expect(Object.keys(node.metadata.annotations ?? {}).filter((k) => k.startsWith('patchpilot.io/'))).toEqual([]);
    }
    const audit = b.store.auditRows().filter((r) => r.action === 'node.reset');
    expect(audit.map((r) => [r.node, r.actor, r.details.cluster])).toEqual([
      ['cp-1', 'dave', 'apt-lock-timeout'],
      ['worker-1', 'dave', 'apt-lock-timeout'],
      ['worker-2', 'dave', 'apt-lock-timeout'],
      ['worker-3', 'dave', 'apt-lock-timeout'],
    ]);
    expect(audit[0]!.details.label).toMatch(/^patchpilot\.io\/os-patch=\w+$/);

    // Again: nothing left to remove.
    expect((await b.time.run(planReset(b.target))).nodes).toEqual([]);
    // The same trigger now selects every node again.
    const again = await b.patch();
    expect([...again.selected].sort()).toEqual(['cp-1', 'worker-1', 'worker-2', 'worker-3']);
  });

  it('refuses unknown node names, naming them, and changes nothing', async () => {
    const b = await patched();
    const err = await b.time.run(planReset(b.target, { nodes: ['worker-1', 'nope-1', 'nope-2'] })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResetError);
    expect((err as ResetError).message).toBe('no node named nope-1, nope-2 in cluster apt-lock-timeout; nothing was changed');
    expect(b.kube.list('nodes').items.filter((n) => n.metadata.labels?.[LABEL]).length).toBe(3);
    await expect(b.time.run(planReset(b.target, { nodes: [' '] }))).rejects.toThrow(/--nodes is empty/);
  });

  it('resets only the named nodes; keeps a disabled opt-out unless includeDisabled', async () => {
    const b = await patched();
    b.sandbox.sim.state.setLabel('worker-3', LABEL, 'disabled');
    const plan = await b.time.run(planReset(b.target, { nodes: ['worker-1', 'worker-3'] }));
    expect(plan.keptDisabled).toEqual(['worker-3']);
    expect(plan.nodes.map((n) => [n.name, n.label])).toEqual([
      ['worker-1', expect.stringMatching(/^\w+$/)],
      ['worker-3', null],
    ]);
    expect(formatResetPlan(plan)).toContain('kept: the disabled opt-out of worker-3 (add --include-disabled to remove it)');
    await b.time.run(reset(b.target, plan, { by: 'erin', confirmed: true }));
    const labels = Object.fromEntries(b.kube.list('nodes').items.map((n) => [n.metadata.name, n.metadata.labels?.[LABEL] ?? null]));
    expect(labels['worker-1']).toBeNull();
    expect(labels['worker-3']).toBe('disabled');
    expect(labels['cp-1']).toMatch(/^\w+$/);

    const all = await b.time.run(planReset(b.target, { nodes: ['worker-3'], includeDisabled: true }));
    expect(all.nodes).toEqual([{ name: 'worker-3', label: 'disabled', annotations: [] }]);
    await b.time.run(reset(b.target, all, { by: 'erin', confirmed: true }));
    expect(b.kube.get('nodes', { name: 'worker-3' }).metadata.labels?.[LABEL]).toBeUndefined();
  });

  it('keeps the cordon\'s proof of ownership (cordoned-by), and refuses while an orchestrator works on the cluster', async () => {
    bench = await sandboxTarget('rejoin-fails.yaml');
    const b = bench;
    await b.patch();
    const plan = await b.time.run(planReset(b.target));
    await b.time.run(reset(b.target, plan, { by: 'frank', confirmed: true }));
    expect(b.kube.get('nodes', { name: 'worker-2' }).metadata.annotations?.['patchpilot.io/cordoned-by']).toBe('run-1');
    expect((await b.time.run(doctor(b.target))).findings.find((f) => f.id === 'left-cordoned')!.status).toBe('problem');

    const handle = await b.start({ notBefore: b.time.clock.now() + 3600_000, triggerId: 't2' });
    const err = await b.time.run(reset(b.target, plan, { by: 'frank', confirmed: true })).catch((e: unknown) => e);
    expect((err as Error).message).toBe('an orchestrator (test-orchestrator) is working on cluster rejoin-fails; nothing was changed');
    handle.detach();
  });
});
