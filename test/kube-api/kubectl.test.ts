import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeconfig, startKubeApiServer, type KubeApiServer, type KubeObject, type KubeStore } from '../../src/sim/kube-api/index.ts';
import { until } from '../helpers/until.ts';
import { clusterStore, node, patchJob, runningPod, wallClock } from './fixtures.ts';

const KUBECTL = '/usr/bin/kubectl';
const hasKubectl = existsSync(KUBECTL);
if (!hasKubectl) console.log(`kubectl tests skipped: ${KUBECTL} is not installed on this machine`);

let store: KubeStore;
let server: KubeApiServer;
let home: string;
let config: string;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(...args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ['--kubeconfig', config, '--request-timeout=10s', ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: home }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function owner(object: KubeObject) {
  return { apiVersion: object.apiVersion!, kind: object.kind!, name: object.metadata.name!, uid: object.metadata.uid! };
}

/** The rows of kubectl's table output, split into cells. */
function rows(stdout: string): string[][] {
  return stdout
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/));
}

beforeAll(async () => {
  store = clusterStore(wallClock);
  store.create('nodes', node('cp-1', { labels: { 'node-role.kubernetes.io/control-plane': '' }, ip: '10.0.0.10' }), { internal: true });
  for (const [i, name] of ['n1', 'n2', 'n3', 'n4'].entries()) store.create('nodes', node(name, { ip: `10.0.0.${11 + i}` }), { internal: true });

  const job = store.create('jobs', patchJob('patch-n1-3f2a9c', 'n1'));
  const jobPod = store.create(
    'pods',
    {
      ...runningPod('patch-n1-3f2a9c-x7k2p', 'os-patch', 'n1', { owner: owner(job) }),
      metadata: { name: 'patch-n1-3f2a9c-x7k2p', namespace: 'os-patch', labels: (job.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels, ownerReferences: [{ ...owner(job), controller: true }] },
      spec: { nodeName: 'n1', restartPolicy: 'Never', containers: [{ name: 'agent', image: 'ghcr.io/patchpilot/agent:0.1.0' }] },
    },
    { internal: true },
  );
  store.modify('pods', { namespace: 'os-patch', name: jobPod.metadata.name! }, (pod) => {
    pod.status = { phase: 'Succeeded', containerStatuses: [{ name: 'agent', ready: false, restartCount: 0, state: { terminated: { exitCode: 0, reason: 'Completed' } } }] };
  }, { internal: true });
  const started = new Date(Date.now() - 95_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const finished = new Date(Date.now() - 5_000).toISOString().replace(/\.\d+Z$/, 'Z');
  store.modify('jobs', { namespace: 'os-patch', name: 'patch-n1-3f2a9c' }, (j) => {
    j.status = {
      startTime: started,
      completionTime: finished,
      succeeded: 1,
      ready: 0,
      terminating: 0,
      uncountedTerminatedPods: {},
      conditions: [
        { type: 'SuccessCriteriaMet', status: 'True', lastProbeTime: finished, lastTransitionTime: finished },
        { type: 'Complete', status: 'True', lastProbeTime: finished, lastTransitionTime: finished },
      ],
    };
  }, { internal: true });
  const storedJob = store.get('jobs', { namespace: 'os-patch', name: 'patch-n1-3f2a9c' });
  store.recordEvent(storedJob, { reason: 'SuccessfulCreate', message: `Created pod: ${jobPod.metadata.name}`, source: 'job-controller' });
  store.recordEvent(storedJob, { reason: 'Completed', message: 'Job completed', source: 'job-controller' });

  // What `kubectl drain n2` meets: a DaemonSet's pod, a mirror pod, and a ReplicaSet's pod with an emptyDir.
  const ds = store.create('daemonsets', {
    metadata: { name: 'kube-proxy', namespace: 'kube-system' },
    spec: { selector: { matchLabels: { 'k8s-app': 'kube-proxy' } }, template: { metadata: { labels: { 'k8s-app': 'kube-proxy' } }, spec: { containers: [{ name: 'kube-proxy', image: 'registry.k8s.io/kube-proxy:v1.30.2' }] } } },
  });
  store.create('pods', runningPod('kube-proxy-n2', 'kube-system', 'n2', { owner: owner(ds), labels: { 'k8s-app': 'kube-proxy' } }), { internal: true });
  store.create('pods', runningPod('etcd-n2', 'kube-system', 'n2', { annotations: { 'kubernetes.io/config.mirror': 'abc123', 'kubernetes.io/config.source': 'file' } }), { internal: true });
  const rs = store.create('replicasets', {
    metadata: { name: 'web-7d9c', namespace: 'default' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } } },
  });
  store.create('pods', runningPod('web-7d9c-qx2lm', 'default', 'n2', { owner: owner(rs), emptyDir: true, labels: { app: 'web' } }), { internal: true });

  store.hooks.onEviction(({ namespace, name, store: s }) => {
    s.delete('pods', { namespace, name }, { internal: true });
  });
  store.hooks.onPodLog(({ container }) => [
    { time: Date.now() - 3_000, text: `[${container}] patchpilot-agent 0.1.0 starting` },
    { time: Date.now() - 2_000, text: `[${container}] upgraded openssl 3.0.2-0ubuntu1.15 -> 3.0.2-0ubuntu1.18` },
    { time: Date.now() - 1_000, text: '{"result":"patched","rebootRequired":false}' },
  ]);

  server = await startKubeApiServer({ store });
  home = mkdtempSync(join(tmpdir(), 'kube-api-kubectl-'));
  config = join(home, 'kubeconfig');
  writeFileSync(config, kubeconfig(server.url));
});

afterAll(async () => {
  await server?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe.skipIf(!hasKubectl)('the sandbox API server through real kubectl', () => {
  it('get nodes prints the server-side table', { timeout: 30_000 }, async () => {
    const result = await kubectl('get', 'nodes');
    expect(result.stderr).toBe('');
    const table = rows(result.stdout);
    expect(table[0]).toEqual(['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION']);
    expect(table[1]).toEqual(['cp-1', 'Ready', 'control-plane', expect.stringMatching(/^\d+s$/), 'v1.30.2']);
    expect(table.map((r) => r[0])).toEqual(['NAME', 'cp-1', 'n1', 'n2', 'n3', 'n4']);
  });

  it('get nodes --show-labels adds the labels from the rows\' metadata', { timeout: 30_000 }, async () => {
    const table = rows((await kubectl('get', 'nodes', '--show-labels')).stdout);
    expect(table[0]).toEqual(['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION', 'LABELS']);
    expect(table[2]![5]).toBe('kubernetes.io/arch=amd64,kubernetes.io/hostname=n1,kubernetes.io/os=linux');
  });

  it('get nodes -o json returns the objects', { timeout: 30_000 }, async () => {
    const list = JSON.parse((await kubectl('get', 'nodes', '-o', 'json')).stdout);
    expect(list.items).toHaveLength(5);
    expect(list.items[1]).toMatchObject({ kind: 'Node', apiVersion: 'v1', metadata: { name: 'n1' }, status: { nodeInfo: { bootID: 'n1-boot-1' } } });
  });

  it('label, cordon and uncordon a node', { timeout: 30_000 }, async () => {
    expect((await kubectl('label', 'node', 'n3', 'patchpilot.io/pool=blue')).stdout.trim()).toBe('node/n3 labeled');
    expect(store.get('nodes', { name: 'n3' }).metadata.labels?.['patchpilot.io/pool']).toBe('blue');
    expect((await kubectl('cordon', 'n3')).stdout.trim()).toBe('node/n3 cordoned');
    expect(store.get('nodes', { name: 'n3' }).spec).toMatchObject({ unschedulable: true });
    expect(rows((await kubectl('get', 'node', 'n3')).stdout)[1]![1]).toBe('Ready,SchedulingDisabled');
    expect((await kubectl('uncordon', 'n3')).stdout.trim()).toBe('node/n3 uncordoned');
    expect(store.get('nodes', { name: 'n3' }).spec).not.toHaveProperty('unschedulable');
  });

  // kubectl withholds bearer tokens from an http:// server, so through kubectl the server is tokenless: everything is
  // allowed. Refusals, from a token's rules, are checked over HTTP in access-review.test.ts.
  it('auth can-i answers from SelfSubjectAccessReviews (sent as protobuf)', { timeout: 30_000 }, async () => {
    for (const question of [['patch', 'nodes'], ['create', 'pods', '--subresource=eviction', '-n', 'shop'], ['get', '/healthz']]) {
      const result = await kubectl('auth', 'can-i', ...question);
      expect({ question, code: result.code, stdout: result.stdout }).toEqual({ question, code: 0, stdout: 'yes\n' });
    }
  });

  it('create namespace and configmap send protobuf, which the server reads', { timeout: 30_000 }, async () => {
    expect((await kubectl('create', 'namespace', 'team-a')).stdout.trim()).toBe('namespace/team-a created');
    expect((await kubectl('create', 'configmap', 'settings', '-n', 'team-a', '--from-literal=mode=safe')).stdout.trim()).toBe('configmap/settings created');
    expect(store.get('configmaps', { namespace: 'team-a', name: 'settings' }).data).toEqual({ mode: 'safe' });
  });

  it('get jobs shows status, completions and duration', { timeout: 30_000 }, async () => {
    const table = rows((await kubectl('get', 'jobs', '-n', 'os-patch')).stdout);
    expect(table[0]).toEqual(['NAME', 'STATUS', 'COMPLETIONS', 'DURATION', 'AGE']);
    expect(table[1]).toEqual(['patch-n1-3f2a9c', 'Complete', '1/1', '90s', expect.stringMatching(/^\d+s$/)]);
  });

  it('describe job shows the job, its pods and its events', { timeout: 30_000 }, async () => {
    const result = await kubectl('describe', 'job', 'patch-n1-3f2a9c', '-n', 'os-patch');
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Name:\s+patch-n1-3f2a9c$/m);
    expect(result.stdout).toMatch(/^Namespace:\s+os-patch$/m);
    expect(result.stdout).toMatch(/^Pods Statuses:\s+0 Active \(0 Ready\) \/ 1 Succeeded \/ 0 Failed$/m);
    expect(result.stdout).toMatch(/Normal\s+SuccessfulCreate\s+\S+\s+job-controller\s+Created pod: patch-n1-3f2a9c-x7k2p/);
    expect(result.stdout).toMatch(/Normal\s+Completed\s+\S+\s+job-controller\s+Job completed/);
  });

  it('logs of a pod come from the log hook', { timeout: 30_000 }, async () => {
    const result = await kubectl('logs', '-n', 'os-patch', 'patch-n1-3f2a9c-x7k2p');
    expect(result.stdout).toBe(
      '[agent] patchpilot-agent 0.1.0 starting\n[agent] upgraded openssl 3.0.2-0ubuntu1.15 -> 3.0.2-0ubuntu1.18\n{"result":"patched","rebootRequired":false}\n',
    );
    expect((await kubectl('logs', '-n', 'os-patch', 'patch-n1-3f2a9c-x7k2p', '--tail=1')).stdout).toBe('{"result":"patched","rebootRequired":false}\n');
  });

  it('drain evicts through the eviction hook, ignoring DaemonSet and mirror pods', { timeout: 60_000 }, async () => {
    const result = await kubectl('drain', 'n2', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=30s');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('node/n2 cordoned');
    expect(result.stderr).toContain('Warning: ignoring DaemonSet-managed Pods: kube-system/kube-proxy-n2');
    expect(result.stdout).toContain('evicting pod default/web-7d9c-qx2lm');
    expect(result.stdout).toContain('pod/web-7d9c-qx2lm evicted');
    expect(result.stdout).toContain('node/n2 drained');
    expect(store.list('pods', { fieldSelector: 'spec.nodeName=n2' }).items.map((p) => p.metadata.name)).toEqual(['etcd-n2', 'kube-proxy-n2']);
    expect(store.get('nodes', { name: 'n2' }).spec).toMatchObject({ unschedulable: true });
  });

  it('get nodes -w prints a cordon made in the store', { timeout: 60_000 }, async () => {
    // The cordon is made once kubectl has printed the list and asked for the watch, so the test checks the live
    // event rather than a replay; a failure shows what kubectl printed and requested (-v=6 on stderr).
    let watchRequested = false;
    const unhook = store.hooks.onRequest((request) => {
      if (request.verb === 'watch' && request.resource === 'nodes') watchRequested = true;
    });
    const watcher = spawn(KUBECTL, ['--kubeconfig', config, 'get', 'nodes', '-w', '-v=6'], { env: { PATH: process.env.PATH ?? '', HOME: home } });
    let output = '';
    let errors = '';
    let exited: number | null | undefined;
    watcher.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    watcher.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
    watcher.on('exit', (code) => (exited = code));
    const waiting = {
      timeoutMs: 25_000,
      giveUpIf: () => (exited === undefined ? undefined : `kubectl exited with ${exited}`),
      context: () => `watch requested: ${watchRequested}\nstdout:\n${output}\nstderr:\n${errors}`,
    };
    try {
      await until('the listed nodes and the watch request', () => /^n4\s/m.test(output) && watchRequested, waiting);
      store.patch('nodes', { name: 'n4' }, 'strategic', { spec: { unschedulable: true } });
      await until('the cordon in the watch', () => /^n4\s+Ready,SchedulingDisabled\s/m.test(output), waiting);
      expect(output.match(/^NAME\s/gm)).toHaveLength(1);
    } finally {
      unhook();
      watcher.kill();
    }
  });
});
