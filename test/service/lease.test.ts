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
  h.cluster.renewLease = (request) =>
    renew(request).then((answer) => (answer ? original(request) : { acquired: false as const, holder: 'patchpilot/other/1/2026-12-06T00:00:00Z/abcdef', since: null, expiresAt: h.clock.now() + 60_000 }));
}

/** Records when each cluster-changing call reached the cluster. */
function recordWrites(h: ReturnType<typeof harness>): number[] {
  const at: number[] = [];
  for (const method of ['cordon', 'uncordon', 'drain', 'startPatchJob', 'reboot', 'patchNodeMetadata'] as const) {
    const original = (h.cluster[method] as (...args: unknown[]) => Promise<unknown>).bind(h.cluster);
    (h.cluster as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      at.push(h.clock.now());
      return original(...args);
    };
  }
  return at;
}

describe('keeping the lease', () => {
  it('survives renewals that fail, writes nothing once the lease has run out by its own clock, and goes on when it is renewed', async () => {
    const store = openStore(':memory:');
    const h = harness(workers(4), { store, leaseSeconds: 60 });
    let apiDown = false;
    withRenewal(h, async () => {
      if (apiDown) throw new Error('connect ECONNREFUSED 10.0.0.1:6443');
      return true;
    });
    const writes = recordWrites(h);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test' }), requestedBy: 'alice', triggerId: 't', notBefore: null });
      const startedAt = h.clock.now();
      apiDown = true;
      // Renewals fail from the first one on: the lease we trust ends 0.8 of a term after our last renewal was sent.
      await driveInVirtualTime(handle, h.clock, { until: startedAt + 100_000 });
      expect(handle.state).toMatch(/paused/);
      const trustedUntil = startedAt + 48_000;
      expect(writes.filter((t) => t >= trustedUntil)).toEqual([]);
      expect(writes.filter((t) => t < trustedUntil).length).toBeGreaterThan(0);

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

  it('stops the run for good, writing nothing more, when another orchestrator holds the lease', async () => {
    const h = harness(workers(3), { leaseSeconds: 60 });
    let stolen = false;
    withRenewal(h, async () => !stolen);
    const writes = recordWrites(h);
    const handle = await h.orchestrator.start({ plan: parsePlan({ cluster: 'test' }), requestedBy: 'alice', triggerId: 't', notBefore: null });
    stolen = true;
    const stolenAt = h.clock.now();
    await expect(driveInVirtualTime(handle, h.clock, { until: h.clock.now() + 600_000 })).rejects.toMatchObject({ code: 'LEASE_LOST' });
    // The first renewal (a third of the term in) saw the other holder; nothing was sent after it.
    expect(writes.filter((t) => t > stolenAt + 20_000)).toEqual([]);
    await expect(handle.result).rejects.toThrow(/another orchestrator holds the cluster's lease: process 1 on other/);
  });
});
