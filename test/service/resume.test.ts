/**
 * Resuming a run in the same process after a clean detach, and refusing to resume what cannot be resumed, clearly and
 * without touching the cluster.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MemoryCluster, type MemoryNodeSpec } from '../../src/cluster/memory.ts';
import { VirtualClock } from '../../src/engine/clock.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { driveInVirtualTime, settle } from '../../src/service/drive.ts';
import { holderIdentity } from '../../src/service/holder.ts';
import { Orchestrator, OrchestratorError } from '../../src/service/orchestrator.ts';
import { openStore } from '../../src/store/index.ts';
import { StoreError } from '../../src/store/errors.ts';
import { T0 } from '../helpers/fixtures.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('resume');

const NODES: MemoryNodeSpec[] = [
  { name: 'cp-1', role: 'control-plane' },
  { name: 'kernel', behaviour: { report: { rebootRequired: true, rebootPackages: ['linux-image'] } } },
  { name: 'w-1' },
  { name: 'w-2' },
];

/** Starts a run and detaches it after `minutes` of virtual time, as a process shutdown would. */
async function interruptedRun(minutes: number) {
  const db = join(scratch(), 'pp.db');
  const clock = new VirtualClock(T0);
  const cluster = MemoryCluster.create('test', NODES, { clock });
  const store = openStore(db);
  const first = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-a', newRunId: () => 'run-1' });
  const handle = await first.start({ plan: parsePlan({ cluster: 'test', concurrency: 2 }), requestedBy: 'alice', notBefore: null });
  await driveInVirtualTime(handle, clock, { until: T0 + minutes * 60_000 });
  handle.detach();
  await expect(handle.result).rejects.toThrow(/detached/);
  return { db, clock, cluster, store };
}

/** Every snapshot row as stored, to compare before and after a refused resume. */
function snapshotRows(db: string) {
  const raw = new Database(db);
  try {
    return raw.prepare('SELECT actor_id, snapshot_json FROM snapshots ORDER BY actor_id').all();
  } finally {
    raw.close();
  }
}

function tamper(db: string, sql: string) {
  const raw = new Database(db);
  raw.prepare(sql).run();
  raw.close();
}

describe('resume', () => {
  it('picks a detached run up where it stopped and finishes it as an uninterrupted run would', async () => {
    const { clock, cluster, store } = await interruptedRun(3);
    expect(store.requireRun('run-1').status).toBe('rolling');
    const cordonedMidRun = cluster.state.nodes.filter((n) => n.unschedulable).map((n) => n.name);
    expect(cordonedMidRun.length).toBeGreaterThan(0);

    const second = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-a' });
    const output = await driveInVirtualTime(await second.resume('run-1'), clock);
    expect(output).toMatchObject({ outcome: 'succeeded', failedNodes: [], notStarted: [] });
    expect(output?.tally.patched).toBe(4);
    expect(Object.values(cluster.state.patchJobsCreated)).toEqual([1, 1, 1, 1]);
    expect(cluster.state.nodes.filter((n) => n.unschedulable)).toEqual([]);
    expect(store.verifyAudit().ok).toBe(true);
    const actions = store.auditRows({ runId: 'run-1' }).map((r) => r.action);
    expect(actions.filter((a) => a === 'run.resumed')).toHaveLength(1);
    expect(actions.filter((a) => a === 'node.finished')).toHaveLength(4);
    expect(store.requireRun('run-1')).toMatchObject({ status: 'done', outcome: 'succeeded' });
  });

  it('refuses to resume a finished run', async () => {
    const { clock, cluster, store } = await interruptedRun(3);
    const second = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-a' });
    await driveInVirtualTime(await second.resume('run-1'), clock);
    const error = await second.resume('run-1').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OrchestratorError);
    expect(error).toMatchObject({ code: 'RUN_FINISHED', message: 'run run-1 already finished (succeeded)' });
  });

  it('refuses a run whose owner is alive, naming it, and takes it over once its heartbeat is older than the lease', async () => {
    const { clock, cluster, store } = await interruptedRun(3);
    const other = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-b' });
    const error = await other.resume('run-1').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'RUN_OWNED', message: 'run run-1 is being driven by "orchestrator-a" (not a patchpilot process identity), last heard from 0 s ago' });
    clock.increment(61_000); // the detached orchestrator no longer beats nor renews its lease
    const output = await driveInVirtualTime(await other.resume('run-1'), clock);
    expect(output?.outcome).toBe('succeeded');
    const resumed = store.auditRows({ runId: 'run-1' }).find((r) => r.action === 'run.resumed');
    expect(resumed?.details).toMatchObject({ tookOverFrom: 'orchestrator-a' });
    expect(store.runOwner('run-1')).toBeNull();
  });

  it('takes a run over at once when its owner was a process of this host that is gone', async () => {
    const { clock, cluster, store } = await interruptedRun(3);
    const gone = holderIdentity({ host: hostname(), pid: 999_999, startedAt: T0, suffix: 'dead00' });
    store.claimRun('run-1', gone, clock.now(), () => true);
    const alive = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-c', pidAlive: () => true });
    await expect(alive.resume('run-1')).rejects.toMatchObject({ code: 'RUN_OWNED', message: expect.stringContaining(`process 999999 on ${hostname()}`) });
    const next = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-c', pidAlive: (pid) => pid !== 999_999 });
    // Its lease has not run out yet; the run's ownership is settled, the cluster's lease is waited for as usual.
    await expect(next.resume('run-1')).rejects.toMatchObject({ code: 'LEASE_HELD' });
    expect(store.runOwner('run-1')).toBeNull();
  });

  it('refuses, with a clear error, a run whose owner row is corrupt', async () => {
    const { db, clock, cluster, store } = await interruptedRun(3);
    tamper(db, "UPDATE run_owners SET heartbeat_at = 'yesterday' WHERE run_id = 'run-1'");
    const other = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-b' });
    await expect(other.resume('run-1')).rejects.toMatchObject({ code: 'RUN_OWNER_CORRUPT', hint: expect.stringContaining('DELETE FROM run_owners') });
  });

  it('stops driving a run another process took over while this one was stalled', async () => {
    const { clock, cluster, store } = await interruptedRun(1);
    const first = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-a' });
    const handle = await first.resume('run-1');
    store.claimRun('run-1', 'orchestrator-z', clock.now(), () => true);
    await expect(driveInVirtualTime(handle, clock)).rejects.toMatchObject({ code: 'LEASE_LOST', message: expect.stringContaining('another process took run run-1 over ("orchestrator-z"') });
  });

  it.each([
    {
      name: 'a snapshot row that is not JSON',
      sql: "UPDATE snapshots SET snapshot_json = '{\"format\": 1, \"snap' WHERE actor_id = 'fleet'",
      error: StoreError,
      code: 'SNAPSHOT_CORRUPT',
      hint: /cannot be resumed/,
    },
    {
      name: 'a snapshot written by an incompatible version',
      sql: "UPDATE snapshots SET snapshot_json = json_set(snapshot_json, '$.format', 99) WHERE actor_id = 'fleet'",
      error: OrchestratorError,
      code: 'SNAPSHOT_INCOMPATIBLE',
      hint: /start a new run/,
    },
    {
      name: 'a state this version of the machine does not have',
      sql: "UPDATE snapshots SET snapshot_json = json_set(snapshot_json, '$.snapshot.value', 'frobnicating') WHERE actor_id = 'fleet'",
      error: OrchestratorError,
      code: 'SNAPSHOT_INCOMPATIBLE',
      hint: /start a new run/,
    },
    {
      name: 'a run whose fleet failed',
      sql: "UPDATE snapshots SET snapshot_json = json_set(snapshot_json, '$.snapshot.status', 'error', '$.snapshot.error', 'boom') WHERE actor_id = 'fleet'",
      error: OrchestratorError,
      code: 'SNAPSHOT_INCOMPATIBLE',
      hint: /start a new run/,
    },
    {
      name: 'a node machine whose row is missing',
      sql: "DELETE FROM snapshots WHERE actor_id LIKE 'node-%'",
      error: OrchestratorError,
      code: 'SNAPSHOT_INCOMPATIBLE',
      hint: /start a new run/,
    },
  ])('refuses $name with a clear error and touches nothing', async ({ sql, error, code, hint }) => {
    const { db, clock, cluster, store } = await interruptedRun(3);
    tamper(db, sql);
    const rows = JSON.stringify(snapshotRows(db));
    const before = JSON.stringify(cluster.state.nodes);
    const auditBefore = store.auditRows({ limit: 10_000 }).length;
    const second = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-a' });
    const thrown = await second.resume('run-1').catch((e: unknown) => e);
    await settle();
    expect(thrown).toBeInstanceOf(error);
    expect(thrown).toMatchObject({ code });
    expect((thrown as { hint: string }).hint).toMatch(hint);
    expect(clock.nextDueAt(), 'nothing was started: no timer, no lease renewal').toBeUndefined();
    expect(JSON.stringify(cluster.state.nodes)).toBe(before);
    expect(store.auditRows({ limit: 10_000 }).length, 'nothing written to the store').toBe(auditBefore);
    expect(store.requireRun('run-1').status).toBe('rolling');
    expect(JSON.stringify(snapshotRows(db)), 'the saved rows are as they were').toBe(rows);
  });
  const set = (path: string, json: string) => `json_set(snapshot_json, '${path}', json('${json}'))`;
  // At 3 minutes, node-1 (kernel) and node-2 (w-1) are in flight, each with its effect runner running its step's effect.
  it.each([
    { name: 'no effect runner', expr: "json_remove(snapshot_json, '$.children.effects')", why: 'has no valid effect runner' },
    { name: 'an effect runner that is not an object', expr: "json_set(snapshot_json, '$.children.effects.snapshot', 'x')", why: 'has no valid effect runner' },
    { name: 'a stopped effect runner', expr: "json_set(snapshot_json, '$.children.effects.snapshot.status', 'stopped')", why: 'has no valid effect runner' },
    { name: 'an effect runner of another kind', expr: "json_set(snapshot_json, '$.children.effects.src', 'timer')", why: 'has no valid effect runner' },
    { name: 'an unknown effect', expr: set('$.children.effects.snapshot.current', '{"effect":"frobnicate","input":{}}'), why: 'runs an unknown effect ("frobnicate")' },
    { name: 'another effect than its state runs', expr: set('$.children.effects.snapshot.current', '{"effect":"uncordonNode","input":{"runId":"run-1","node":"w-1"}}'), why: 'runs uncordonNode where its state' },
    { name: 'no effect where its state runs one', expr: set('$.children.effects.snapshot.current', 'null'), why: 'runs no effect where its state' },
    { name: 'an effect where its state (a backoff) runs none', expr: set('$.value', '{"patch":"backoff"}'), why: 'where its state ({"patch":"backoff"}) runs none' },
    { name: 'no deadline', expr: "json_remove(snapshot_json, '$.children.deadline')", why: 'has no valid deadline' },
    { name: 'a node that is not active', expr: "json_set(snapshot_json, '$.status', 'done')", why: 'has status "done"' },
    { name: 'a node state this version does not have', expr: set('$.value', '{"patch":"frobnicating"}'), why: 'is in a state this version does not have' },
    { name: 'another node than its queue position', expr: set('$.context.input.node', '"ghost"'), why: 'is of node "ghost", but the run\'s queue has "w-1" there' },
  ])('refuses a node row with $name, naming it, and leaves every saved row as it was', async ({ expr, why }) => {
    const { db, clock, cluster, store } = await interruptedRun(3);
    tamper(db, `UPDATE snapshots SET snapshot_json = ${expr} WHERE actor_id = 'node-2'`);
    const rows = JSON.stringify(snapshotRows(db));
    const nodes = JSON.stringify(cluster.state.nodes);
    const auditBefore = store.auditRows({ limit: 10_000 }).length;
    const second = new Orchestrator({ cluster, clock, store, holder: 'orchestrator-a' });
    const thrown = await second.resume('run-1').catch((e: unknown) => e);
    await settle();
    expect(thrown).toBeInstanceOf(OrchestratorError);
    expect(thrown).toMatchObject({ code: 'SNAPSHOT_INCOMPATIBLE' });
    expect((thrown as Error).message).toContain('the snapshot of node-2 ');
    expect((thrown as Error).message).toContain(why);
    expect(JSON.stringify(snapshotRows(db)), 'the saved rows are as they were').toBe(rows);
    expect(JSON.stringify(cluster.state.nodes)).toBe(nodes);
    expect(store.auditRows({ limit: 10_000 }).length).toBe(auditBefore);
    expect(clock.nextDueAt(), 'nothing was started').toBeUndefined();
  });
});
