/**
 * A whole run: the real Orchestrator with KubeCluster on the sandbox API server, in virtual time. Nodes are cordoned,
 * drained, patched by the agent Job, rebooted by the reboot Job, uncordoned and labelled; a node deleted in the
 * middle of its patch fails with NODE_GONE and the run goes on to the next.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { KubeObject } from '../../src/sim/kube-api/index.ts';
import type { NodeOutcome } from '../../src/engine/node.machine.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { Orchestrator } from '../../src/service/orchestrator.ts';
import { agentReportLine, eventsFor, fakeKubelet, seedNode, seedPod, startBench, type Bench } from './support.ts';

let bench: Bench;

beforeEach(async () => {
  bench = await startBench();
});

afterEach(async () => {
  await bench.close();
});

it('patches the cluster node by node, reboots where needed, and carries on past a node that vanishes', async () => {
  const { store, clock } = bench;
  for (const name of ['w1', 'w2', 'w3']) {
    seedNode(store, name, { bootId: `${name}-boot-1` });
    seedPod(store, `web-${name}`, { node: name, owner: { kind: 'ReplicaSet', name: 'web-7d9' } });
  }
  // The kubelet runs the agent (w1 needs a reboot) and the reboot Job (the node comes back with a new boot id).
  fakeKubelet(store, (job: KubeObject) => {
    const node = job.metadata.annotations?.['patchpilot.io/node'] ?? '';
    if (job.metadata.labels?.['patchpilot.io/action'] === 'reboot') {
      clock.setTimeout(() => {
        if (!store.find('nodes', { name: node })) return;
        store.modify('nodes', { name: node }, (n) => ((n.status as { nodeInfo: { bootID: string } }).nodeInfo.bootID = `${node}-boot-2`), { internal: true });
      }, 45_000);
      return { log: [], exitCode: 0, runMs: 5_000 };
    }
    // w2 is deleted from the cluster (autoscaled away) while the agent runs on it.
    if (node === 'w2' && job.metadata.labels?.['patchpilot.io/action'] === 'patch') clock.setTimeout(() => store.delete('nodes', { name: 'w2' }), 10_000);
    const reboot = node === 'w1';
    return { log: ['Reading package lists...', agentReportLine(reboot ? { rebootRequired: true, rebootPackages: ['linux-image-generic'] } : {})], exitCode: 0 };
  });

  const cluster = bench.cluster();
  const finished: NodeOutcome[] = [];
  const orchestrator = new Orchestrator({
    cluster,
    clock,
    holder: 'test-orchestrator',
    newRunId: () => 'run-1',
    onEvent: (event) => {
      if (event.type === 'node.finished') finished.push(event.outcome);
    },
  });
  // No scan first: the node must vanish during its patch (a scan Job would be the one it vanished under).
  const plan = parsePlan({ cluster: 'test', maxFailures: 1, scanFirst: false, retry: { attempts: 2, backoffSeconds: 5 } });
  const handle = await bench.time.run(orchestrator.start({ plan, requestedBy: 'test', notBefore: null }));
  const output = await bench.time.run(handle.result);

  expect(output.outcome).toBe('partial');
  expect(output.tally).toMatchObject({ patched: 2, failed: 1 });
  expect(finished.map((o) => [o.node, o.result, o.error?.code ?? null, o.rebooted])).toEqual([
    ['w1', 'patched', null, true],
    ['w2', 'failed', 'NODE_GONE', false],
    ['w3', 'patched', null, false],
  ]);
  const nodes = store.list('nodes').items;
  expect(nodes.map((n) => n.metadata.name)).toEqual(['w1', 'w3']);
  const hash = nodes[0]!.metadata.labels?.['patchpilot.io/os-patch'];
  expect(hash).toMatch(/^[0-9a-f]{20}$/);
  for (const node of nodes) {
    expect(node.spec).toEqual({});
    expect(node.metadata.annotations?.['patchpilot.io/cordoned-by']).toBeUndefined();
    expect(node.metadata.labels?.['patchpilot.io/os-patch']).toBe(hash);
    expect(node.metadata.annotations?.['patchpilot.io/last-patch-status']).toBe('patched');
  }
  expect((nodes[0]!.status as { nodeInfo: { bootID: string } }).nodeInfo.bootID).toBe('w1-boot-2');
  expect(store.list('pods', { namespace: 'shop' }).items).toEqual([]);
  expect(eventsFor(store, 'w1').map((e) => e.reason)).toEqual([
    'PatchpilotCordon',
    'PatchpilotDrain',
    'PatchpilotPatch',
    'PatchpilotPatch',
    'PatchpilotReboot',
    'PatchpilotReboot',
    'PatchpilotUncordon',
    'PatchpilotMark',
  ]);
  expect(eventsFor(store, 'w2').some((e) => e.type === 'Warning' && e.message.includes('no longer exists'))).toBe(true);
  // The lease was given back at the end.
  expect(store.get('leases', { namespace: 'os-patch', name: 'patchpilot-test' }).spec).not.toHaveProperty('holderIdentity');
});
