/**
 * Debian's python3-kubernetes (22.6, a client no one here wrote) drives a fresh sandbox: validation refusals,
 * PodDisruptionBudget status and the eviction's 429, server-side dry run, `watch=True`, node Leases, and Events where
 * upstream accepts them. Skips with a reason where /usr/bin/python3 has no kubernetes module.
 */
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { kubeconfig, startKubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const PYTHON = '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import kubernetes'], { encoding: 'utf8' });
const available = probe.status === 0;
if (!available) console.warn(`[test/sandbox/python-client] skipped: ${PYTHON} cannot import kubernetes (scripts/setup-test-deps.sh installs Debian's python3-kubernetes): ${probe.error?.message ?? probe.stderr.trim().split('\n').at(-1)}`);

describe.skipIf(!available)('the sandbox through python3-kubernetes', () => {
  const dir = scratchDirs('sandbox-python')();

  it('refuses what Kubernetes refuses, enforces budgets, honours dry run, watches on watch=True, has node Leases', { timeout: 90_000 }, async () => {
    const clock = new ScaledClock(10);
    const sandbox = createSandbox(loadScenario('fixtures/scenarios/sandbox-palette.yaml'), clock, { heartbeats: true });
    const server = await startKubeApiServer({ store: sandbox.store });
    try {
      const file = join(dir, 'kubeconfig');
      writeFileSync(file, kubeconfig(server.url));
      const pod = sandbox.store.list('pods', { namespace: 'apps', fieldSelector: 'spec.nodeName=worker-1' }).items[0]!;
      const { stdout } = await promisify(execFile)(PYTHON, ['test/sandbox/clients/python_client.py', file, 'apps', pod.metadata.name!, 'worker-1'], { timeout: 60_000 });
      const out = JSON.parse(stdout.trim().split('\n').at(-1)!);
      expect(out.labelsNotAMap).toMatchObject({ status: 422, reason: 'Invalid' });
      expect(out.labelsNotAMap.message).toContain('metadata.labels: must be object');
      expect(out.labelsKept).toBe(true);
      expect(out.unschedulableYes).toMatchObject({ status: 422 });
      expect(out.badLabelKey).toMatchObject({ status: 422, reason: 'Invalid', causes: [{ field: 'metadata.labels', reason: 'FieldValueInvalid' }] });
      expect(out.leaseSixty).toMatchObject({ status: 400, reason: 'BadRequest', message: 'Lease in version "v1" cannot be handled as a Lease: spec.leaseDurationSeconds: must be integer' });
      expect(out.eventInOsPatch).toMatchObject({ status: 422, message: expect.stringContaining('involvedObject.namespace: Invalid value: "": does not match event.namespace') });
      expect(out.eventInDefault).toEqual({ status: 'ok' });
      // Every pod of the budget's selector, all Ready: maxUnavailable 0 wants them all.
      const selected = sandbox.store.list('pods', { namespace: 'apps', labelSelector: `app=${pod.metadata.labels!.app}` }).items.length;
      expect(selected).toBeGreaterThan(1);
      expect(out.pdbStatus).toEqual({ disruptionsAllowed: 0, currentHealthy: selected, desiredHealthy: selected, expectedPods: selected, observedGeneration: 1 });
      expect(out.evictionRefused).toMatchObject({ status: 429, reason: 'TooManyRequests', message: "Cannot evict pod as it would violate the pod's disruption budget." });
      expect(out.evictionRefused.causes).toEqual([{ type: 'DisruptionBudget', message: `The disruption budget py-all needs ${selected} healthy pods and has ${selected} currently` }]);
      expect(out.evictionRefusedDryRun).toMatchObject({ status: 429 });
      expect(out.evictionDryRun).toEqual({ status: 'ok' });
      expect(out.podAfterDryRun).toBe(true);
      expect(out.deleteNodeDryRun).toEqual({ status: 'ok' });
      expect(out.nodeAfterDryRun).toBe('worker-1');
      expect(out.watch).toEqual(expect.arrayContaining(['ADDED cp-1', 'ADDED worker-1', 'ADDED worker-2']));
      expect(out.nodeLeases).toEqual(expect.arrayContaining(['cp-1', 'worker-1', 'worker-2']));
      expect(out.nodeLease).toEqual({ holder: 'worker-1', duration: 40, renewed: true });
    } finally {
      sandbox.binding.close();
      clock.clearAll();
      await server.close();
    }
  });
});
