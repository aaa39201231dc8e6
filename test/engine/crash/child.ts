/**
 * The orchestrator process of the crash-resume test. It drives one run against a cluster whose state lives in a
 * JSON file (the cluster outlives the orchestrator, as a real one does) and SIGKILLs itself at operation KILL_AT,
 * where an operation is a store commit or a cluster change, killed just before or just after it takes effect.
 *
 * Env: DB, CLUSTER_FILE, RUN_ID, KILL_AT (0 = never), KILL_WHEN (before|after).
 * Prints one line of JSON on success: { ops, output }.
 */
import { readFileSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { VirtualClock } from '../../../src/engine/clock.ts';
import { MemoryCluster, type MemoryClusterState } from '../../../src/cluster/memory.ts';
import { parsePlan } from '../../../src/engine/plan.ts';
import { Orchestrator } from '../../../src/service/orchestrator.ts';
import { driveInVirtualTime } from '../../../src/service/drive.ts';
import { openStore } from '../../../src/store/index.ts';

export interface ClusterFile {
  now: number;
  state: MemoryClusterState;
}

const env = (name: string): string => {
  const value = process.env[name];
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
};

const killAt = Number(process.env.KILL_AT ?? '0');
const killBefore = process.env.KILL_WHEN === 'before';
let ops = 0;

function operation<T>(apply: () => T): T {
  ops += 1;
  if (ops === killAt && killBefore) process.kill(process.pid, 'SIGKILL');
  const result = apply();
  if (ops === killAt && !killBefore) process.kill(process.pid, 'SIGKILL');
  return result;
}

const clusterFile = env('CLUSTER_FILE');
const saved = JSON.parse(readFileSync(clusterFile, 'utf8')) as ClusterFile;
const clock = new VirtualClock(saved.now);

function persistCluster(state: MemoryClusterState): void {
  const tmp = `${clusterFile}.tmp`;
  writeFileSync(tmp, JSON.stringify({ now: clock.now(), state } satisfies ClusterFile));
  renameSync(tmp, clusterFile);
}

const cluster = new MemoryCluster(saved.state, { clock, onChange: (state) => operation(() => persistCluster(state)) });
const store = openStore(env('DB'));
const commit = store.commit.bind(store);
store.commit = (batch) => operation(() => commit(batch));

const runId = env('RUN_ID');
const orchestrator = new Orchestrator({ cluster, clock, store, holder: 'crash-test-orchestrator', newRunId: () => runId });
const plan = parsePlan({ cluster: 'crashy', concurrency: 2, maxFailures: 1, drainTimeoutSeconds: 300, readyTimeoutSeconds: 600 });

const handle = store.getRun(runId)
  ? await orchestrator.resume(runId)
  : await orchestrator.start({ plan, requestedBy: 'crash-test', triggerId: 'trigger-1', notBefore: null });

const output = await driveInVirtualTime(handle, clock, {
  // The cluster's clock is part of the world: it must not go back when the orchestrator restarts.
  onTick: () => persistCluster(cluster.state as MemoryClusterState),
});
store.close();
writeSync(1, `${JSON.stringify({ ops, output })}\n`);
