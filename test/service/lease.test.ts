/**
 * The cluster's lease while a run goes on: a renewal that fails is no crash, and a lease that is lost (run out
 * without renewal, or taken by another orchestrator) stops the run from starting nodes until it is regained.
 */
import { describe, expect, it } from 'vitest';
import type { LeaseRequest } from '../../src/cluster/port.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { driveInVirtualTime } from '../../src/service/drive.ts';
import { openStore } from '../../src/store/index.ts';
import { harness, workers } from '../helpers/fixtures.ts';

function withRenewal(h: ReturnType<typeof harness>, renew: (request: LeaseRequest) => Promise<boolean>) {
  const original = h.cluster.renewLease.bind(h.cluster);
  h.cluster.renewLease = (request) => renew(request).then((answer) => (answer ? original(request) : false));
}

describe('keeping the lease', () => {
  it('survives renewals that fail, pauses the run once the lease has run out, and resumes when it is renewed again', async () => {
    const store = openStore(':memory:');
    const h = harness(workers(4), { store, leaseSeconds: 60 });
    let apiDown = false;
    withRenewal(h, async () => {
      if (apiDown) throw new Error('connect ECONNREFUSED 10.0.0.1:6443');
      return true;
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test' }), requestedBy: 'alice', triggerId: 't', notBefore: null });
      apiDown = true;
      // Past the lease's end: renewals kept failing, so the run must have stopped taking nodes.
      await driveInVirtualTime(handle, h.clock, { until: h.clock.now() + 5 * 60_000 });
      expect(handle.state).toMatch(/paused/);
      const patchedWhileDown = h.cluster.state.nodes.filter((n) => n.labels['patchpilot.io/os-patch']).length;
      await driveInVirtualTime(handle, h.clock, { until: h.clock.now() + 30 * 60_000 });
      expect(h.cluster.state.nodes.filter((n) => n.labels['patchpilot.io/os-patch']).length).toBe(patchedWhileDown);
      expect(patchedWhileDown).toBeLessThan(4);

      apiDown = false;
      const output = await driveInVirtualTime(handle, h.clock);
      expect(output?.outcome).toBe('succeeded');
      expect(h.cluster.state.nodes.every((n) => n.labels['patchpilot.io/os-patch'])).toBe(true);
      const actions = store.auditRows({ runId: handle.runId }).map((row) => row.action);
      expect(actions).toContain('run.lease-lost');
      expect(actions).toContain('run.lease-regained');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      store.close();
    }
  });

  it('pauses at once when another orchestrator holds the lease', async () => {
    const h = harness(workers(3), { leaseSeconds: 60 });
    let stolen = false;
    withRenewal(h, async () => !stolen);
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test' }), requestedBy: 'alice', triggerId: 't', notBefore: null });
    stolen = true;
    await driveInVirtualTime(handle, h.clock, { until: h.clock.now() + 21_000 });
    expect(handle.state).toMatch(/paused/);
  });
});
