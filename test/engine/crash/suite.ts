/**
 * Crash-resume (the suite; see crashResumeSuite below): the orchestrator is SIGKILLed at many random points of one run (a store commit or a cluster change,
 * just before or just after it takes effect) and resumed from the store each time. After every resume and at the end:
 * no node is patched twice for the hash, the audit chain verifies and never loses a row, and the run ends with every
 * node accounted for and none left cordoned by us.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { initialState, type MemoryNodeSpec } from '../../../src/cluster/memory.ts';
import { ANNOTATIONS } from '../../../src/engine/metadata.ts';
import { openStore } from '../../../src/store/index.ts';
import { randomInt, seededRandom } from '../../helpers/random.ts';
import { scratchDirs } from '../../helpers/scratch.ts';
import type { ClusterFile } from './child.ts';

const CHILD = join(import.meta.dirname, 'child.ts');
const RUN_ID = 'run-crash-1';

const NODES: MemoryNodeSpec[] = [
  { name: 'cp-1', role: 'control-plane', zone: 'a' },
  { name: 'cp-2', role: 'control-plane', zone: 'b' },
  { name: 'kernel-1', zone: 'a', behaviour: { report: { rebootRequired: true, rebootPackages: ['linux-image-6.8.0-49'] } } },
  { name: 'flaky-api', zone: 'b', behaviour: { apiErrors: 2 } },
  { name: 'pdb-blocked', zone: 'a', behaviour: { drainBlocked: true } },
  { name: 'foreign-cordon', zone: 'b', unschedulable: true, annotations: { 'example.com/why': 'disk check' } },
  { name: 'kernel-2', zone: 'b', behaviour: { report: { rebootRequired: true, rebootPackages: ['linux-image-6.8.0-49'] } } },
  { name: 'worker-8', zone: 'a' },
];


function workspace(scratch: () => string) {
  const dir = scratch();
  const clusterFile = join(dir, 'cluster.json');
  const initial: ClusterFile = { now: Date.parse('2026-11-22T02:00:00Z'), state: initialState('crashy', NODES) };
  writeFileSync(clusterFile, JSON.stringify(initial));
  return { db: join(dir, 'patchpilot.db'), clusterFile };
}

interface ChildResult {
  killed: boolean;
  ops: number;
  output: { outcome: string; tally: Record<string, number>; failedNodes: string[] } | null;
}

function runChild(ws: { db: string; clusterFile: string }, killAt: number, when: 'before' | 'after'): ChildResult {
  const child = spawnSync(process.execPath, [CHILD], {
    env: { ...process.env, DB: ws.db, CLUSTER_FILE: ws.clusterFile, RUN_ID, KILL_AT: String(killAt), KILL_WHEN: when },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (child.signal === 'SIGKILL') return { killed: true, ops: killAt, output: null };
  if (child.status !== 0) throw new Error(`orchestrator exited ${child.status} ${child.signal}:\n${child.stderr}`);
  const line = JSON.parse(child.stdout.trim().split('\n').at(-1)!) as { ops: number; output: ChildResult['output'] };
  return { killed: false, ...line };
}

function clusterState(file: string): ClusterFile['state'] {
  return (JSON.parse(readFileSync(file, 'utf8')) as ClusterFile).state;
}

function auditOf(db: string) {
  const store = openStore(db, { create: false });
  try {
    return { verification: store.verifyAudit(), rows: store.auditRows({ runId: RUN_ID, limit: 1_000_000 }), nodeRuns: store.getNodeRuns(RUN_ID), run: store.getRun(RUN_ID) };
  } finally {
    store.close();
  }
}

/**
 * The suite, with `KILLS` crashes: crash-resume.full.test.ts runs 60 (CI), crash-resume.test.ts a few, so that
 * `npm test` keeps the property at a fraction of the time.
 */
export function crashResumeSuite(KILLS: number, seed = 20261122): void {
const scratch = scratchDirs('crash');
describe('crash-resume', () => {
  it(`survives ${KILLS} SIGKILLs at random points and ends as an uninterrupted run would`, { timeout: 300_000 }, () => {
    // Reference: the same run without crashes.
    const reference = workspace(scratch);
    const clean = runChild(reference, 0, 'after');
    expect(clean.output?.outcome).toBe('partial');
    const totalOps = clean.ops;
    expect(totalOps).toBeGreaterThan(40);

    const referenceAuditRows = auditOf(reference.db).rows.length;

    const ws = workspace(scratch);
    const random = seededRandom(seed);
    let kills = 0;
    let lastAuditCount = 0;
    let finished: ChildResult | null = null;
    for (let attempt = 0; attempt < KILLS + 20 && finished === null; attempt++) {
      // Spread the remaining kills over the remaining work, judged by how much of the audit trail exists already.
      const remainingOps = totalOps * Math.max(0.05, 1 - lastAuditCount / referenceAuditRows);
      const reach = Math.max(2, Math.ceil((2 * remainingOps) / Math.max(1, KILLS - kills)));
      const killAt = kills < KILLS ? randomInt(random, 1, reach) : 0;
      const result = runChild(ws, killAt, random() < 0.5 ? 'before' : 'after');
      if (result.killed) kills += 1;
      else finished = result;

      // After every resume: nothing patched twice, the audit chain intact and never shorter than before.
      const patchJobs = clusterState(ws.clusterFile).patchJobsCreated;
      for (const [key, count] of Object.entries(patchJobs)) expect(count, `patch jobs for ${key}`).toBe(1);
      const audit = auditOf(ws.db);
      expect(audit.verification.problems).toEqual([]);
      expect(audit.verification.ok).toBe(true);
      expect(audit.rows.length).toBeGreaterThanOrEqual(lastAuditCount);
      lastAuditCount = audit.rows.length;
    }

    expect(kills).toBeGreaterThanOrEqual(Math.floor((KILLS * 5) / 6));
    expect(finished, 'the run must end').not.toBeNull();
    // Timings may differ (a drain interrupted by a crash starts over), the result may not.
    const { startedAt: _s1, finishedAt: _f1, ...crashed } = finished!.output as Record<string, unknown>;
    const { startedAt: _s2, finishedAt: _f2, ...uninterrupted } = clean.output as Record<string, unknown>;
    expect(crashed).toEqual(uninterrupted);

    const state = clusterState(ws.clusterFile);
    const cordonedByUs = state.nodes.filter((n) => n.unschedulable && n.annotations[ANNOTATIONS.cordonedBy] !== undefined);
    expect(cordonedByUs.map((n) => n.name)).toEqual([]);
    const foreign = state.nodes.find((n) => n.name === 'foreign-cordon')!;
    expect(foreign.unschedulable, 'a cordon someone else made is never lifted').toBe(true);
    const labelled = state.nodes.filter((n) => n.labels['patchpilot.io/os-patch'] !== undefined).map((n) => n.name).sort();
    const referenceLabelled = clusterState(reference.clusterFile).nodes.filter((n) => n.labels['patchpilot.io/os-patch'] !== undefined).map((n) => n.name).sort();
    expect(labelled).toEqual(referenceLabelled);
    for (const node of state.nodes.filter((n) => n.name.startsWith('kernel'))) expect(node.bootCount, `${node.name} rebooted once`).toBe(2);

    // Every node's story is in the audit log exactly once, in order.
    const audit = auditOf(ws.db);
    expect(audit.run?.status).toBe('done');
    for (const node of NODES.map((n) => n.name)) {
      const finishedRows = audit.rows.filter((r) => r.action === 'node.finished' && r.node === node);
      expect(finishedRows, `node.finished for ${node}`).toHaveLength(1);
    }
    expect(audit.rows.filter((r) => r.action === 'run.finished')).toHaveLength(1);
    expect(audit.nodeRuns.map((r) => [r.node, r.result])).toEqual(auditOf(reference.db).nodeRuns.map((r) => [r.node, r.result]));
    console.log(`crash-resume: ${kills} kills over a run of ${totalOps} operations; audit rows ${audit.rows.length}`);
  });
});
}
