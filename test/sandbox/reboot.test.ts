/**
 * A simulated node that reboots comes back in the API by itself: Ready, with a new boot id, seen by a client that only
 * reads Node objects (as the adapter and kubectl do) and never makes the simulator look at the node. The boot used to
 * be settled by a timer that, fired early by Node's millisecond rounding, found the boot not yet due and did nothing.
 */
import { describe, expect, it } from 'vitest';
import { createSandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';

interface NodeStatus {
  nodeInfo: { bootID: string };
  conditions: Array<{ type: string; status: string }>;
}

describe('a rebooted sandbox node', () => {
  it('is Ready again with a new boot id, every time, without anyone asking the simulator', { timeout: 60_000 }, async () => {
    const scenario = loadScenario('fixtures/scenarios/sandbox-palette.yaml');
    const outcomes: string[] = [];
    for (let trial = 0; trial < 20; trial++) {
      const clock = new ScaledClock(600);
      const sandbox = createSandbox({ ...scenario, seed: 1000 + trial }, clock);
      try {
        const status = () => sandbox.store.get('nodes', { name: 'worker-2' }).status as unknown as NodeStatus;
        const back = (bootBefore: string) => status().nodeInfo.bootID !== bootBefore && status().conditions.some((c) => c.type === 'Ready' && c.status === 'True');
        const bootBefore = status().nodeInfo.bootID;
        await sandbox.sim.reboot('worker-2', `trial-${trial}`);
        expect(status().conditions.find((c) => c.type === 'Ready')?.status).not.toBe('True');
        // A boot takes 45 to 90 simulated seconds; allow 600 (one wall second at 600x), then a loaded machine's slack.
        const deadline = performance.now() + 5_000;
        while (!back(bootBefore) && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
        outcomes.push(back(bootBefore) ? 'back' : `still down at ${new Date(clock.now()).toISOString()}`);
      } finally {
        sandbox.binding.close();
        clock.clearAll();
      }
    }
    expect(outcomes).toEqual(Array(20).fill('back'));
  });
});
