/**
 * `plan check`, `run --dry-run` and `run` derive a run's start and version hash in one place (src/engine/run-start.ts):
 * on one plan, the three real commands print and use the same trigger, hash and start.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { versionHash } from '../../src/engine/hash.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { openStore } from '../../src/store/index.ts';
import type { PolicyRule } from '../../src/sim/kube-api/index.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { seedNode, startBench, type Bench } from './support.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
const scratch = scratchDirs('run-start');
const rules = (parse(readFileSync(resolve(import.meta.dirname, '../../deploy/clusterrole.yaml'), 'utf8')) as { rules: PolicyRule[] }).rules;

/** Runs the CLI; `interruptOn`: Ctrl-C it once its output matches (a run waiting for a future start is cancelled). */
function cli(args: string[], cwd: string, interruptOn?: RegExp): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH, NO_COLOR: '1', HOME: cwd } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (interruptOn?.test(stdout) && !child.killed) child.kill('SIGINT');
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('one derivation of a run\'s start and version hash', () => {
  let bench: Bench;
  afterEach(async () => {
    await bench.close();
  });

  it.each([
    { name: 'on demand: at once, trigger "on-demand"', trigger: '', id: 'on-demand' },
    { name: 'on demand at a future time: that time, and its trigger id', trigger: 'trigger: { kind: on-demand, notBefore: "2099-01-01T00:00:00Z" }\n', id: 'on-demand@2099-01-01T00:00:00.000Z' },
  ])('$name', async ({ trigger, id }) => {
    bench = await startBench({ tokens: { patchpilot: { user: 'system:serviceaccount:os-patch:patchpilot', rules } } });
    // No node matches the selector: the real run decides everything a run decides, then has nothing to patch.
    seedNode(bench.store, 'w-1', { labels: { pool: 'general' } });
    const dir = scratch();
    const planText = `cluster: prod\nnodeSelector: { pool: none }\n${trigger}`;
    writeFileSync(join(dir, 'plan.yaml'), planText);
    writeFileSync(
      join(dir, 'kubeconfig.yaml'),
      `apiVersion: v1\nkind: Config\nclusters: [{ name: t, cluster: { server: "${bench.server.url}", insecure-skip-tls-verify: true } }]\nusers: [{ name: u, user: { token: patchpilot } }]\ncontexts: [{ name: t, context: { cluster: t, user: u } }]\ncurrent-context: t\n`,
    );
    const hash = versionHash(parsePlan(parse(planText)), id);
    const start = trigger ? '2099-01-01T00:00:00.000Z' : 'at once';

    const check = await cli(['plan', 'check', 'plan.yaml'], dir);
    expect(check.stderr).toBe('');
    expect(check.stdout).toContain(`a run started now begins: ${start}`);
    expect(check.stdout).toContain(`version hash for trigger "${id}": ${hash}`);

    const dry = await cli(['run', '--kubeconfig', 'kubeconfig.yaml', '--plan', 'plan.yaml', '--dry-run'], dir);
    expect(dry.stderr).toBe('');
    expect(dry.stdout).toContain(`trigger ${id}; version hash ${hash}`);
    expect(dry.stdout).toContain(`a run started now begins: ${start}`);

    // The real run (one waiting for 2099 is cancelled with Ctrl-C once it has started): what it stored.
    const run = await cli(['run', '--kubeconfig', 'kubeconfig.yaml', '--plan', 'plan.yaml', '--db', 'pp.db'], dir, trigger ? /run run-\S+:/ : undefined);
    expect(run.stderr).toBe('');
    const store = openStore(join(dir, 'pp.db'), { readOnly: true });
    try {
      const [stored] = store.listRuns({ limit: 1 });
      expect(stored?.hash).toBe(hash);
      expect(stored?.trigger).toEqual({ id, notBefore: trigger ? Date.parse(start) : null });
    } finally {
      store.close();
    }
  });
});
