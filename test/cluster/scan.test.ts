/**
 * The scan at the port level: every ClusterPort runs the agent report-only and returns its report, changing nothing
 * on the node. MemoryCluster and SimCluster in virtual time; KubeCluster through the sandbox API server over HTTP,
 * where the Job must carry the agent's --dry-run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCluster } from '../../src/cluster/memory.ts';
import type { ScanSpec } from '../../src/cluster/port.ts';
import { VirtualClock } from '../../src/engine/clock.ts';
import { SimCluster } from '../../src/sim/cluster.ts';
import { parseScenario } from '../../src/sim/scenario.ts';
import { agentArgs } from '../../src/cluster/kube/job-manifest.ts';
import { agentReportLine, eventsFor, fakeKubelet, NAMESPACE, seedNode, seedPod, startBench, VirtualTime, type Bench } from '../kube/support.ts';

const spec = (node: string, overrides: Partial<ScanSpec> = {}): ScanSpec => ({
  runId: 'run-1',
  node,
  hash: '0a436363a5cd9980e2cc',
  mode: 'native',
  securityOnly: true,
  holdPackages: ['kubelet', 'kubeadm', 'kubectl'],
  lockTimeoutSeconds: 600,
  ...overrides,
});

/** Runs `operation`, jumping the virtual clock from timer to timer until it settles. */
async function inVirtualTime<T>(clock: VirtualClock, operation: Promise<T>): Promise<T> {
  let settled = false;
  const watched = operation.finally(() => (settled = true));
  watched.catch(() => {});
  while (!settled) {
    await new Promise((resolve) => setImmediate(resolve));
    if (!settled && !clock.advanceToNext()) await new Promise((resolve) => setImmediate(resolve));
  }
  return watched;
}

describe('MemoryCluster.scanNode', () => {
  it('reports what the patch would upgrade, or no-updates, and creates no patch Job', async () => {
    const clock = new VirtualClock(0);
    const cluster = MemoryCluster.create('c', [{ name: 'w1' }, { name: 'w2', behaviour: { report: { result: 'no-updates', upgraded: [] } } }], { clock });
    const signal = new AbortController().signal;
    const w1 = await inVirtualTime(clock, cluster.scanNode(spec('w1'), signal));
    expect(w1).toMatchObject({ result: 'patched', upgraded: [{ name: 'openssl' }], error: null });
    expect(clock.now()).toBe(10_000);
    expect(await inVirtualTime(clock, cluster.scanNode(spec('w2'), signal))).toMatchObject({ result: 'no-updates', upgraded: [] });
    expect(cluster.state.patchJobsCreated).toEqual({});
    expect((await cluster.getNode('w1'))?.unschedulable).toBe(false);
  });
});

const SIM = `
name: scan
seed: 7
cluster:
  nodes:
    - { name: a, os: ubuntu-22.04 }
    - { name: b, os: rocky-9, updates: { security: [], other: [vim] } }
    - { name: c, os: debian-12 }
    - { name: d, os: ubuntu-22.04 }
updates: { security: [openssl, linux-image], other: [vim] }
faults:
  - { node: c, kind: repo-unreachable }
  - { node: d, kind: apt-lock, holdSeconds: 30 }
`;

describe('SimCluster.scanNode', () => {
  it('lists the updates and the reboot they need without installing anything; no-updates and repo failures as the dry run reports them', async () => {
    const scenario = parseScenario(SIM);
    const clock = new VirtualClock(0);
    const observed: string[] = [];
    const sim = new SimCluster(scenario.nodes, {
      name: 'sim', clock, seed: 7, epoch: 0, updates: scenario.updates, faults: scenario.faults,
      observe: (o) => { if (o.type === 'fault') observed.push(`${o.node}:${o.kind}`); },
    });
    const signal = new AbortController().signal;
    const a = await inVirtualTime(clock, sim.scanNode(spec('a'), signal));
    expect(a.result).toBe('patched');
    expect(a.upgraded.map((u) => u.name).sort()).toEqual(['linux-image-generic', 'openssl']);
    expect(a.rebootRequired).toBe(true);
    expect(a.rebootPackages.length).toBeGreaterThan(0);
    // Nothing was installed: a second scan announces the same upgrades.
    const again = await inVirtualTime(clock, sim.scanNode(spec('a', { runId: 'run-2' }), signal));
    expect(again.upgraded).toEqual(a.upgraded);
    expect(sim.state.nodeFacts('a')?.rebootRequired).toBe(false);
    expect(sim.invariants.stats.patchJobs.size).toBe(0);

    expect(await inVirtualTime(clock, sim.scanNode(spec('b'), signal))).toMatchObject({ result: 'no-updates', upgraded: [], rebootRequired: false });
    expect(await inVirtualTime(clock, sim.scanNode(spec('c'), signal))).toMatchObject({ result: 'failed', error: { code: 'REPO_UNREACHABLE' } });

    // The scan does not wait for (nor use up) a held apt lock: the patch still meets it.
    const d = await inVirtualTime(clock, sim.scanNode(spec('d'), signal));
    expect(d.result).toBe('patched');
    expect(observed).not.toContain('d:apt-lock');
    const jobName = 'apply-os-patch-on-d-with-x';
    await sim.startPatchJob({ ...spec('d'), agent: 'modern', rebootIfRequired: true, jobName, downloadOnly: false });
    expect(observed).toContain('d:apt-lock');
    const patched = await inVirtualTime(clock, sim.awaitAgentReport(jobName, signal));
    expect(patched.upgraded).toEqual(d.upgraded);
  });
});

describe('KubeCluster.scanNode', () => {
  let bench: Bench | undefined;
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  });

  it('runs the agent with --dry-run as a scan Job and returns its report', async () => {
    bench = await startBench();
    const kube = bench.cluster();
    seedNode(bench.store, 'w1');
    const kubelet = fakeKubelet(bench.store, () => ({ log: ['Reading package lists...', agentReportLine({ rebootRequired: true, rebootPackages: ['linux-image-generic'] })], exitCode: 0 }));
    const time: VirtualTime = bench.time;
    const report = await time.run(kube.scanNode(spec('w1'), new AbortController().signal));
    expect(report).toMatchObject({ result: 'patched', rebootRequired: true, upgraded: [{ name: 'openssl' }] });
    expect([...kubelet.jobs.keys()]).toEqual(['scan-os-patch-on-w1-with-0a436363a5cd9980e2cc']);
    const job = kubelet.jobs.get('scan-os-patch-on-w1-with-0a436363a5cd9980e2cc')!;
    expect(job.metadata.labels?.['patchpilot.io/action']).toBe('scan');
    const args = (job.spec as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
    expect(args).toContain('--dry-run');
    expect(args).toEqual(agentArgs({ ...spec('w1'), downloadOnly: false, reportOnly: true }));
    expect(bench.store.find('jobs', { namespace: NAMESPACE, name: 'scan-os-patch-on-w1-with-0a436363a5cd9980e2cc' })).toBeTruthy();
    expect(eventsFor(bench.store, 'w1').map((e) => e.reason)).toEqual(['PatchpilotScan', 'PatchpilotScan']);
    // Nothing on the node changed.
    const node = bench.store.get('nodes', { name: 'w1' });
    expect((node.spec as { unschedulable?: boolean } | undefined)?.unschedulable ?? false).toBe(false);
  });
});

describe('KubeCluster: what the health gate, the blockers and the soak read', () => {
  let bench: Bench | undefined;
  afterEach(async () => {
    await bench?.close();
    bench = undefined;
  });

  it('lists pods by selector across namespaces and by node, with their Ready condition; answers /readyz; lists only unhealthy nodes', async () => {
    bench = await startBench();
    const kube = bench.cluster();
    seedNode(bench.store, 'w1');
    seedNode(bench.store, 'w2', { ready: false });
    seedNode(bench.store, 'w3', { unschedulable: true });
    seedPod(bench.store, 'backup-1', { node: 'w1', namespace: 'os-patch', labels: { app: 'backup' } });
    seedPod(bench.store, 'web-1', { node: 'w1', labels: { app: 'web' } });
    seedPod(bench.store, 'web-2', { node: 'w2', labels: { app: 'web' }, phase: 'Succeeded' });
    bench.store.modify('pods', { namespace: 'shop', name: 'web-1' }, (p) => ((p.status as Record<string, unknown>).conditions = [{ type: 'Ready', status: 'True' }]), { internal: true });
    const time = bench.time;
    const backups = await time.run(kube.listPods({ selector: 'app=backup' }));
    expect(backups.map((p) => [p.namespace, p.name, p.node, p.phase, p.ready])).toEqual([['os-patch', 'backup-1', 'w1', 'Running', false]]);
    const onW1 = await time.run(kube.listPods({ node: 'w1' }));
    expect(onW1.map((p) => [p.name, p.ready]).sort()).toEqual([
      ['backup-1', false],
      ['web-1', true],
    ]);
    expect(await time.run(kube.listPods({ selector: 'app in (web)', node: 'w2' }))).toMatchObject([{ name: 'web-2', phase: 'Succeeded' }]);
    expect(await time.run(kube.controlPlaneReady())).toEqual({ ready: true, detail: 'ok' });
    expect((await time.run(kube.unhealthyNodes())).map((n) => [n.name, n.ready, n.unschedulable])).toEqual([
      ['w2', false, false],
      ['w3', true, true],
    ]);
  });
});
