/**
 * The sandbox's kubelets heartbeat at the real cadence in simulated time: node Leases in kube-node-lease renewed
 * every 10 s with a MicroTime, the Node conditions' lastHeartbeatTime every 5 minutes; a node that is down renews
 * nothing.
 */
import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.ts';
import { createSandbox, LEASE_RENEW_MS, NODE_STATUS_REPORT_MS } from '../../src/sim/sandbox/index.ts';
import { loadScenario } from '../../src/sim/scenario.ts';

const START = Date.parse('2026-12-06T04:00:00Z');

describe('sandbox heartbeats', () => {
  it('renews node Leases every 10 s and reports node status every 5 minutes, on the clock', async () => {
    const clock = new VirtualClock(START);
    const sandbox = createSandbox(loadScenario('fixtures/scenarios/sandbox-palette.yaml'), clock, { heartbeats: true });
    try {
      const lease = () => sandbox.store.get('leases', { namespace: 'kube-node-lease', name: 'worker-1' });
      const heartbeat = () => ((sandbox.store.get('nodes', { name: 'worker-1' }).status as { conditions: { type: string; lastHeartbeatTime: string }[] }).conditions.find((c) => c.type === 'Ready')!.lastHeartbeatTime);
      expect(lease().spec).toEqual({ holderIdentity: 'worker-1', leaseDurationSeconds: 40, renewTime: '2026-12-06T04:00:00.000000Z' });
      expect(lease().metadata.ownerReferences?.[0]).toMatchObject({ kind: 'Node', name: 'worker-1', uid: sandbox.store.get('nodes', { name: 'worker-1' }).metadata.uid });
      const before = sandbox.store.resourceVersion;
      clock.increment(LEASE_RENEW_MS);
      expect((lease().spec as { renewTime: string }).renewTime).toBe('2026-12-06T04:00:10.000000Z');
      expect(Number(sandbox.store.resourceVersion)).toBeGreaterThan(Number(before));
      expect(heartbeat()).toBe('2026-12-06T04:00:00Z');
      clock.increment(NODE_STATUS_REPORT_MS - LEASE_RENEW_MS);
      expect(heartbeat()).toBe('2026-12-06T04:05:00Z');
      // A node that goes down (a reboot: shut down within seconds, back after 45-90 s) stops renewing meanwhile.
      const ready = () => (sandbox.store.get('nodes', { name: 'worker-1' }).status as { conditions: { type: string; status: string }[] }).conditions.find((c) => c.type === 'Ready')!.status;
      const rebooting = sandbox.sim.reboot('worker-1', 'hb');
      while (ready() === 'True') {
        clock.increment(1_000);
        await Promise.resolve();
      }
      await rebooting;
      const renewed = (lease().spec as { renewTime: string }).renewTime;
      clock.increment(LEASE_RENEW_MS * 3);
      expect(ready()).not.toBe('True');
      expect((lease().spec as { renewTime: string }).renewTime).toBe(renewed);
    } finally {
      sandbox.binding.close();
    }
  });
});
