/**
 * `patchpilot sandbox` as a user meets it: started from the CLI, driven by real kubectl and by `patchpilot run`
 * against the kubeconfig it writes, in Palette mode so that the seed's monitoring commands are the ones checked, and
 * stopped with SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { until } from '../helpers/until.ts';

const KUBECTL = ['/usr/bin/kubectl', '/usr/local/bin/kubectl'].find((p) => existsSync(p)) ?? null;
if (!KUBECTL) console.warn('[test/sandbox/kubectl] skipped: no kubectl on this machine (scripts/setup-test-deps.sh installs Debian\'s kubernetes-client)');

const BIN = join(process.cwd(), 'bin', 'patchpilot.js');
const SCENARIO = 'fixtures/scenarios/sandbox-palette.yaml';
const TASK_LABEL = 'task.cluster.spectrocloud.com/on-demand-os-patch';

describe.skipIf(!KUBECTL)('patchpilot sandbox with kubectl (Palette mode)', () => {
  const dir = scratchDirs('sandbox-kubectl')();
  const kubeconfig = join(dir, 'sandbox.kubeconfig');
  const plan = join(dir, 'sandbox.plan.yaml');
  let sandbox: ChildProcess;
  let output = '';

  const kubectl = (...args: string[]) => {
    const result = spawnSync(KUBECTL!, ['--kubeconfig', kubeconfig, '--request-timeout=10s', ...args], { encoding: 'utf8', timeout: 30_000 });
    return { code: result.status, out: result.stdout, err: result.stderr };
  };

  beforeAll(async () => {
    sandbox = spawn(process.execPath, [BIN, 'sandbox', '--scenario', SCENARIO, '--kubeconfig', kubeconfig, '--speed', '100'], { stdio: ['ignore', 'pipe', 'pipe'] });
    sandbox.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    sandbox.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await until('the kubeconfig and the banner', () => existsSync(kubeconfig) && existsSync(plan) && output.includes('Stop with Ctrl-C'));
  }, 60_000);

  afterAll(async () => {
    if (sandbox.exitCode === null) {
      sandbox.kill('SIGKILL');
      await new Promise((r) => sandbox.once('exit', r));
    }
  });

  it('prints how to use it and serves the scenario\'s nodes', () => {
    expect(output).toMatch(/kubeconfig   \S*sandbox\.kubeconfig/);
    expect(output).toContain('kubectl get nodes -w');
    const nodes = kubectl('get', 'nodes');
    expect(nodes.code).toBe(0);
    for (const name of ['cp-1', 'worker-1', 'worker-2', 'rocky-1', 'win-1']) expect(nodes.out).toMatch(new RegExp(`^${name}\\s+Ready\\s`, 'm'));
    expect(nodes.out).toMatch(/^cp-1\s+Ready\s+control-plane\s/m);
    expect(readFileSync(plan, 'utf8')).toContain('mode: palette');
  });

  it('patches through `patchpilot run`, and the seed\'s monitoring commands show it', { timeout: 240_000 }, () => {
    const run = spawnSync(process.execPath, [BIN, 'run', '--kubeconfig', kubeconfig, '--plan', plan, '--db', join(dir, 'runs.db')], { encoding: 'utf8', timeout: 230_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/SUCCEEDED \(4 patched/);

    const jobs = kubectl('get', 'jobs', '-n', 'os-patch');
    expect(jobs.code).toBe(0);
    for (const node of ['cp-1', 'worker-1', 'worker-2', 'rocky-1']) expect(jobs.out).toMatch(new RegExp(`^apply-on-demand-os-patch-on-${node}\\s+Complete\\s+1/1`, 'm'));
    expect(jobs.out).not.toContain('win-1');

    const describe = kubectl('describe', 'job', 'apply-on-demand-os-patch-on-worker-2', '-n', 'os-patch');
    expect(describe.code).toBe(0);
    expect(describe.out).toMatch(/Pods Statuses:\s+0 Active .* \/ 1 Succeeded \/ 0 Failed/);
    expect(describe.out).toContain(`${TASK_LABEL}=`);

    const logs = kubectl('logs', '-n', 'os-patch', 'job/apply-on-demand-os-patch-on-worker-2');
    expect(logs.code).toBe(0);
    const report = JSON.parse(logs.out.trim().split('\n').at(-1)!);
    expect(report).toMatchObject({ result: 'patched', rebootRequired: true, error: null });
    expect(report.upgraded.map((u: { name: string }) => u.name)).toEqual(expect.arrayContaining(['openssl', 'curl']));
    // Every node's scan Job (the dry run before its cordon) and its patch Job left a report.
    const byLabel = kubectl('logs', '-n', 'os-patch', '-l', 'app.kubernetes.io/name=patchpilot', '--tail=1');
    expect(byLabel.out.trim().split('\n').filter((l) => l.startsWith('{"result"'))).toHaveLength(8);
    const patches = kubectl('logs', '-n', 'os-patch', '-l', 'app.kubernetes.io/name=patchpilot,patchpilot.io/action=patch', '--tail=1');
    expect(patches.out.trim().split('\n').filter((l) => l.startsWith('{"result"'))).toHaveLength(4);

    const labels = kubectl('get', 'nodes', '--show-labels');
    const marked = labels.out.split('\n').filter((line) => line.includes(`${TASK_LABEL}=`));
    expect(marked.map((line) => line.split(/\s+/)[0]).sort()).toEqual(['cp-1', 'rocky-1', 'worker-1', 'worker-2']);
    expect(kubectl('get', 'nodes').out).not.toContain('SchedulingDisabled');

    // patchpilot's Events are where a real API server accepts Events about Nodes (default), so kubectl finds them.
    const events = kubectl('get', 'events', '--field-selector', 'involvedObject.name=worker-2', '-o', 'jsonpath={.items[*].reason}');
    expect(events.code).toBe(0);
    expect(events.out.split(' ')).toEqual(expect.arrayContaining(['PatchpilotCordon', 'PatchpilotDrain', 'PatchpilotPatch', 'PatchpilotUncordon']));
  });

  it('refuses what Kubernetes refuses, computes budgets, honours server-side dry run, and has node Leases', { timeout: 90_000 }, () => {
    const bad = kubectl('patch', 'node', 'worker-1', '--type', 'merge', '-p', '{"metadata":{"labels":"not-a-map"}}');
    expect(bad.code).not.toBe(0);
    expect(bad.err).toMatch(/The request is invalid: patch: Invalid value: .*metadata\.labels: must be object/);
    expect(kubectl('get', 'node', 'worker-1', '--show-labels').out).toContain('kubernetes.io/os=linux');

    const budget = join(dir, 'pdb.json');
    writeFileSync(budget, JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'app-none', namespace: 'apps' }, spec: { maxUnavailable: 0, selector: { matchLabels: { app: 'app' } } } }));
    // No OpenAPI document is served (see README), so client-side validation is off.
    expect(kubectl('create', '-f', budget, '--validate=false').code).toBe(0);
    expect(kubectl('get', 'pdb', 'app-none', '-n', 'apps', '-o', 'jsonpath={.status.disruptionsAllowed}').out).toBe('0');
    const blocked = kubectl('drain', 'worker-2', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=3s');
    expect(blocked.code).not.toBe(0);
    expect(blocked.err).toContain("Cannot evict pod as it would violate the pod's disruption budget.");
    expect(kubectl('delete', 'pdb', 'app-none', '-n', 'apps').code).toBe(0);
    expect(kubectl('uncordon', 'worker-2').code).toBe(0);

    const podsOn = (node: string) => kubectl('get', 'pods', '-A', '--field-selector', `spec.nodeName=${node}`, '-o', 'name').out;
    const before = podsOn('worker-2');
    const dryDrain = kubectl('drain', 'worker-2', '--ignore-daemonsets', '--delete-emptydir-data', '--dry-run=server');
    expect(dryDrain.code).toBe(0);
    expect(dryDrain.out).toContain('node/worker-2 drained (server dry run)');
    expect(podsOn('worker-2')).toBe(before);
    expect(kubectl('get', 'node', 'worker-2').out).not.toContain('SchedulingDisabled');
    expect(kubectl('delete', 'node', 'worker-2', '--dry-run=server').out).toContain('(server dry run)');
    expect(kubectl('get', 'node', 'worker-2', '-o', 'name').out.trim()).toBe('node/worker-2');

    expect(kubectl('get', 'leases', '-n', 'kube-node-lease', '-o', 'name').out).toContain('lease.coordination.k8s.io/worker-1');
    const described = kubectl('describe', 'node', 'worker-1').out;
    expect(described).toMatch(/Lease:\s+HolderIdentity:\s+worker-1/);
    expect(described).not.toContain('Failed to get lease');
  });

  it('shows a cordon to `kubectl get nodes -w`, and takes label, uncordon and drain', { timeout: 60_000 }, async () => {
    const watch = spawn(KUBECTL!, ['--kubeconfig', kubeconfig, 'get', 'nodes', '-w'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let seen = '';
    watch.stdout.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    try {
      await until('the watch to list the nodes', () => seen.includes('rocky-1'));
      expect(kubectl('cordon', 'rocky-1').out).toContain('node/rocky-1 cordoned');
      await until('the cordon in the watch', () => /^rocky-1\s+Ready,SchedulingDisabled/m.test(seen));
    } finally {
      watch.kill();
    }
    expect(kubectl('uncordon', 'rocky-1').out).toContain('node/rocky-1 uncordoned');
    expect(kubectl('label', 'node', 'worker-1', 'team=payments').code).toBe(0);
    expect(kubectl('get', 'nodes', '-l', 'team=payments', '-o', 'name').out.trim()).toBe('node/worker-1');

    const drain = kubectl('drain', 'worker-1', '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=30s');
    expect(drain.err).not.toMatch(/error/i);
    expect(drain.code).toBe(0);
    expect(drain.out).toContain('node/worker-1 drained');
    const left = kubectl('get', 'pods', '-A', '--field-selector', 'spec.nodeName=worker-1', '-o', 'jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name} {end}');
    // Only what a drain leaves: DaemonSet pods, mirror pods, and the finished patch pod.
    for (const pod of left.out.trim().split(/\s+/).filter(Boolean)) expect(pod).toMatch(/^(kube-system\/|os-patch\/apply-on-demand)/);
    expect(kubectl('get', 'node', 'worker-1').out).toMatch(/Ready,SchedulingDisabled/);
  });

  it('stops cleanly on SIGTERM and removes its kubeconfig', async () => {
    sandbox.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => sandbox.once('exit', r));
    expect(code).toBe(0);
    expect(existsSync(kubeconfig)).toBe(false);
    expect(output).toMatch(/sandbox stopped \(SIGTERM\)/);
  });
});

describe('patchpilot sandbox refuses bad input', () => {
  it('names a scenario file that does not exist, exit 2', () => {
    const result = spawnSync(process.execPath, [BIN, 'sandbox', '--scenario', 'no/such/file.yaml'], { encoding: 'utf8', timeout: 30_000 });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/no\/such\/file\.yaml/);
  });
});
