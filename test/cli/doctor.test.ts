/**
 * `patchpilot doctor`, `unstick` and `reset` as a user runs them: the real CLI (a child process) against the sandbox
 * API server of a cluster a real run has patched (in-process, in virtual time), and the fake Palette API. Exit codes:
 * doctor 0 (nothing found) / 1 (problems) / 2 (bad input); reset without --yes prints and exits 1.
 */
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { resetCommand, type OpsIo } from '../../src/cli/doctor.ts';
import { kubeconfig } from '../../src/sim/kube-api/index.ts';
import { internalError } from '../../src/sim/kube-api/status.ts';
import { StoreError } from '../../src/store/errors.ts';
import { openStore } from '../../src/store/index.ts';
import { Store } from '../../src/store/store.ts';
import { startFakePalette, type FakePalette } from '../helpers/fake-palette.ts';
import { sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const BIN = join(process.cwd(), 'bin', 'patchpilot.js');
const dirs = scratchDirs('cli-doctor');
const KEY = 'cli-palette-key-secret';

let bench: SandboxTarget | undefined;
let palette: FakePalette | undefined;

afterEach(async () => {
  await bench?.close();
  await palette?.close();
  bench = undefined;
  palette = undefined;
});

interface Result {
  code: number;
  out: string;
  err: string;
}

/** Runs the CLI without blocking this process (the API server it talks to lives here), in a scratch directory. */
function cli(args: string[], env: Record<string, string> = {}, cwd = dirs()): Promise<Result> {
  return new Promise((resolve) => {
    const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PALETTE_') && k !== 'KUBECONFIG'));
    execFile(process.execPath, [BIN, ...args], { cwd, env: { ...base, ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 99) : 0, out: stdout, err: stderr });
    });
  });
}

async function serve(scenario: string, patch = true): Promise<{ b: SandboxTarget; dir: string; config: string }> {
  bench = await sandboxTarget(scenario);
  if (patch) await bench.patch();
  const dir = dirs();
  const config = join(dir, 'sandbox.kubeconfig');
  writeFileSync(config, kubeconfig(bench.server.url));
  return { b: bench, dir, config };
}

describe('patchpilot doctor', () => {
  it('exit 1 with the apt-lock problem, its evidence and fix; --json is the same report', { timeout: 60_000 }, async () => {
    const { config, dir } = await serve('apt-lock-timeout.yaml');
    const result = await cli(['doctor', '--kubeconfig', config, '--cluster', 'apt-lock-timeout'], {}, dir);
    expect(result.err).toBe('');
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/^patchpilot doctor: cluster apt-lock-timeout at /);
    expect(result.out).toContain('[PROBLEM] Patch Jobs gave up waiting for the apt lock');
    expect(result.out).toMatch(/- job apply-os-patch-on-worker-2-with-\w+ on node worker-2 \(run run-1\) at \S+: LOCK_TIMEOUT/);
    expect(result.out).toContain('then npx patchpilot run --cluster apt-lock-timeout');
    expect(result.out).toContain('[skipped] Palette onDemandPatchAfter not checked');

    const json = await cli(['doctor', '--kubeconfig', config, '--cluster', 'apt-lock-timeout', '--json'], {}, dir);
    expect(json.code).toBe(1);
    const report = JSON.parse(json.out) as { cluster: string; findings: { id: string; status: string }[] };
    expect(report.cluster).toBe('apt-lock-timeout');
    expect(report.findings.find((f) => f.id === 'apt-lock')!.status).toBe('problem');
  });

  it('exit 0 on a fresh cluster where nothing is wrong', { timeout: 60_000 }, async () => {
    const { config, dir } = await serve('demo.yaml', false);
    const result = await cli(['doctor', '--kubeconfig', config], {}, dir);
    expect(result.err).toBe('');
    expect(result.out).not.toContain('[PROBLEM]');
    expect(result.out.match(/Not a Palette-managed cluster/g)).toHaveLength(1);
    expect(result.out.trim().split('\n').at(-1)).toMatch(/^no problem found/);
    expect(result.code).toBe(0);
  });

  it('exit 2 for bad input: a missing kubeconfig, a Palette cluster without a key', { timeout: 60_000 }, async () => {
    const missing = await cli(['doctor', '--kubeconfig', 'no/such.kubeconfig']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('kubeconfig no/such.kubeconfig (from --kubeconfig) does not exist');
    const { config, dir } = await serve('demo.yaml', false);
    const nokey = await cli(['doctor', '--kubeconfig', config, '--palette-cluster', 'uid-1'], {}, dir);
    expect(nokey.code).toBe(2);
    expect(nokey.err).toContain('error: Palette cluster uid-1 is configured but no Palette API key is');
    expect(nokey.err).toContain('hint: set PALETTE_API_KEY');
    const nodb = await cli(['doctor', '--kubeconfig', config, '--db', join(dir, 'none', 'x.db')], {}, dir);
    expect(nodb.code).toBe(2);
    expect(nodb.err).toMatch(/^error: /);
  });
});

describe('patchpilot unstick', () => {
  it('clears the stuck Palette timestamp once, never printing the key; a wrong key is a clear error', { timeout: 60_000 }, async () => {
    palette = await startFakePalette({ apiKey: KEY, clusters: { 'uid-7': { projectUid: 'proj', osPatchConfig: { onDemandPatchAfter: '2026-01-08T17:32:08Z', rebootIfRequired: true } } } });
    const { config, dir } = await serve('sandbox-palette.yaml', false);
    const env = { PALETTE_API_URL: palette.url, PALETTE_API_KEY: KEY, PALETTE_PROJECT_UID: 'proj', PALETTE_CLUSTER_UID: 'uid-7' };
    const doctorBefore = await cli(['doctor', '--kubeconfig', config, '--cluster', 'sandbox-palette'], env, dir);
    expect(doctorBefore.code).toBe(1);
    expect(doctorBefore.out).toContain("[PROBLEM] Palette's onDemandPatchAfter is stuck in the past");

    const first = await cli(['unstick', '--kubeconfig', config, '--cluster', 'sandbox-palette'], env, dir);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(first.out).toContain("done: cleared Palette's onDemandPatchAfter of cluster uid-7 (was 2026-01-08T17:32:08Z, in the past)");
    const second = await cli(['unstick', '--kubeconfig', config, '--cluster', 'sandbox-palette'], env, dir);
    expect(second.code).toBe(0);
    expect(second.out).toContain('nothing to unstick');
    expect(palette.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);

    const wrong = await cli(['unstick', '--kubeconfig', config], { ...env, PALETTE_API_KEY: 'some-wrong-key' }, dir);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toContain('HTTP 401');
    expect(wrong.err).toContain('hint: check PALETTE_API_KEY');
    for (const output of [doctorBefore, first, second, wrong]) expect(output.out + output.err).not.toMatch(new RegExp(`${KEY}|some-wrong-key`));
  });
});

describe('patchpilot reset', () => {
  it('without --yes prints what it would remove and exits 1; unknown nodes exit 2; --yes removes and audits', { timeout: 60_000 }, async () => {
    const { b, config, dir } = await serve('apt-lock-timeout.yaml');
    const labelled = () => b.kube.list('nodes').items.filter((n) => n.metadata.labels?.['patchpilot.io/os-patch']).map((n) => n.metadata.name);
    expect(labelled()).toEqual(['cp-1', 'worker-1', 'worker-3']);

    const dry = await cli(['reset', '--kubeconfig', config, '--cluster', 'apt-lock-timeout', '--nodes', 'worker-1,worker-3'], {}, dir);
    expect(dry.code).toBe(1);
    expect(dry.out).toMatch(/^reset would remove, in cluster apt-lock-timeout:\n {2}worker-1: label patchpilot\.io\/os-patch=\w+; /);
    expect(dry.out).toContain('nothing was changed: run again with --yes to remove them');
    expect(labelled()).toEqual(['cp-1', 'worker-1', 'worker-3']);

    const unknown = await cli(['reset', '--kubeconfig', config, '--nodes', 'worker-1,ghost', '--yes'], {}, dir);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('no node named ghost in cluster');
    expect(labelled()).toEqual(['cp-1', 'worker-1', 'worker-3']);

    const db = join(dir, 'runs.db');
    openStore(db).close();
    const done = await cli(['reset', '--kubeconfig', config, '--cluster', 'apt-lock-timeout', '--nodes', 'worker-1,worker-3', '--yes', '--db', db], {}, dir);
    expect(done.err).toBe('');
    expect(done.code).toBe(0);
    expect(done.out).toContain('reset 2 node(s): worker-1, worker-3');
    expect(labelled()).toEqual(['cp-1']);
    const store = openStore(db);
    try {
      expect(store.auditRows().filter((r) => r.action === 'node.reset').map((r) => r.node)).toEqual(['worker-1', 'worker-3']);
    } finally {
      store.close();
    }
  });
  it('--yes interrupted by a failing API server: lists the nodes already reset (audited) before the one error line, exit 2', { timeout: 60_000 }, async () => {
    const { b, config, dir } = await serve('apt-lock-timeout.yaml');
    // worker-1 is reset; every write to worker-3 then fails with a 500 (through the client's retries).
    b.kube.hooks.onRequest((request) => {
      if (request.resource === 'nodes' && request.name === 'worker-3' && (request.verb === 'patch' || request.verb === 'update')) return internalError('etcdserver: request timed out');
    });
    const db = join(dir, 'runs.db');
    openStore(db).close();
    const result = await cli(['reset', '--kubeconfig', config, '--cluster', 'apt-lock-timeout', '--nodes', 'worker-1,worker-3', '--yes', '--db', db], {}, dir);
    expect(result.code).toBe(2);
    expect(result.out).toMatch(/\nreset 1 of 2 node\(s\) before the error: worker-1; not reset: worker-3\n$/);
    expect(result.err).toMatch(/^error: .*worker-3.*\n/);
    expect(result.err).not.toMatch(/\n\s+at .+:\d+/);
    expect(result.err.split('\n').filter((line) => line.startsWith('error:'))).toHaveLength(1);
    const store = openStore(db);
    try {
      expect(store.auditRows().filter((r) => r.action === 'node.reset').map((r) => r.node)).toEqual(['worker-1']);
    } finally {
      store.close();
    }
  });
  it('--yes interrupted by Ctrl-C: the node in progress is finished and audited, the rest left alone, and the partial line says which (exit 130)', { timeout: 60_000 }, async () => {
    const { b, config, dir } = await serve('apt-lock-timeout.yaml');
    const db = join(dir, 'runs.db');
    openStore(db).close();
    // Ctrl-C arrives while worker-1's patch is on its way to the API server.
    const signals = new EventEmitter();
    b.kube.hooks.onRequest((request) => {
      if (request.resource === 'nodes' && request.name === 'worker-1' && request.verb === 'patch') signals.emit('SIGINT');
    });
    let out = '';
    const io = { out: Object.assign(new PassThrough(), { write: (chunk: string) => ((out += chunk), true) }), signals } as unknown as OpsIo;
    const code = await resetCommand({ kubeconfig: config, cluster: 'apt-lock-timeout', nodes: ['worker-1', 'worker-3'], yes: true, db, by: 'dave' }, io);
    expect(code).toBe(130);
    expect(out).toContain('interrupted: finishing the node in progress (its audit record first)');
    expect(out).toMatch(/\nreset 1 of 2 node\(s\) before the interrupt: worker-1; not reset: worker-3\nrun the same reset again to finish it\n$/);
    const labels = (name: string) => b.kube.list('nodes').items.find((n) => n.metadata.name === name)!.metadata.labels ?? {};
    expect(labels('worker-1')['patchpilot.io/os-patch'], 'worker-1, in progress at the interrupt, was reset').toBeUndefined();
    expect(labels('worker-3')['patchpilot.io/os-patch'], 'worker-3 was left as it was').toBeDefined();
    const store = openStore(db);
    try {
      expect(store.auditRows().filter((r) => r.action === 'node.reset').map((r) => r.node)).toEqual(['worker-1']);
    } finally {
      store.close();
    }
    expect(signals.listenerCount('SIGINT'), 'the handler is removed once the reset ends').toBe(0);
  });
  it('--yes interrupted by the database after a node\'s patch: that node is listed as reset without its audit record, not as "not reset"', { timeout: 60_000 }, async () => {
    const { b, config, dir } = await serve('apt-lock-timeout.yaml');
    const db = join(dir, 'runs.db');
    openStore(db).close();
    // The disk fills between worker-3's patch (which went through) and its audit record. In this process, so that the
    // store can fail as it does (a StoreError), not as a child's stub would.
    const append = Store.prototype.appendAudit;
    const spy = vi.spyOn(Store.prototype, 'appendAudit').mockImplementation(function (this: Store, entry) {
      if (entry.node === 'worker-3') throw new StoreError('DB_FULL', `The disk holding ${db} is full`, 'Free disk space, then retry.');
      return append.call(this, entry);
    });
    let out = '';
    const io = { out: Object.assign(new PassThrough(), { write: (chunk: string) => ((out += chunk), true) }) } as unknown as OpsIo;
    try {
      await expect(resetCommand({ kubeconfig: config, cluster: 'apt-lock-timeout', nodes: ['worker-1', 'worker-3'], yes: true, db, by: 'dave' }, io)).rejects.toThrow(/disk holding .* is full/);
    } finally {
      spy.mockRestore();
    }
    const worker3 = b.kube.list('nodes').items.find((n) => n.metadata.name === 'worker-3')!;
    expect(worker3.metadata.labels?.['patchpilot.io/os-patch'], 'worker-3 was reset in the cluster').toBeUndefined();
    expect(out).toMatch(/\nreset 2 of 2 node\(s\) before the error: worker-1, worker-3 \(worker-3 without its audit record\)\n$/);
    expect(out).not.toMatch(/not reset/);
  });
});
