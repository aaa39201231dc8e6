/**
 * `patchpilot run` as a user meets it: the real bin/patchpilot.js, judged by exit code and output. Every refusal is one
 * message and a hint, exit 2, and nothing changed.
 */
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { REQUIRED_PERMISSIONS } from '../../src/cluster/kube/permissions.ts';
import { versionHash } from '../../src/engine/hash.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { openStore } from '../../src/store/index.ts';
import type { PolicyRule } from '../../src/sim/kube-api/index.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { NAMESPACE, seedNode, startBench, type Bench } from './support.ts';
import { runCliAsync, type CliResult } from '../helpers/cli.ts';

const scratch = scratchDirs('run-cli');

function runCli(args: string[], env: NodeJS.ProcessEnv, cwd = scratch()): Promise<CliResult> {
  return runCliAsync(args, cwd, env);
}

function writeKubeconfig(dir: string, server: string, token: string): string {
  const path = join(dir, 'kubeconfig.yaml');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters:\n- name: test\n  cluster:\n    server: ${server}\n    insecure-skip-tls-verify: true`,
      `users:\n- name: patchpilot\n  user:\n    token: ${token}`,
      'contexts:\n- name: test\n  context:\n    cluster: test\n    user: patchpilot',
      'current-context: test',
    ].join('\n'),
  );
  return path;
}

/** chattr +i stops even root from writing a file; without it (not root, a filesystem without attributes) that test is skipped. */
const IMMUTABLE_FILES = (() => {
  const probe = join(scratch(), 'probe');
  writeFileSync(probe, '');
  const ok = spawnSync('chattr', ['+i', probe]).status === 0;
  if (ok) spawnSync('chattr', ['-i', probe]);
  return ok;
})();

const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+\)?/);

describe('patchpilot run: refusals before anything changes', () => {
  it('says there is no kubeconfig instead of trying localhost:8080', async () => {
    const home = scratch();
    const result = await runCli(['run'], { HOME: home });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: no kubeconfig: KUBECONFIG is not set, ${join(home, '.kube', 'config')} does not exist, and this is not running in a pod`);
    expect(result.stderr).toContain('hint: pass --kubeconfig PATH');
    expect(result.stderr).not.toContain('localhost:8080');
    noStackTrace(result.stderr);
  });

  it.each(['0', '-5', 'sixty', '1.5'])('refuses --lease-seconds %s with one line, exit 2', async (value) => {
    const result = await runCli(['run', '--lease-seconds', value], { HOME: scratch() });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--lease-seconds must be a whole number of seconds above 0, got "${value}"`);
    noStackTrace(result.stderr);
  });

  it('names the API server it cannot reach', async () => {
    const port = await closedPort();
    const dir = scratch();
    const kubeconfig = writeKubeconfig(dir, `http://127.0.0.1:${port}`, 'token');
    const result = await runCli(['run', '--kubeconfig', kubeconfig, '--db', join(dir, 'pp.db')], { HOME: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: cannot reach the Kubernetes API server at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(result.stderr).toContain(`hint: check that the cluster is running and that ${kubeconfig}`);
    noStackTrace(result.stderr);
  });
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const address = server.address();
  await new Promise<void>((closed) => server.close(() => closed()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const deployRules = (parse(readFileSync(resolve(import.meta.dirname, '../../deploy/clusterrole.yaml'), 'utf8')) as { rules: PolicyRule[] }).rules;
/** The ClusterRole without `create pods/eviction`. */
const noEvictionRules = deployRules.filter((rule) => !(rule.resources ?? []).includes('pods/eviction'));

describe('patchpilot run against an API server', () => {
  let bench: Bench;
  afterEach(async () => {
    await bench.close();
  });

  async function serve() {
    bench = await startBench({
      tokens: {
        patchpilot: { user: 'system:serviceaccount:os-patch:patchpilot', rules: deployRules },
        'no-eviction': { user: 'system:serviceaccount:os-patch:limited', rules: noEvictionRules },
      },
    });
    const zone = (z: string) => ({ 'topology.kubernetes.io/zone': z, pool: 'general' });
    seedNode(bench.store, 'cp-1', { labels: { ...zone('a'), 'node-role.kubernetes.io/control-plane': '' } });
    seedNode(bench.store, 'w-a1', { labels: zone('a') });
    seedNode(bench.store, 'w-a2', { labels: zone('a') });
    seedNode(bench.store, 'w-b1', { labels: zone('b'), unschedulable: true });
    seedNode(bench.store, 'w-gpu', { labels: { ...zone('b'), pool: 'gpu' } });
    seedNode(bench.store, 'w-off', { labels: { ...zone('b'), 'patchpilot.io/os-patch': 'disabled' } });
    seedNode(bench.store, 'win-1', { labels: { ...zone('a'), 'kubernetes.io/os': 'windows' } });
    return bench.server.url;
  }

  // An access review is a question, stored nowhere: it is not a change to the cluster.
  const writes = () => bench.requests.filter((r) => !['get', 'list', 'watch'].includes(r.verb) && r.resource !== 'selfsubjectaccessreviews');
  const reviews = () => bench.requests.filter((r) => r.resource === 'selfsubjectaccessreviews');

  it('--dry-run lists the nodes it would patch, in order, and why each other one is left out; it changes nothing', async () => {
    const url = await serve();
    const dir = scratch();
    const planFile = join(dir, 'plan.yaml');
    writeFileSync(planFile, 'cluster: prod\nconcurrency: 2\nnodeSelector: { pool: general }\n');
    const done = versionHash(parsePlan({ cluster: 'prod', concurrency: 2, nodeSelector: { pool: 'general' } }), 'change-42');
    bench.store.modify('nodes', { name: 'w-a2' }, (n) => (n.metadata.labels = { ...n.metadata.labels, 'patchpilot.io/os-patch': done }), { internal: true });
    const kubeconfig = writeKubeconfig(dir, url, 'patchpilot');
    const result = await runCli(['run', '--kubeconfig', kubeconfig, '--plan', planFile, '--trigger', 'change-42', '--dry-run'], { HOME: dir });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.split('\n');
    expect(lines[0]).toBe(`cluster prod at ${url}: 7 node(s)`);
    expect(lines[1]).toBe(`plan: ${planFile}; trigger change-42; version hash ${done} (label patchpilot.io/os-patch)`);
    expect(result.stdout).toContain('would patch 3 node(s), in this order, 2 at a time:');
    const order = lines.filter((l) => /^\d+\s/.test(l)).map((l) => l.split(/\s+/).slice(0, 3).join(' '));
    expect(order).toEqual(['1 cp-1 control-plane', '2 w-a1 worker', '3 w-b1 worker']);
    expect(lines.find((l) => l.startsWith('3 '))).toMatch(/cordoned$/);
    const excluded = Object.fromEntries(lines.filter((l) => /^(w-|win-)/.test(l)).map((l) => l.split(/\s+/)).map(([name, reason]) => [name, reason]));
    expect(excluded).toEqual({ 'w-a2': 'already-patched', 'w-gpu': 'selector-mismatch', 'w-off': 'disabled', 'win-1': 'not-linux' });
    expect(result.stdout).toContain('permissions: everything a run needs is granted');
    // One review per verb a run needs, asked of the server itself (not assumed).
    expect(reviews()).toHaveLength(REQUIRED_PERMISSIONS.flatMap((p) => p.verbs).length);
    expect(result.stdout).toMatch(/dry run: nothing was changed$/m);
    expect(writes()).toEqual([]);
  });

  it('--dry-run with credentials that lack a permission says what a run would be refused', async () => {
    const url = await serve();
    const dir = scratch();
    const result = await runCli(['run', '--kubeconfig', writeKubeconfig(dir, url, 'no-eviction'), '--dry-run'], { HOME: dir });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('permissions: a run would be refused; missing: create pods/eviction (see deploy/clusterrole.yaml)');
  });

  it('refuses to start a run whose credentials lack a permission, naming it, before changing anything', async () => {
    const url = await serve();
    const dir = scratch();
    const kubeconfig = writeKubeconfig(dir, url, 'no-eviction');
    const result = await runCli(['run', '--kubeconfig', kubeconfig, '--db', join(dir, 'pp.db')], { HOME: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: forbidden: the credentials from ${kubeconfig} cannot create pods/eviction`);
    expect(result.stderr).toContain('hint: grant it in deploy/clusterrole.yaml');
    noStackTrace(result.stderr);
    expect(writes()).toEqual([]);
    expect(bench.store.list('leases', { namespace: NAMESPACE }).items).toEqual([]);
  });

  it('refuses when the namespace is missing, and has taken nothing (the Lease is its first write)', async () => {
    const url = await serve();
    bench.store.delete('namespaces', { name: NAMESPACE });
    const dir = scratch();
    const result = await runCli(['run', '--kubeconfig', writeKubeconfig(dir, url, 'patchpilot'), '--db', join(dir, 'pp.db')], { HOME: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('error: namespace os-patch does not exist in cluster test');
    expect(result.stderr).toContain('hint: create it with: kubectl apply -k deploy/');
    expect(writes().map((r) => `${r.verb} ${r.resource}`)).toEqual(['create leases']);
    expect(bench.store.list('nodes').items.filter((n) => (n.spec as { unschedulable?: boolean }).unschedulable).map((n) => n.metadata.name)).toEqual(['w-b1']);
  });

  it('refuses a plan naming a node the cluster lacks, in one line, dry run or not, before taking the Lease or writing a run', async () => {
    const url = await serve();
    const dir = scratch();
    const planFile = join(dir, 'plan.yaml');
    writeFileSync(planFile, 'cluster: prod\nnodes: [ghost-1, w-a1]\n');
    const kubeconfig = writeKubeconfig(dir, url, 'patchpilot');
    const db = join(dir, 'pp.db');
    for (const extra of [['--dry-run'], []]) {
      const result = await runCli(['run', '--kubeconfig', kubeconfig, '--plan', planFile, '--db', db, ...extra], { HOME: dir });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toBe(`error: the plan names node(s) that are not in cluster prod: ghost-1\nhint: check the names with kubectl get nodes, and fix the nodes list of ${planFile}\n`);
      expect(result.stdout).toBe('');
    }
    expect(writes()).toEqual([]);
    // Refused before the database was even opened: no run record, FAILED or other.
    expect(existsSync(db)).toBe(false);
  });

  it.runIf(IMMUTABLE_FILES)('refuses run, reset --yes and scan with a database it cannot write (chattr +i) before any change to the cluster', async () => {
    const url = await serve();
    bench.store.modify('nodes', { name: 'w-a1' }, (n) => (n.metadata.labels = { ...n.metadata.labels, 'patchpilot.io/os-patch': 'abc123' }), { internal: true });
    const dir = scratch();
    const db = join(dir, 'pp.db');
    openStore(db).close();
    expect(spawnSync('chattr', ['+i', db]).status).toBe(0);
    try {
      const kubeconfig = writeKubeconfig(dir, url, 'patchpilot');
      for (const command of [['run'], ['reset', '--yes'], ['scan']]) {
        const result = await runCli([...command, '--kubeconfig', kubeconfig, '--db', db], { HOME: dir });
        expect(result.code, `${command.join(' ')}: ${result.stderr}`).toBe(2);
        expect(result.stderr).toBe(`error: Database ${db} is read-only\nhint: Make the file and its directory writable by this user (SQLite also writes -wal and -shm files beside it).\n`);
      }
      expect(writes()).toEqual([]);
      expect(bench.store.get('nodes', { name: 'w-a1' }).metadata.labels?.['patchpilot.io/os-patch']).toBe('abc123');
    } finally {
      spawnSync('chattr', ['-i', db]);
    }
  });
});

