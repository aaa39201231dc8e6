/**
 * Whole runs against the in-memory cluster in virtual time: the engine's promises as an operator would check them.
 */
import { describe, expect, it } from 'vitest';
import type { MemoryNodeSpec } from '../../src/cluster/memory.ts';
import { ANNOTATIONS } from '../../src/engine/metadata.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { driveInVirtualTime } from '../../src/service/drive.ts';
import { OrchestratorError } from '../../src/service/orchestrator.ts';
import { ScheduleError } from '../../src/engine/schedule.ts';
import { openStore } from '../../src/store/index.ts';
import { T0, harness, runPlan, workers } from '../helpers/fixtures.ts';

const KEY = 'patchpilot.io/os-patch';

function nodeNamed(h: ReturnType<typeof harness>, name: string) {
  const node = h.cluster.state.nodes.find((n) => n.name === name);
  if (!node) throw new Error(`no node ${name}`);
  return node;
}

const cordonedByUs = (h: ReturnType<typeof harness>) =>
  h.cluster.state.nodes.filter((n) => n.unschedulable && n.annotations[ANNOTATIONS.cordonedBy] !== undefined).map((n) => n.name);

describe('a run patches every eligible node once', () => {
  it('patches, labels and uncordons each node, and leaves the Windows node alone', async () => {
    const h = harness([...workers(3), { name: 'win-1', os: 'windows' }]);
    const { output, handle } = await runPlan(h, {});
    expect(output).toMatchObject({ outcome: 'succeeded', selected: ['worker-1', 'worker-2', 'worker-3'], failedNodes: [] });
    expect(output.tally.patched).toBe(3);
    for (const name of ['worker-1', 'worker-2', 'worker-3']) {
      const node = nodeNamed(h, name);
      expect(node.unschedulable).toBe(false);
      expect(node.labels[KEY]).toMatch(/^[0-9a-f]{20}$/);
      expect(node.annotations[ANNOTATIONS.status]).toBe('patched');
      expect(node.annotations[ANNOTATIONS.run]).toBe(handle.runId);
    }
    expect(nodeNamed(h, 'win-1').labels[KEY]).toBeUndefined();
    expect(h.cluster.state.maxCordonedByUs).toBe(1);
  });

  it('selects nothing when the same trigger runs again, and only a new node after one joins', async () => {
    const h = harness(workers(2));
    await runPlan(h, {}, 'alice', 'click-1');
    const again = await runPlan(h, {}, 'alice', 'click-1');
    expect(again.output).toMatchObject({ outcome: 'succeeded', selected: [] });
    expect(Object.values(h.cluster.state.patchJobsCreated)).toEqual([1, 1]);

    h.cluster.addNode({ name: 'new-1', zone: 'zone-9' });
    const withNew = await runPlan(h, {}, 'alice', 'click-1');
    expect(withNew.output.selected).toEqual(['new-1']);
    const fresh = await runPlan(h, {}, 'alice', 'click-2');
    expect([...fresh.output.selected].sort()).toEqual(['new-1', 'worker-1', 'worker-2']);
  });

  it('fails clearly when no node carries the Linux OS label', async () => {
    const h = harness([{ name: 'win-1', os: 'windows' }, { name: 'bare', os: null }]);
    const { output } = await runPlan(h, {});
    expect(output.outcome).toBe('failed');
    expect(output.reason).toMatch(/^no matching nodes: no node carries kubernetes\.io\/os=linux/);
  });

  it('fails clearly, touching nothing, when asked for a node that does not exist', async () => {
    const h = harness(workers(2));
    const { output } = await runPlan(h, { nodes: ['worker-1', 'wroker-2'] });
    expect(output).toMatchObject({ outcome: 'failed', selected: [] });
    expect(output.reason).toContain('unknown node(s): wroker-2');
    expect(h.cluster.state.maxCordonedByUs).toBe(0);
  });

  it('excludes a node labelled disabled', async () => {
    const h = harness([...workers(2), { name: 'pet', labels: { [KEY]: 'disabled' } }]);
    const { output } = await runPlan(h, {});
    expect(output.selected).toEqual(['worker-1', 'worker-2']);
    expect(nodeNamed(h, 'pet').labels[KEY]).toBe('disabled');
  });
});

describe('cordon ownership', () => {
  it('patches a node someone else cordoned but never lifts their cordon', async () => {
    const h = harness([{ name: 'theirs', unschedulable: true }, { name: 'ours' }]);
    const { output } = await runPlan(h, {});
    expect(output.outcome).toBe('succeeded');
    expect(nodeNamed(h, 'theirs')).toMatchObject({ unschedulable: true });
    expect(nodeNamed(h, 'theirs').annotations[ANNOTATIONS.cordonedBy]).toBeUndefined();
    expect(nodeNamed(h, 'theirs').labels[KEY]).toBeDefined();
    expect(nodeNamed(h, 'ours').unschedulable).toBe(false);
  });
});

describe('the failure policy', () => {
  it.each([
    {
      name: 'a drain blocked by a PDB times out and the node is given back',
      node: { name: 'n', behaviour: { drainBlocked: true } } as MemoryNodeSpec,
      plan: { drainTimeoutSeconds: 120 },
      code: 'DRAIN_TIMEOUT',
      cordoned: false,
    },
    {
      name: 'with drain.onTimeout keep-cordoned the node waits for a human',
      node: { name: 'n', behaviour: { drainBlocked: true } } as MemoryNodeSpec,
      plan: { drainTimeoutSeconds: 120, drain: { onTimeout: 'keep-cordoned' as const } },
      code: 'DRAIN_TIMEOUT',
      cordoned: true,
    },
    {
      name: 'a node that never rejoins stays cordoned (it is NotReady)',
      node: { name: 'n', behaviour: { neverRejoins: true, report: { rebootRequired: true, rebootPackages: ['linux-image'] } } } as MemoryNodeSpec,
      plan: { readyTimeoutSeconds: 300 },
      code: 'REJOIN_TIMEOUT',
      cordoned: true,
    },
    {
      name: 'a kubelet that changed across the reboot keeps the node cordoned',
      node: { name: 'n', behaviour: { kubeletAfterReboot: 'v1.31.0', report: { rebootRequired: true, rebootPackages: ['linux-image'] } } } as MemoryNodeSpec,
      plan: {},
      code: 'KUBELET_CHANGED',
      cordoned: true,
    },
    {
      name: 'a failed postinst on a healthy node gives the node back',
      node: { name: 'n', behaviour: { report: { result: 'failed', error: { code: 'POSTINST_FAILED', message: 'openssl postinst exited 1' } } } } as MemoryNodeSpec,
      plan: {},
      code: 'POSTINST_FAILED',
      cordoned: false,
    },
    {
      name: 'a Job whose pod dies without a report fails the node and gives it back',
      node: { name: 'n', behaviour: { jobDiesWithoutReport: true } } as MemoryNodeSpec,
      plan: {},
      code: 'JOB_FAILED',
      cordoned: false,
    },
    {
      name: 'a node that is NotReady before we start is never cordoned',
      node: { name: 'n', ready: false } as MemoryNodeSpec,
      plan: {},
      code: 'NODE_NOT_READY',
      cordoned: false,
    },
    {
      name: 'API errors beyond the retry budget fail the step',
      node: { name: 'n', behaviour: { apiErrors: 3 } } as MemoryNodeSpec,
      plan: { retry: { attempts: 3, backoffSeconds: 5 } },
      code: 'API_ERROR',
      cordoned: false,
    },
  ])('$name', async ({ node, plan, code, cordoned }) => {
    const h = harness([node]);
    const { output } = await runPlan(h, plan);
    expect(output.outcome).toBe('halted');
    expect(output.failedNodes).toEqual(['n']);
    const finished = h.events.find((e) => e.type === 'node.finished');
    expect(finished?.type === 'node.finished' && finished.outcome.error?.code).toBe(code);
    expect(nodeNamed(h, 'n').unschedulable).toBe(cordoned);
    expect(finished?.type === 'node.finished' && finished.outcome.cordonedAtEnd).toBe(cordoned);
    expect(nodeNamed(h, 'n').labels[KEY], 'a failed node stays eligible').toBeUndefined();
    expect(nodeNamed(h, 'n').annotations[ANNOTATIONS.status]).toBe('failed');
    expect(nodeNamed(h, 'n').annotations[ANNOTATIONS.error]).toMatch(new RegExp(`^${code}: `));
  });

  it('names the pod and the PodDisruptionBudget that blocked a drain', async () => {
    const h = harness([{ name: 'n', behaviour: { drainBlocked: true } }]);
    await runPlan(h, { drainTimeoutSeconds: 120 });
    const finished = h.events.find((e) => e.type === 'node.finished');
    expect(finished?.type === 'node.finished' && finished.outcome.error).toEqual({
      step: 'drain',
      code: 'DRAIN_TIMEOUT',
      message: 'drain did not finish within 120s; evictions still refused: shop/web-0: PodDisruptionBudget shop/web allows 0 disruptions (1 of 1 replicas required)',
    });
    expect(finished?.type === 'node.finished' && finished.outcome.phases.drain).toBe(119_000);
  });

  it('retries transient API errors with backoff and succeeds within the budget', async () => {
    const h = harness([{ name: 'n', behaviour: { apiErrors: 2 } }]);
    // No scan first, so that the first call the errors meet is the cordon's.
    const { output } = await runPlan(h, { scanFirst: false, retry: { attempts: 3, backoffSeconds: 10 } });
    expect(output.outcome).toBe('succeeded');
    const finished = h.events.find((e) => e.type === 'node.finished');
    // Two failed cordon attempts: 10 s then 20 s of backoff.
    expect(finished?.type === 'node.finished' && finished.outcome.phases.cordon).toBe(30_000);
  });
});

describe('reboots', () => {
  const kernel: MemoryNodeSpec = { name: 'k', behaviour: { report: { rebootRequired: true, rebootPackages: ['linux-image-6.8.0-49'] } } };

  it('reboots when the agent asks and the plan allows, and waits for a new boot id', async () => {
    const h = harness([kernel]);
    const { output } = await runPlan(h, { rebootIfRequired: true });
    expect(output.outcome).toBe('succeeded');
    expect(nodeNamed(h, 'k').bootCount).toBe(2);
    const finished = h.events.find((e) => e.type === 'node.finished');
    expect(finished?.type === 'node.finished' && finished.outcome).toMatchObject({ rebooted: true, rebootPending: false });
  });

  it('leaves the reboot pending, and says so on the node, when the plan forbids it', async () => {
    const h = harness([kernel]);
    const { output } = await runPlan(h, { rebootIfRequired: false });
    expect(output.outcome).toBe('succeeded');
    expect(nodeNamed(h, 'k').bootCount).toBe(1);
    expect(nodeNamed(h, 'k').annotations[ANNOTATIONS.rebootPending]).toBe('true');
    const finished = h.events.find((e) => e.type === 'node.finished');
    expect(finished?.type === 'node.finished' && finished.outcome).toMatchObject({ rebooted: false, rebootPending: true });
  });
});

describe('rollout control', () => {
  it('halts on the first failure by default and starts nothing after it', async () => {
    const h = harness([{ name: 'a', behaviour: { drainBlocked: true } }, { name: 'b' }, { name: 'c' }]);
    const { output } = await runPlan(h, { drainTimeoutSeconds: 60 });
    expect(output).toMatchObject({ outcome: 'halted', failedNodes: ['a'], notStarted: ['b', 'c'] });
    expect(h.cluster.state.patchJobsCreated).toEqual({});
  });

  it('finishes as partial when failures stay within maxFailures', async () => {
    const h = harness([{ name: 'a', behaviour: { drainBlocked: true } }, { name: 'b' }, { name: 'c' }]);
    const { output } = await runPlan(h, { drainTimeoutSeconds: 60, maxFailures: 1 });
    expect(output).toMatchObject({ outcome: 'partial', failedNodes: ['a'], notStarted: [] });
    expect(output.tally.patched).toBe(2);
  });

  it('never has more than `concurrency` nodes cordoned, nor two control-plane nodes at once', async () => {
    const nodes: MemoryNodeSpec[] = [
      { name: 'cp-1', role: 'control-plane', zone: 'a' },
      { name: 'cp-2', role: 'control-plane', zone: 'b' },
      { name: 'cp-3', role: 'control-plane', zone: 'c' },
      ...workers(9),
    ];
    const h = harness(nodes);
    let maxControlPlane = 0;
    const inFlight = new Set<string>();
    const { output } = await runPlan(h, { concurrency: 3 });
    for (const e of h.events) {
      if (e.type === 'node.step' && e.step === 'preflight') inFlight.add(e.node);
      if (e.type === 'node.finished') inFlight.delete(e.outcome.node);
      maxControlPlane = Math.max(maxControlPlane, [...inFlight].filter((n) => n.startsWith('cp-')).length);
    }
    expect(output.outcome).toBe('succeeded');
    expect(h.cluster.state.maxCordonedByUs).toBe(3);
    expect(maxControlPlane).toBe(1);
  });

  it('lets the node in flight finish when the window closes, then continues when it opens again', async () => {
    // Each node takes 30 min (5 min drain + 25 min patch); the window is 02:00-03:00 UTC, and the run starts at 02:00.
    const slow = { timings: { drainMs: 5 * 60_000, patchMs: 25 * 60_000 } };
    const h = harness(['a', 'b', 'c'].map((name) => ({ name, ...slow })));
    const { output } = await runPlan(h, { scanFirst: false, window: { start: '02:00', end: '03:00', timeZone: 'UTC' } });
    expect(output.outcome).toBe('succeeded');
    const starts = h.events.filter((e) => e.type === 'node.step' && e.step === 'preflight').map((e) => new Date(e.at).toISOString());
    expect(starts).toEqual(['2026-11-22T02:00:00.000Z', '2026-11-22T02:30:00.000Z', '2026-11-23T02:00:00.000Z']);
    expect(h.events.some((e) => e.type === 'run.state' && e.state === 'rolling.waitingForWindow')).toBe(true);
  });

  it.each([
    { name: 'an on-demand trigger starts at once (Palette\'s ten-minute grace is its own button\'s)', trigger: { kind: 'on-demand' as const }, start: '2026-11-22T02:00:00.000Z' },
    { name: 'an on-demand trigger with a future notBefore waits for it', trigger: { kind: 'on-demand' as const, notBefore: '2026-11-22T05:30:00Z' }, start: '2026-11-22T05:30:00.000Z' },
    { name: 'a weekly schedule waits for next Sunday 00:00', trigger: { kind: 'preset' as const, preset: 'weekly' as const }, start: '2026-11-29T00:00:00.000Z' },
    { name: 'a cron schedule waits for its next fire time', trigger: { kind: 'cron' as const, expression: '30 3 * * *', timeZone: 'Europe/Berlin' }, start: '2026-11-22T02:30:00.000Z' },
    { name: 'patch on boot starts at once', trigger: { kind: 'on-boot' as const }, start: '2026-11-22T02:00:00.000Z' },
  ])('$name', async ({ trigger, start }) => {
    const h = harness(workers(1));
    const handle = await h.orchestrator.start({ plan: parsePlan({ trigger }), requestedBy: 'alice' });
    await driveInVirtualTime(handle, h.clock);
    const first = h.events.find((e) => e.type === 'node.step');
    expect(new Date(first?.at ?? 0).toISOString()).toBe(start);
  });

  it('refuses an on-demand notBefore in the past, creating no run', async () => {
    const store = openStore(':memory:');
    const h = harness(workers(1), { store });
    const plan = parsePlan({ trigger: { kind: 'on-demand', notBefore: '2026-11-22T01:00:00Z' } });
    const error = await h.orchestrator.start({ plan, requestedBy: 'alice' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScheduleError);
    expect((error as Error).message).toContain('2026-11-22T01:00:00.000Z');
    expect((error as Error).message).toMatch(/in the past/);
    expect(store.listRuns()).toEqual([]);
  });

  it('a new trigger id patches nodes already at the previous hash again', async () => {
    const h = harness(workers(2));
    const first = await h.orchestrator.start({ plan: parsePlan({}), requestedBy: 'alice', triggerId: 'change-1', notBefore: null });
    await driveInVirtualTime(first, h.clock);
    const second = await h.orchestrator.start({ plan: parsePlan({}), requestedBy: 'alice', triggerId: 'change-2', notBefore: null });
    const output = await driveInVirtualTime(second, h.clock);
    expect(output?.selected).toEqual(['worker-1', 'worker-2']);
  });

  it('the same on-demand plan again (no trigger id given) finishes only what the first left undone', async () => {
    const h = harness(workers(2));
    const first = await h.orchestrator.start({ plan: parsePlan({}), requestedBy: 'alice' });
    expect(await driveInVirtualTime(first, h.clock)).toMatchObject({ selected: ['worker-1', 'worker-2'] });
    const second = await h.orchestrator.start({ plan: parsePlan({}), requestedBy: 'alice' });
    expect(await driveInVirtualTime(second, h.clock)).toMatchObject({ selected: [], outcome: 'succeeded' });
  });
});

describe('operator commands', () => {
  it('pause stops new nodes from starting, resume continues, and the node in flight finishes', async () => {
    const h = harness(workers(3));
    const handle = await h.orchestrator.start({ plan: parsePlan({}), requestedBy: 'alice', notBefore: null });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    expect(handle.send({ type: 'PAUSE', by: 'bob' })).toMatchObject({ ok: true });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 6 * 3600_000 });
    expect(handle.state).toBe('rolling.paused');
    expect(h.events.filter((e) => e.type === 'node.finished')).toHaveLength(1);
    expect(cordonedByUs(h)).toEqual([]);
    // The machine decides what it takes (snapshot.can): a second pause is taken and changes nothing.
    expect(handle.send({ type: 'PAUSE', by: 'carol' })).toMatchObject({ ok: true });
    expect(handle.state).toBe('rolling.paused');
    expect(handle.send({ type: 'RESUME', by: 'bob' })).toMatchObject({ ok: true });
    const output = await driveInVirtualTime(handle, h.clock);
    expect(output).toMatchObject({ outcome: 'succeeded' });
  });

  it('cancel during a drain gives the node back and starts nothing else', async () => {
    const h = harness([{ name: 'a', timings: { drainMs: 10 * 60_000 } }, { name: 'b' }]);
    const handle = await h.orchestrator.start({ plan: parsePlan({}), requestedBy: 'alice', notBefore: null });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    expect(cordonedByUs(h)).toEqual(['a']);
    expect(handle.send({ type: 'CANCEL', by: 'carol' })).toMatchObject({ ok: true });
    const output = await driveInVirtualTime(handle, h.clock);
    expect(output).toMatchObject({ outcome: 'cancelled', notStarted: ['b'] });
    expect(output?.tally.cancelled).toBe(1);
    expect(cordonedByUs(h)).toEqual([]);
    expect(h.cluster.state.patchJobsCreated).toEqual({});
  });

  it('cancel during the patch lets the package manager finish before stopping', async () => {
    const h = harness([{ name: 'a' }, { name: 'b' }]);
    const handle = await h.orchestrator.start({ plan: parsePlan({}), requestedBy: 'alice', notBefore: null });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    handle.send({ type: 'CANCEL', by: 'carol' });
    const output = await driveInVirtualTime(handle, h.clock);
    expect(output).toMatchObject({ outcome: 'cancelled', notStarted: ['b'] });
    expect(output?.tally.patched).toBe(1);
    expect(nodeNamed(h, 'a').unschedulable).toBe(false);
  });
});

describe('approvals', () => {
  const plan = { approval: { required: true, approvers: ['U_BOB', 'U_CAROL'] } };

  it('waits for an allowed approver other than the requester; decisions are compare-and-set', async () => {
    const store = openStore(':memory:');
    const h = harness(workers(2), { store });
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', ...plan }), requestedBy: 'U_ALICE' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 3600_000 });
    expect(handle.state).toBe('awaitingApproval');
    expect(handle.send({ type: 'APPROVE', by: 'U_ALICE' })).toEqual({ ok: false, message: 'U_ALICE requested this run and cannot approve it (two-person rule)' });
    expect(handle.send({ type: 'APPROVE', by: 'U_MALLORY' })).toEqual({ ok: false, message: 'U_MALLORY is not an approver for cluster test' });
    expect(handle.state).toBe('awaitingApproval');
    expect(handle.send({ type: 'APPROVE', by: 'U_BOB' })).toMatchObject({ ok: true });
    expect(handle.send({ type: 'APPROVE', by: 'U_CAROL' })).toMatchObject({ ok: false });
    const output = await driveInVirtualTime(handle, h.clock);
    expect(output?.outcome).toBe('succeeded');
    const decisions = store.auditRows({ runId: handle.runId }).filter((r) => r.action.startsWith('approval.'));
    expect(decisions.map((r) => [r.action, r.actor])).toEqual([['approval.approved', 'U_BOB']]);
  });

  it('a rejection ends the run as cancelled without touching a node', async () => {
    const h = harness(workers(2), { store: openStore(':memory:') });
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', ...plan }), requestedBy: 'U_ALICE' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    expect(handle.send({ type: 'REJECT', by: 'U_CAROL', reason: 'change freeze' })).toMatchObject({ ok: true });
    const output = await driveInVirtualTime(handle, h.clock);
    expect(output).toMatchObject({ outcome: 'cancelled', reason: 'rejected by U_CAROL: change freeze' });
    expect(h.cluster.state.maxCordonedByUs).toBe(0);
  });

  it('only an approver or the requester may reject; a stranger is refused with the rule and nothing is recorded', async () => {
    const store = openStore(':memory:');
    const h = harness(workers(2), { store });
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', ...plan }), requestedBy: 'U_ALICE' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 3600_000 });
    expect(handle.send({ type: 'REJECT', by: 'U_MALLORY', reason: 'no' })).toEqual({
      ok: false,
      message: 'U_MALLORY is neither an approver for cluster test nor the requester of this run, and cannot reject it',
    });
    expect(handle.state).toBe('awaitingApproval');
    expect(store.getDecision(handle.runId)).toBeNull();
    // The requester withdraws the request: the two-person rule stops self-approval, not this.
    expect(handle.send({ type: 'REJECT', by: 'U_ALICE', reason: 'wrong cluster' })).toMatchObject({ ok: true });
    expect(await driveInVirtualTime(handle, h.clock)).toMatchObject({ outcome: 'cancelled', reason: 'rejected by U_ALICE: wrong cluster' });
    expect(store.getDecision(handle.runId)).toMatchObject({ approver: 'U_ALICE', decision: 'rejected' });
  });

  it('before the run starts, a cancel follows the rejection rule: a stranger is refused, a group member is let through', async () => {
    const store = openStore(':memory:');
    const h = harness(workers(2), {
      store,
      membership: (user, entries) => Promise.resolve(user === 'U_DAN' ? entries.filter((e) => e === 'S_OPS') : []),
    });
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', approval: { required: true, approvers: ['S_OPS'] } }), requestedBy: 'U_ALICE' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 3600_000 });
    expect(await h.orchestrator.decide(handle.runId, { type: 'CANCEL', by: 'U_MALLORY' })).toEqual({
      ok: false,
      message: 'U_MALLORY is neither an approver for cluster test nor the requester of this run, and cannot cancel it before it starts (once it runs, anyone may stop it)',
    });
    expect(handle.state).toBe('awaitingApproval');
    expect(store.auditRows({ runId: handle.runId }).filter((r) => r.action === 'run.cancel')).toEqual([]);
    expect(await h.orchestrator.decide(handle.runId, { type: 'CANCEL', by: 'U_DAN' })).toMatchObject({ ok: true });
    expect(await driveInVirtualTime(handle, h.clock)).toMatchObject({ outcome: 'cancelled' });
    expect(store.auditRows({ runId: handle.runId }).filter((r) => r.action === 'run.cancel').map((r) => r.actor)).toEqual(['U_DAN']);
    expect(h.cluster.state.maxCordonedByUs).toBe(0);
  });

  it('a running run is stopped by anyone, without asking the membership resolver', async () => {
    const asked: string[] = [];
    const h = harness(workers(2), {
      store: openStore(':memory:'),
      membership: (user) => {
        asked.push(user);
        return Promise.resolve([]);
      },
    });
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', approval: { required: true, approvers: ['S_OPS'] } }), requestedBy: 'U_ALICE' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    expect(await h.orchestrator.decide(handle.runId, { type: 'APPROVE', by: 'U_BOB' })).toMatchObject({ ok: false });
    expect(asked).toEqual(['U_BOB']);
    h.orchestrator.command(handle.runId, { type: 'APPROVE', by: 'S_OPS' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 120_000 });
    expect(handle.state).toMatch(/^rolling/);
    expect(await h.orchestrator.decide(handle.runId, { type: 'CANCEL', by: 'U_MALLORY' })).toMatchObject({ ok: true });
    expect(asked, 'no Slack call for a stop anyone may make').toEqual(['U_BOB']);
    expect(await driveInVirtualTime(handle, h.clock)).toMatchObject({ outcome: 'cancelled' });
    // An approval clicked on the card after that says the run has ended, and how, not that it is "not active here".
    expect(await h.orchestrator.decide(handle.runId, { type: 'APPROVE', by: 'S_OPS' })).toEqual({
      ok: false,
      message: `run ${handle.runId} has already ended (cancelled)`,
    });
    expect(h.orchestrator.command('run-nobody-knows', { type: 'PAUSE', by: 'S_OPS' })).toEqual({ ok: false, message: 'run run-nobody-knows is not active here' });
  });

  it('the requester may withdraw a run that waits for approval by cancelling it', async () => {
    const h = harness(workers(1), { store: openStore(':memory:') });
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', ...plan }), requestedBy: 'U_ALICE' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    expect(handle.send({ type: 'CANCEL', by: 'U_MALLORY' })).toMatchObject({ ok: false });
    expect(handle.send({ type: 'CANCEL', by: 'U_ALICE' })).toMatchObject({ ok: true });
    expect(await driveInVirtualTime(handle, h.clock)).toMatchObject({ outcome: 'cancelled' });
  });

  it('a member of an approver group may reject, as the injected membership resolver says', async () => {
    const asked: string[] = [];
    const h = harness(workers(1), {
      store: openStore(':memory:'),
      membership: (user, entries) => {
        asked.push(user);
        return Promise.resolve(user === 'U_DAN' ? entries.filter((e) => e === 'S_OPS') : []);
      },
    });
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', approval: { required: true, approvers: ['S_OPS'] } }), requestedBy: 'U_ALICE' });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 3600_000 });
    expect(await h.orchestrator.decide(handle.runId, { type: 'REJECT', by: 'U_MALLORY' })).toMatchObject({ ok: false });
    expect(await h.orchestrator.decide(handle.runId, { type: 'REJECT', by: 'U_DAN', reason: 'freeze' })).toMatchObject({ ok: true });
    expect(asked).toEqual(['U_MALLORY', 'U_DAN']);
    expect(await driveInVirtualTime(handle, h.clock)).toMatchObject({ outcome: 'cancelled', reason: 'rejected by U_DAN: freeze' });
  });
});

describe('one orchestrator per cluster', () => {
  it('refuses to start while another orchestrator holds the lease, changing nothing', async () => {
    const store = openStore(':memory:');
    const mine = harness(workers(1), { store });
    await mine.cluster.acquireLease({ name: 'patchpilot-test', holder: 'other-replica', durationSeconds: 60 });
    const error = await mine.orchestrator.start({ plan: parsePlan({ cluster: 'test' }), requestedBy: 'alice' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OrchestratorError);
    expect((error as OrchestratorError).code).toBe('LEASE_HELD');
    expect((error as OrchestratorError).message).toBe(
      'cluster test is held by another orchestrator, "other-replica" (not a patchpilot process identity) since 2026-11-22T02:00:00.000Z; its lease runs until 2026-11-22T02:01:00.000Z unless it renews it',
    );
    expect(store.listRuns()).toEqual([]);
  });
});

describe('rollout safety', () => {
  it('marks a node the scan finds nothing for, without a cordon, a drain or a patch Job', async () => {
    const h = harness([{ name: 'busy' }, { name: 'idle', behaviour: { report: { result: 'no-updates', upgraded: [] } } }]);
    const { output } = await runPlan(h, {});
    expect(output.tally).toMatchObject({ patched: 1, 'no-updates': 1 });
    const steps = h.events.flatMap((e) => (e.type === 'node.step' && e.node === 'idle' ? [e.step] : []));
    expect(steps).toEqual(['preflight', 'scan', 'mark']);
    expect(nodeNamed(h, 'idle').annotations[ANNOTATIONS.status]).toBe('no-updates');
    expect(nodeNamed(h, 'idle').labels[KEY]).toMatch(/^[0-9a-f]{20}$/);
    expect(Object.keys(h.cluster.state.patchJobsCreated)).toEqual([expect.stringMatching(/^busy@/)]);
  });

  it('waits in blocked while another node is NotReady, says why in the store, and halts with BLOCKED_TIMEOUT', async () => {
    const store = openStore(':memory:');
    const h = harness([...workers(2), { name: 'db-1', ready: false }], { store });
    const plan = parsePlan({ cluster: 'test', nodes: ['worker-1', 'worker-2'], healthGate: { blockedTimeoutSeconds: 300 } });
    const handle = await h.orchestrator.start({ plan, requestedBy: 'alice', triggerId: 't', notBefore: null });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    expect(handle.state).toBe('rolling.blocked');
    expect(store.requireRun(handle.runId)).toMatchObject({ status: 'blocked', reason: '1 other node(s) NotReady: db-1 (healthGate.maxNotReady 0)' });
    const output = await driveInVirtualTime(handle, h.clock);
    expect(output).toMatchObject({ outcome: 'halted', notStarted: ['worker-1', 'worker-2'] });
    expect(output?.reason).toMatch(/^BLOCKED_TIMEOUT: blocked for more than 300s \(healthGate\.blockedTimeoutSeconds\): 1 other node\(s\) NotReady: db-1/);
    expect(output?.finishedAt).toBe(T0 + 300_000);
    expect(store.requireRun(handle.runId)).toMatchObject({ outcome: 'halted', reason: output?.reason });
    expect(h.cluster.state.nodes.filter((n) => n.unschedulable)).toEqual([]);
  });

  it('an operator may pause a blocked run, and resume it into the gate again', async () => {
    const h = harness([...workers(1), { name: 'db-1', ready: false }]);
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test', nodes: ['worker-1'] }), requestedBy: 'alice', triggerId: 't', notBefore: null });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 60_000 });
    expect(handle.state).toBe('rolling.blocked');
    expect(handle.send({ type: 'PAUSE', by: 'bob' })).toMatchObject({ ok: true });
    expect(handle.state).toBe('rolling.paused');
    expect(handle.send({ type: 'RESUME', by: 'bob' })).toMatchObject({ ok: true });
    await driveInVirtualTime(handle, h.clock, { until: T0 + 61_000 });
    expect(handle.state).toBe('rolling.blocked');
    expect(handle.send({ type: 'CANCEL', by: 'bob' })).toMatchObject({ ok: true });
    expect(await driveInVirtualTime(handle, h.clock)).toMatchObject({ outcome: 'cancelled' });
  });

  it('halts after a failed canary whatever the error budget, and resolves percentages against the selection', async () => {
    const h = harness([{ name: 'worker-1', behaviour: { report: { result: 'failed', upgraded: [], error: { code: 'DISK_FULL', message: 'no space' } } } }, ...workers(8).slice(1)]);
    const { output } = await runPlan(h, { concurrency: '50%', maxFailures: '50%', canary: { nodes: 1, soakSeconds: 60 } });
    expect(output).toMatchObject({ outcome: 'halted', failedNodes: ['worker-1'] });
    expect(output.reason).toBe('canary worker-1 failed (DISK_FULL): the run halts whatever maxFailures allows');
    expect(output.notStarted).toHaveLength(7);
  });

  it('runs the canary alone, soaks it, then the rest at the resolved concurrency, each soaking after its uncordon', async () => {
    const h = harness(workers(5));
    const { output } = await runPlan(h, { concurrency: '40%', canary: { nodes: 1, soakSeconds: 600 }, soakSeconds: 120 });
    expect(output.outcome).toBe('succeeded');
    const starts = h.events.flatMap((e) => (e.type === 'node.step' && e.step === 'preflight' ? [[e.node, e.at - T0] as const] : []));
    const canaryDone = h.events.find((e) => e.type === 'node.finished' && e.outcome.node === starts[0]![0])!.at;
    // Nothing starts until the canary has finished and soaked for 10 minutes; then two at a time (40% of 5).
    expect(starts.slice(1).every(([, at]) => at + T0 >= canaryDone + 600_000)).toBe(true);
    expect(h.cluster.state.maxCordonedByUs).toBe(2);
    const soaks = h.events.filter((e) => e.type === 'node.step' && e.step === 'soak');
    expect(soaks).toHaveLength(5);
  });
});
