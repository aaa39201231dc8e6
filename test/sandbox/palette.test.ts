/**
 * The sandbox as a Palette-managed cluster, over HTTP: Palette's SpectroSystemTask resource is in discovery and works
 * for create, get, list, status patches, watch and delete (client-node's CustomObjectsApi and Watch); Palette's crony
 * Jobs, pods and logs and the node marks are what a run of Palette leaves; the simulated kubelet and scheduler leave
 * them alone; a cluster without `palette:` serves none of it. kubectl runs the seed's monitoring commands when present.
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, Watch } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { NODE_TASK_ANNOTATIONS, PALETTE_TASK_LABEL } from '../../src/cluster/palette.ts';
import { VirtualClock } from '../../src/engine/clock.ts';
import { kubeconfig, startKubeApiServer, type KubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox, type Sandbox } from '../../src/sim/sandbox/index.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p)) ?? null;
if (!KUBECTL) console.warn('[test/sandbox/palette] kubectl checks skipped: no kubectl on this machine (scripts/setup-test-deps.sh installs it)');

const GROUP = { group: 'cluster.spectrocloud.com', version: 'v1alpha1', plural: 'spectrosystemtasks' };
const dirs = scratchDirs('sandbox-palette');
let sandbox: Sandbox | undefined;
let server: KubeApiServer | undefined;

afterEach(async () => {
  sandbox?.binding.close();
  await server?.close();
  sandbox = undefined;
  server = undefined;
});

async function serve(file: string): Promise<{ url: string; kc: KubeConfig; config: string }> {
  sandbox = createSandbox(loadScenario(`fixtures/scenarios/${file}`), new VirtualClock(Date.parse('2026-11-22T08:00:00Z')));
  server = await startKubeApiServer({ store: sandbox.store });
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfig(server.url));
  const config = join(dirs(), 'kubeconfig');
  writeFileSync(config, kubeconfig(server.url));
  return { url: server.url, kc, config };
}

const getJson = async (url: string) => {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe('the sandbox as a Palette-managed cluster', () => {
  it('serves spectrosystemtasks.cluster.spectrocloud.com in discovery, namespaced, with a status subresource', async () => {
    const { url } = await serve('palette-managed/healthy.yaml');
    const groups = (await getJson(`${url}/apis`)).body.groups as Array<{ name: string; preferredVersion: { groupVersion: string } }>;
    expect(groups.find((g) => g.name === 'cluster.spectrocloud.com')?.preferredVersion.groupVersion).toBe('cluster.spectrocloud.com/v1alpha1');
    const list = await getJson(`${url}/apis/cluster.spectrocloud.com/v1alpha1`);
    expect(list.status).toBe(200);
    const resources = list.body.resources as Array<{ name: string; namespaced: boolean; kind: string; verbs: string[] }>;
    expect(resources.find((r) => r.name === 'spectrosystemtasks')).toMatchObject({ namespaced: true, kind: 'SpectroSystemTask', verbs: expect.arrayContaining(['list', 'watch', 'create', 'delete']) });
    expect(resources.find((r) => r.name === 'spectrosystemtasks/status')).toMatchObject({ verbs: ['get', 'patch', 'update'] });
  });

  it('has Palette\'s last On-Demand Update: the task Complete, one succeeded crony Job per node, nodes marked and annotated', async () => {
    const { kc } = await serve('palette-managed/healthy.yaml');
    const custom = kc.makeApiClient(CustomObjectsApi);
    const tasks = (await custom.listNamespacedCustomObject({ ...GROUP, namespace: 'os-patch' })) as { items: Array<{ metadata: { name: string }; spec: Record<string, unknown>; status: Record<string, unknown> }> };
    expect(tasks.items).toHaveLength(1);
    const task = tasks.items[0]!;
    expect(task.metadata.name).toBe('on-demand-os-patch');
    expect(task.spec).toMatchObject({ concurrency: 1, serviceAccountName: 'crony', drain: { force: true }, nodeSelector: { matchExpressions: [{ key: 'kubernetes.io/os', operator: 'In', values: ['linux'] }] } });
    expect(task.spec.version).toMatch(/^on-demand-\d{14}$/);
    expect(task.status.latestVersion).toBe(task.spec.version);
    expect(task.status.applying).toBeUndefined();
    expect((task.status.conditions as Array<{ type: string; status: string }>).map((c) => `${c.type}=${c.status}`)).toEqual(['LatestResolved=True', 'Validated=True', 'Complete=True']);
    const store = sandbox!.store;
    const jobs = store.list('jobs', { namespace: 'os-patch', labelSelector: 'app.kubernetes.io/name=crony' }).items;
    expect(jobs.map((j) => j.metadata.name)).toEqual(['apply-on-demand-os-patch-on-cp-1', 'apply-on-demand-os-patch-on-worker-1', 'apply-on-demand-os-patch-on-worker-2', 'apply-on-demand-os-patch-on-worker-3']);
    for (const job of jobs) expect((job.status as { succeeded?: number }).succeeded).toBe(1);
    for (const node of store.list('nodes').items) {
      expect(node.metadata.labels![PALETTE_TASK_LABEL]).toBe(task.status.latestHash);
      expect(node.metadata.annotations![NODE_TASK_ANNOTATIONS.status]).toBe('Completed');
    }
    expect(store.list('pods', { namespace: 'cluster-6851ddd04b1b188784c06291' }).items.map((p) => p.metadata.name!.replace(/-[0-9a-f]{10}-\w{5}$/, ''))).toEqual(['cluster-management-agent', 'palette-controller-manager']);
  });

  it('CRUD, status and watch on SpectroSystemTasks through client-node', async () => {
    const { kc } = await serve('palette-managed/never-run.yaml');
    const custom = kc.makeApiClient(CustomObjectsApi);
    const empty = (await custom.listNamespacedCustomObject({ ...GROUP, namespace: 'os-patch' })) as { items: unknown[]; metadata: { resourceVersion: string } };
    expect(empty.items).toEqual([]);
    const events: string[] = [];
    let watching!: Promise<AbortController>;
    // The watch resumes from the list's resourceVersion, so the writes below reach it even if they land first.
    const deleted = new Promise<void>((resolve, reject) => {
      watching = new Watch(kc).watch('/apis/cluster.spectrocloud.com/v1alpha1/namespaces/os-patch/spectrosystemtasks', { resourceVersion: empty.metadata.resourceVersion }, (phase, obj: { metadata: { name: string } }) => {
        events.push(`${phase} ${obj.metadata.name}`);
        if (phase === 'DELETED') resolve();
      }, (err) => (err ? reject(err) : undefined));
    });
    const body = { apiVersion: 'cluster.spectrocloud.com/v1alpha1', kind: 'SpectroSystemTask', metadata: { name: 'os-upgrade-plan' }, spec: { concurrency: 1, version: 'bionic', task: { image: 'ubuntu:22.04' } } };
    const created = (await custom.createNamespacedCustomObject({ ...GROUP, namespace: 'os-patch', body })) as { metadata: { generation: number } };
    expect(created.metadata.generation).toBe(1);
    await custom.patchNamespacedCustomObject({ ...GROUP, namespace: 'os-patch', name: 'os-upgrade-plan', body: { spec: { version: 'bionic-2' } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    await custom.patchNamespacedCustomObjectStatus(
      { ...GROUP, namespace: 'os-patch', name: 'os-upgrade-plan', body: { status: { latestVersion: 'bionic-2', applying: ['worker-1'] } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const read = (await custom.getNamespacedCustomObject({ ...GROUP, namespace: 'os-patch', name: 'os-upgrade-plan' })) as { metadata: { generation: number }; spec: { version: string }; status: { applying: string[] } };
    expect(read.spec.version).toBe('bionic-2');
    expect(read.status.applying).toEqual(['worker-1']);
    // A spec change counts as a generation, a status change does not.
    expect(read.metadata.generation).toBe(2);
    await custom.deleteNamespacedCustomObject({ ...GROUP, namespace: 'os-patch', name: 'os-upgrade-plan' });
    await deleted;
    (await watching).abort();
    expect(events).toEqual(['ADDED os-upgrade-plan', 'MODIFIED os-upgrade-plan', 'MODIFIED os-upgrade-plan', 'DELETED os-upgrade-plan']);
  });

  it('leaves Palette\'s objects alone: no kubelet runs the crony Jobs, the scheduler keeps the agent pods', async () => {
    await serve('palette-managed/task-in-progress.yaml');
    const store = sandbox!.store;
    const before = JSON.stringify(store.list('jobs', { namespace: 'os-patch' }).items.map((j) => j.status));
    const pods = () => store.list('pods', { namespace: 'cluster-6851ddd04b1b188784c06291' }).items.length + store.list('pods', { namespace: 'os-patch' }).items.length;
    const count = pods();
    expect(count).toBe(2 + 3);
    sandbox!.sim.state.cordonByOthers('cp-1');
    sandbox!.sim.state.cordonByOthers('worker-3');
    expect(pods()).toBe(count);
    expect(JSON.stringify(store.list('jobs', { namespace: 'os-patch' }).items.map((j) => j.status))).toBe(before);
    expect(store.find('nodes', { name: 'worker-2' })!.spec).toMatchObject({ unschedulable: true });
    // An agent pod a drain takes away is replaced on a schedulable node, as its ReplicaSet would.
    const agents = () => store.list('pods', { namespace: 'cluster-6851ddd04b1b188784c06291' }).items;
    const evicted = agents().find((p) => p.metadata.name!.startsWith('cluster-management-agent-'))!;
    expect((evicted.spec as { nodeName: string }).nodeName).toBe('cp-1');
    store.delete('pods', { namespace: evicted.metadata.namespace!, name: evicted.metadata.name! }, { internal: true });
    const replacement = agents().find((p) => p.metadata.name!.startsWith('cluster-management-agent-'))!;
    expect(replacement.metadata.name).not.toBe(evicted.metadata.name);
    expect((replacement.spec as { nodeName: string }).nodeName).toBe('worker-1');
    expect(agents()).toHaveLength(2);
  });

  it('a cluster without palette: serves none of it', async () => {
    const { url } = await serve('demo.yaml');
    expect((await getJson(`${url}/apis/cluster.spectrocloud.com/v1alpha1`)).status).toBe(404);
    expect(((await getJson(`${url}/apis`)).body.groups as Array<{ name: string }>).map((g) => g.name)).not.toContain('cluster.spectrocloud.com');
    expect(sandbox!.store.list('jobs', { namespace: 'os-patch' }).items).toEqual([]);
  });

  it.skipIf(!KUBECTL)('the seed\'s monitoring commands with kubectl', { timeout: 60_000 }, async () => {
    const { config } = await serve('palette-managed/keyserver-eof.yaml');
    const kubectl = (...args: string[]) =>
      new Promise<{ code: number; out: string; err: string }>((resolve) => {
        execFile(KUBECTL!, ['--kubeconfig', config, '--request-timeout=10s', ...args], { timeout: 30_000 }, (error, stdout, stderr) =>
          resolve({ code: error ? (typeof error.code === 'number' ? error.code : 99) : 0, out: stdout, err: stderr }),
        );
      });
    const task = await kubectl('get', 'spectrosystemtask', '-n', 'os-patch');
    expect(task.err).toBe('');
    expect(task.out).toMatch(/^on-demand-os-patch\s/m);
    const jobs = await kubectl('get', 'jobs', '-n', 'os-patch');
    expect(jobs.out).toMatch(/^apply-on-demand-os-patch-on-worker-1\s+Complete\s+1\/1/m);
    expect(jobs.out).toMatch(/^apply-on-demand-os-patch-on-worker-2\s+Failed\s+0\/1/m);
    const logs = await kubectl('logs', '-n', 'os-patch', '-l', 'app.kubernetes.io/name=crony', '--tail=2');
    expect(logs.out).toContain('gpg: keyserver receive failed: End of file');
    expect(logs.out).toContain('OS Patching completed successfully');
    const nodes = await kubectl('get', 'nodes', '-o', 'yaml');
    expect(nodes.out).toContain('spectronodetask.cluster.spectrocloud.com/on-demand-os-patch.message: \'gpg: keyserver');
    const labels = await kubectl('get', 'nodes', '--show-labels');
    expect(labels.out.split('\n').filter((l) => l.includes('task.cluster.spectrocloud.com'))).toHaveLength(2);
  });
});
