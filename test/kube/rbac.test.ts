/**
 * deploy/clusterrole.yaml grants exactly what the adapter uses: a full set of operations, run with a token holding
 * only the ClusterRole's rules, succeeds (nothing is missing), and the (verb, resource) pairs the server saw are every
 * pair the ClusterRole lists (nothing is spare). REQUIRED_PERMISSIONS, which `patchpilot run` checks up front, is the
 * same list.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REQUIRED_PERMISSIONS } from '../../src/cluster/kube/index.ts';
import { BUILTIN_RESOURCES, type PolicyRule } from '../../src/sim/kube-api/index.ts';
import { SPECTRO_SYSTEM_TASK_RESOURCE } from '../../src/sim/sandbox/palette.ts';
import { agentReportLine, fakeKubelet, NAMESPACE, seedNode, seedPod, startBench, START, type Bench } from './support.ts';

const ROLE_FILE = resolve(import.meta.dirname, '../../deploy/clusterrole.yaml');

interface ClusterRole {
  kind: string;
  rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
}

const role = parse(readFileSync(ROLE_FILE, 'utf8')) as ClusterRole;
const pairs = (rules: ClusterRole['rules']) =>
  [...new Set(rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${v} ${g || 'core'}/${res}`)))))].sort();

let bench: Bench;

beforeAll(async () => {
  bench = await startBench({
    tokens: { patchpilot: { user: 'system:serviceaccount:os-patch:patchpilot', rules: role.rules as PolicyRule[] } },
    // A Palette-managed cluster serves Palette's SpectroSystemTasks, which doctor lists.
    resources: [...BUILTIN_RESOURCES, SPECTRO_SYSTEM_TASK_RESOURCE],
  });
});

afterAll(async () => {
  await bench.close();
});

describe('deploy/clusterrole.yaml', () => {
  it('is a ClusterRole with no wildcard', () => {
    expect(role.kind).toBe('ClusterRole');
    expect(JSON.stringify(role.rules)).not.toContain('*');
  });

  it('is what REQUIRED_PERMISSIONS lists', () => {
    const required = REQUIRED_PERMISSIONS.map((p) => ({ apiGroups: [p.group], resources: [p.resource], verbs: [...p.verbs] }));
    expect(pairs(required)).toEqual(pairs(role.rules));
  });

  it('is exactly what a full set of operations sends', async () => {
    const { store, clock } = bench;
    seedNode(store, 'w1', { bootId: 'boot-1' });
    seedPod(store, 'web-1', { node: 'w1', owner: { kind: 'ReplicaSet', name: 'web-7d9' } });
    fakeKubelet(store, () => ({ log: [agentReportLine({ rebootRequired: true, rebootPackages: ['linux-image-generic'] })], exitCode: 0 }));
    const kube = bench.cluster({}, 'patchpilot');
    const run = <T>(operation: Promise<T>) => bench.time.run(operation);
    const signal = new AbortController().signal;
    const lease = { name: 'patchpilot-prod', holder: 'a', durationSeconds: 60 };
    const spec = {
      runId: 'run-1',
      node: 'w1',
      hash: 'h1',
      mode: 'native' as const,
      agent: 'modern' as const,
      securityOnly: true,
      holdPackages: ['kubelet'],
      lockTimeoutSeconds: 600,
      rebootIfRequired: true,
      jobName: 'apply-os-patch-on-w1-with-h1',
      downloadOnly: false,
    };

    const watching = new AbortController();
    let synced!: () => void;
    const watched = new Promise<void>((resolve) => (synced = resolve));
    const watch = kube.watchNodes(() => synced(), watching.signal);
    await watched;
    watching.abort();
    await watch;

    expect(await run(kube.acquireLease(lease))).toMatchObject({ acquired: true, generation: 0 });
    expect(await run(kube.renewLease(lease))).toMatchObject({ acquired: true, generation: 0 });
    await run(kube.listNodes());
    expect(await run(kube.cordon('w1', 'run-1'))).toBe('cordoned');
    expect(await run(kube.drain('w1', { gracePeriodSeconds: 30, podSelector: '', giveUpAt: START + 60_000, signal }))).toEqual({ evicted: 1, blocked: [] });
    // An earlier trigger's finished Job of the same name is deleted and replaced.
    await run(kube.startPatchJob({ ...spec, runId: 'run-0', hash: 'h0' }));
    await run(kube.awaitAgentReport(spec.jobName, signal));
    // Another orchestrator version left its script: the next one to start a Job updates it.
    store.modify('configmaps', { namespace: NAMESPACE, name: 'patchpilot-agent' }, (cm) => (cm.metadata.annotations = { 'patchpilot.io/script-sha256': 'old' }), { internal: true });
    const successor = bench.cluster({}, 'patchpilot');
    expect(await run(successor.startPatchJob(spec))).toMatchObject({ created: true });
    const report = await run(kube.awaitAgentReport(spec.jobName, signal));
    expect(report.rebootRequired).toBe(true);
    await run(kube.reboot('w1', 'run-1/w1'));
    clock.setTimeout(() => store.modify('nodes', { name: 'w1' }, (n) => ((n.status as { nodeInfo: { bootID: string } }).nodeInfo.bootID = 'boot-2'), { internal: true }), 60_000);
    await run(kube.awaitReady('w1', 'boot-1', signal));
    expect(await run(kube.uncordon('w1', 'run-1'))).toBe('uncordoned');
    await run(kube.patchNodeMetadata('w1', { labels: { 'patchpilot.io/os-patch': 'h1' }, annotations: { 'patchpilot.io/last-patch-status': 'patched' } }));
    await run(kube.releaseLease(lease.name, lease.holder));
    // What doctor reads: Jobs with their reports, the Lease, the agent ConfigMap, the orchestrator's Deployment, and
    // Palette's own objects.
    expect((await run(kube.recentJobs())).map((j) => j.name)).toContain(spec.jobName);
    expect(await run(kube.readLease(lease.name))).toMatchObject({ holder: null });
    expect(await run(kube.agentConfigMap())).toMatchObject({ name: 'patchpilot-agent' });
    expect(await run(kube.deployment())).toBeNull();
    expect(await run(kube.paletteArtifacts())).toMatchObject({ managed: true, tasks: [], jobs: [], agentPods: [] });

    const sent = [...new Set(bench.requests.map((r) => `${r.verb} ${r.group || 'core'}/${r.subresource ? `${r.resource}/${r.subresource}` : r.resource}`))].sort();
    expect(sent).toEqual(pairs(role.rules));
    // Every namespaced request but the drain's pods and the Node Events (upstream wants those in `default`) stayed in
    // patchpilot's namespace.
    const elsewhere = bench.requests.filter((r) => r.namespace !== undefined && r.namespace !== NAMESPACE);
    expect([...new Set(elsewhere.map((r) => `${r.verb} ${r.resource}/${r.subresource ?? ''} ${r.resource === 'events' ? r.namespace : ''}`.trim()))].sort()).toEqual([
      'create events/ default',
      'create pods/eviction',
      'get pods/',
    ]);
  });
});
