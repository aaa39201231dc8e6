/**
 * `patchpilot run` stopped by SIGTERM, as a Deployment's pod is when its node is drained (the orchestrator's own node
 * is patched like the others) or a service manager stops it: the run is saved, not cancelled, exit 143, and the next
 * run on the same database resumes it and patches each node once. Real processes against `patchpilot sandbox`, paced
 * on the wall clock (the second run waits out the first one's Lease), so this lives in the heavy suite. What happened
 * to the cluster is read from a watch of its API (the race harness's), not from what the orchestrators print.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/index.ts';
import { ClusterWatch, LABEL_KEY } from '../race/race.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { until } from '../helpers/until.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
const env = { ...process.env, NO_COLOR: '1' };

describe('patchpilot run and SIGTERM', () => {
  const dir = scratchDirs('run-sigterm')();
  const scenario = join(dir, 'sigterm.yaml');
  const kubeconfig = join(dir, 'sigterm.kubeconfig');
  const plan = join(dir, 'sigterm.plan.yaml');
  const db = join(dir, 'patchpilot.db');
  writeFileSync(
    scenario,
    [
      'name: sigterm',
      'seed: 7',
      'cluster:',
      '  nodes:',
      '    - { name: cp-1, os: ubuntu-22.04, role: control-plane }',
      '    - { name: worker, os: ubuntu-22.04, count: 3 }',
      'updates: { security: [openssl, curl] }',
      'plan: { concurrency: 1 }',
      '',
    ].join('\n'),
  );
  const sandbox = spawn(process.execPath, [BIN, 'sandbox', '--scenario', scenario, '--kubeconfig', kubeconfig, '--speed', '300', '--quiet'], { env, stdio: 'ignore' });
  afterAll(async () => {
    if (sandbox.exitCode === null) {
      sandbox.kill('SIGTERM');
      await new Promise((done) => sandbox.once('exit', done));
    }
  });
  const cli = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { env, encoding: 'utf8', timeout: 120_000 });

  it('saves the run and exits 143; the next run on the database resumes it and patches each node once', { timeout: 180_000 }, async () => {
    await until('the sandbox to write its kubeconfig and plan', () => existsSync(kubeconfig) && existsSync(plan), {
      giveUpIf: () => (sandbox.exitCode !== null ? `the sandbox exited with ${sandbox.exitCode}` : undefined),
    });
    const kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    const cluster = new ClusterWatch(kc);
    await cluster.start();
    const args = ['run', '--kubeconfig', kubeconfig, '--plan', plan, '--trigger', 'sigterm-1', '--db', db, '--lease-seconds', '2', '--wait'];
    const first = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const exited = new Promise<number | null>((done) => first.once('exit', (code) => done(code)));
    first.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      // A node has just been cordoned: the run is in the middle of it.
      if (first.signalCode === null && !first.killed && / cordon$/m.test(out)) first.kill('SIGTERM');
    });
    first.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
    expect(await exited, out).toBe(143);
    const runId = /stopped by SIGTERM: run (\S+) is saved in /.exec(out)?.[1];
    expect(runId, out).toBeDefined();
    expect(out).toContain('the next `patchpilot run` against this cluster with this database finishes it first');

    const store = openStore(db);
    try {
      expect(store.requireRun(runId!).status, 'saved as it was: a SIGTERM is no cancel').not.toBe('done');
    } finally {
      store.close();
    }

    const second = cli(...args);
    expect(second.status, second.stdout + second.stderr).toBe(0);
    expect(second.stdout).toContain(`resuming unfinished run ${runId}`);
    expect(second.stdout).toContain(`run ${runId}: SUCCEEDED (4 patched, 0 without updates, 0 failed)`);
    expect(cli('audit', 'verify', '--db', db).status).toBe(0);

    // From the API: never two nodes cordoned at concurrency 1 across the stop and the resume, one patch Job per node
    // for the run's hash, every node labelled and none left cordoned, and no write under a stale lease generation.
    const nodes = ['cp-1', 'worker-1', 'worker-2', 'worker-3'];
    try {
      await until('the watch to see every node labelled and none cordoned', () => nodes.every((n) => cluster.nodes.get(n)?.metadata?.labels?.[LABEL_KEY]) && cluster.cordonedByUs().length === 0);
      expect(cluster.maxInFlight).toBe(1);
      const hash = cluster.nodes.get('cp-1')?.metadata?.labels?.[LABEL_KEY];
      expect(Object.fromEntries(nodes.map((n) => [n, cluster.patchJobs.get(`${n}@${hash}`)?.size ?? 0]))).toEqual(Object.fromEntries(nodes.map((n) => [n, 1])));
      expect(cluster.staleWrites).toEqual([]);
      expect(cluster.watchGaps).toBe(0);
    } finally {
      cluster.stop();
    }
    const audit = cli('audit', 'show', '--run', runId!, '--db', db).stdout;
    for (const node of ['cp-1', 'worker-1', 'worker-2', 'worker-3']) {
      expect(audit.match(new RegExp(`node\\.finished +${node} `, 'g')), `${node} finished once:\n${audit}`).toHaveLength(1);
    }
  });
});
