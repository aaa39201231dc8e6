/**
 * Properties over random clusters and faults (fast-check): whatever goes wrong, the safety rules hold and every run
 * ends. Each case runs the real engine against the simulator in virtual time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_HOLD_PACKAGES } from '../../src/engine/plan.ts';
import { runScenario } from '../../src/sim/runner.ts';
import { parseScenario } from '../../src/sim/scenario.ts';

const LINUX = ['ubuntu-22.04', 'ubuntu-24.04', 'debian-12', 'rocky-9', 'rhel-9'] as const;
const NODE_FAULTS = [
  { kind: 'apt-lock', holdSeconds: 200 },
  { kind: 'apt-lock', holdSeconds: 900 },
  { kind: 'reboot-required' },
  { kind: 'rejoin-fails' },
  { kind: 'rejoin-slow', delaySeconds: 400 },
  { kind: 'disk-full' },
  { kind: 'repo-unreachable' },
  { kind: 'postinst-fails' },
  { kind: 'dpkg-interrupted' },
  { kind: 'pdb-blocks-drain' },
  { kind: 'pdb-blocks-drain', forSeconds: 60 },
  { kind: 'pod-stuck-terminating' },
  { kind: 'node-not-ready', forSeconds: 300 },
  { kind: 'api-errors', rate: 0.3 },
  { kind: 'agent-crash' },
  { kind: 'keyserver-unreachable' },
] as const;

const clusterArb = fc.record({
  seed: fc.nat(1_000_000),
  nodes: fc.array(
    fc.record({ os: fc.oneof(fc.constantFrom(...LINUX), fc.constant('windows-2022' as const)), controlPlane: fc.boolean() }),
    { minLength: 1, maxLength: 10 },
  ),
  faults: fc.array(fc.record({ node: fc.nat(), fault: fc.constantFrom(...NODE_FAULTS) }), { maxLength: 5 }),
  crashAtMinute: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
  plan: fc.record({
    concurrency: fc.integer({ min: 1, max: 4 }),
    maxFailures: fc.integer({ min: 0, max: 3 }),
    rebootIfRequired: fc.boolean(),
    drainTimeoutSeconds: fc.constantFrom(120, 600),
    readyTimeoutSeconds: fc.constantFrom(300, 600),
    lockTimeoutSeconds: fc.constantFrom(300, 600),
    prefetch: fc.boolean(),
  }),
  security: fc.subarray(['openssl', 'curl', 'linux-image', 'kubelet', 'containerd', 'glibc', 'systemd'], { minLength: 0 }),
});

type Case = typeof clusterArb extends fc.Arbitrary<infer T> ? T : never;

function scenarioText(c: Case): string {
  const nodes = c.nodes.map((n, i) => ({ name: `n${i + 1}`, os: n.os, role: n.controlPlane ? 'control-plane' : 'worker' }));
  const faults = c.faults.map((f) => ({ node: `n${(f.node % nodes.length) + 1}`, ...f.fault }));
  if (c.crashAtMinute !== undefined) faults.push({ kind: 'orchestrator-crash', at: `${c.crashAtMinute}m` } as never);
  return JSON.stringify({
    name: 'property',
    seed: c.seed,
    cluster: { nodes },
    updates: { security: c.security, other: ['vim'] },
    plan: { ...c.plan, retry: { attempts: 6, backoffSeconds: 5 } },
    faults,
  });
}

describe('properties of every run', () => {
  it('never exceeds concurrency, leaves no healthy node cordoned, never upgrades held packages, patches each node at most once, and ends', async () => {
    await fc.assert(
      fc.asyncProperty(clusterArb, async (c) => {
        const scenario = parseScenario(scenarioText(c), 'property');
        const result = await runScenario(scenario, { horizonMs: 10 * 86_400_000 });
        expect(result.runs).toHaveLength(1);
        const run = result.runs[0]!;
        expect(['succeeded', 'partial', 'halted', 'failed']).toContain(run.outcome);
        // The run checks one-node-at-a-time only where the plan asks for one node at a time.
        const broken = run.invariants.filter((i) => !i.ok);
        expect(broken).toEqual([]);
        for (const node of run.nodes) {
          for (const held of DEFAULT_HOLD_PACKAGES) expect(node.upgraded).not.toContain(held);
          if (node.result === 'patched' || node.result === 'no-updates') expect(node.cordonedAtEnd).toBe(false);
          if (node.os === 'windows-2022') expect(node.result).toBe('not-selected');
        }
        // The error budget: a run that finished normally had no more failures than allowed.
        const failed = run.nodes.filter((n) => n.result === 'failed').length;
        if (run.outcome === 'succeeded') expect(failed).toBe(0);
        if (run.outcome === 'partial') expect(failed).toBeLessThanOrEqual(c.plan.maxFailures);
        if (run.outcome === 'halted') expect(failed).toBeGreaterThan(c.plan.maxFailures);
        // The engine adds no idle time of its own.
        if (run.lowerBoundSeconds > 0) expect(run.makespanSeconds).toBeGreaterThanOrEqual(run.lowerBoundSeconds);
      }),
      { numRuns: 60, seed: 20261122 },
    );
  });
});
