/**
 * `plan check`, `run --dry-run` and `run` derive a run's start and version hash in one place (src/engine/run-start.ts):
 * on one plan, the three commands (in-process, against a Kubernetes API server on 127.0.0.1) print and use the same
 * trigger, hash and start.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { planCheck } from '../../src/cli/plan-check.ts';
import { runCommand } from '../../src/cli/run.ts';
import { versionHash } from '../../src/engine/hash.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { openStore } from '../../src/store/index.ts';
import type { PolicyRule } from '../../src/sim/kube-api/index.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { NAMESPACE, seedNode, startBench, type Bench } from './support.ts';

const scratch = scratchDirs('run-start');
const rules = (parse(readFileSync(resolve(import.meta.dirname, '../../deploy/clusterrole.yaml'), 'utf8')) as { rules: PolicyRule[] }).rules;

function output(): { out: Writable; text: () => string } {
  let text = '';
  const out = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { out, text: () => text };
}

/** The plan file and the kubeconfig (the patchpilot service account's token) a user would pass. */
function userFiles(dir: string, planText: string, server: string): { plan: string; kubeconfig: string } {
  const plan = join(dir, 'plan.yaml');
  writeFileSync(plan, planText);
  const kubeconfig = join(dir, 'kubeconfig.yaml');
  writeFileSync(
    kubeconfig,
    `apiVersion: v1\nkind: Config\nclusters: [{ name: t, cluster: { server: "${server}", insecure-skip-tls-verify: true } }]\nusers: [{ name: u, user: { token: patchpilot } }]\ncontexts: [{ name: t, context: { cluster: t, user: u } }]\ncurrent-context: t\n`,
  );
  return { plan, kubeconfig };
}

/** A month from now, on the hour (an on-demand time must be in the future, and within a year). */
const LATER = new Date(Math.ceil((Date.now() + 30 * 86_400_000) / 3_600_000) * 3_600_000).toISOString();

describe('one derivation of a run\'s start and version hash', () => {
  let bench: Bench;
  afterEach(async () => {
    await bench.close();
  });

  it.each([
    { name: 'on demand: at once, trigger "on-demand"', trigger: '', id: 'on-demand', start: 'at once' },
    { name: 'on demand at a future time: that time, and its trigger id', trigger: `trigger: { kind: on-demand, notBefore: "${LATER}" }\n`, id: `on-demand@${LATER}`, start: LATER },
    { name: 'an explicit --trigger', trigger: '', id: 'change-42', start: 'at once', option: 'change-42' },
  ])('$name', async ({ trigger, id, start, option }) => {
    bench = await startBench({ tokens: { patchpilot: { user: 'system:serviceaccount:os-patch:patchpilot', rules } } });
    // No node matches the selector: the real run decides everything a run decides, then has nothing to patch.
    seedNode(bench.store, 'w-1', { labels: { pool: 'general' } });
    const dir = scratch();
    const planText = `cluster: prod\nnodeSelector: { pool: none }\n${trigger}`;
    const { plan, kubeconfig } = userFiles(dir, planText, bench.server.url);
    const hash = versionHash(parsePlan(parse(planText)), id);

    const check = planCheck(plan, { now: Date.now(), ...(option ? { trigger: option } : {}) });
    expect(check).toContain(`a run started now begins: ${start}`);
    expect(check).toContain(`version hash for trigger "${id}": ${hash}`);

    const dry = output();
    expect(await runCommand({ kubeconfig, plan, dryRun: true, ...(option ? { trigger: option } : {}) }, { out: dry.out, env: {} })).toBe(0);
    expect(dry.text()).toContain(`trigger ${id}; version hash ${hash}`);
    expect(dry.text()).toContain(`a run started now begins: ${start}`);

    if (start !== 'at once') return; // a run waiting a month is not run here; the Orchestrator test covers its start
    const run = output();
    const code = await runCommand({ kubeconfig, plan, db: join(dir, "pp.db"), ...(option ? { trigger: option } : {}) }, { out: run.out, env: {} });
    // Nothing matches, by design: the run ends FAILED ("no matching nodes", exit 1) after storing its trigger and hash.
    expect(code, run.text()).toBe(1);
    expect(run.text()).toContain('no matching nodes');
    const store = openStore(join(dir, 'pp.db'), { readOnly: true });
    try {
      const [stored] = store.listRuns({ limit: 1 });
      expect(stored?.hash).toBe(hash);
      expect(stored?.trigger).toEqual({ id, notBefore: null });
    } finally {
      store.close();
    }
  });
});

describe('run --dry-run shows the selection the run makes', () => {
  let bench: Bench;
  afterEach(async () => {
    await bench.close();
  });

  it('lists a node a lost holder patched but left cordoned, which the run then uncordons', async () => {
    bench = await startBench({ tokens: { patchpilot: { user: 'system:serviceaccount:os-patch:patchpilot', rules } } });
    const dir = scratch();
    const planText = 'cluster: prod\nnodeSelector: { pool: general }\n';
    const hash = versionHash(parsePlan(parse(planText)), 'change-7');
    // Patched under this very trigger by a run that held lease generation 1 and lost the cluster before uncordoning.
    seedNode(bench.store, 'w-1', {
      labels: { pool: 'general', 'patchpilot.io/os-patch': hash },
      annotations: { 'patchpilot.io/cordoned-by': 'run-lost', 'patchpilot.io/cordon-generation': '1' },
      unschedulable: true,
    });
    // That holder's Lease, released since (unstick, or its process's last act): the next holder's generation is 2.
    const released = new Date(Date.now() - 3_600_000).toISOString().replace('Z', '000Z');
    bench.store.create(
      'leases',
      {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: 'patchpilot-prod', namespace: NAMESPACE },
        spec: { leaseDurationSeconds: 1, acquireTime: released, renewTime: released, leaseTransitions: 1 },
      },
      { internal: true },
    );
    const { plan, kubeconfig } = userFiles(dir, planText, bench.server.url);

    const dry = output();
    const before = bench.requests.length;
    expect(await runCommand({ kubeconfig, plan, dryRun: true, trigger: 'change-7' }, { out: dry.out, env: {} })).toBe(0);
    // The report and the selection come from one read of the nodes, as the run's own selection does.
    expect(bench.requests.slice(before).filter((r) => r.verb === 'list' && r.resource === 'nodes')).toHaveLength(1);
    expect(dry.text(), dry.text()).toMatch(/would patch 1 node\(s\)[\s\S]*\n1 +w-1 /);
    expect(dry.text()).toContain('cluster prod at http://127.0.0.1:');
    expect(dry.text()).toContain(': 1 node(s)');
    expect(dry.text()).not.toContain('excluded');

    const run = output();
    expect(await runCommand({ kubeconfig, plan, db: join(dir, 'pp.db'), trigger: 'change-7' }, { out: run.out, env: {} }), run.text()).toBe(0);
    expect(run.text()).toContain('1 node(s) of cluster prod to patch');
    const node = bench.store.get('nodes', { name: 'w-1' }) as { spec?: { unschedulable?: boolean }; metadata: { annotations?: Record<string, string> } };
    expect(node.spec?.unschedulable ?? false, `the lost holder's cordon is lifted; run said:\n${run.text()}`).toBe(false);
    expect(node.metadata.annotations?.['patchpilot.io/cordoned-by']).toBeUndefined();
  });
});
