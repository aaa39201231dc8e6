import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, StoreError } from '../../src/store/index.ts';
import { tempStore } from '../helpers/scratch.ts';
import type { Decision, DecisionResult, Store } from '../../src/store/index.ts';

let dbPath: string;
let store: Store;
let cleanup: () => void;
beforeEach(() => {
  ({ dbPath, store, cleanup } = tempStore());
});
afterEach(() => cleanup());

function createRun(target: Store, id: string): void {
  target.createRun({ id, cluster: 'prod', hash: 'h', plan: {}, trigger: {}, requestedBy: 'scheduler', createdAt: 1 });
}

const T1 = Date.UTC(2025, 0, 6, 9, 30);

describe('decide: the first decision on a run wins', () => {
  beforeEach(() => createRun(store, 'run-1'));

  it('records the first decision and audits it in the same write', () => {
    expect(store.decide('run-1', 'U1', 'approved', T1, 'window is fine')).toEqual({ ok: true });
    expect(store.getDecision('run-1')).toEqual({
      runId: 'run-1',
      approver: 'U1',
      decision: 'approved',
      at: T1,
      comment: 'window is fine',
    });
    expect(store.auditRows({ runId: 'run-1' }).at(-1)).toMatchObject({
      seq: 2,
      at: T1,
      actor: 'U1',
      action: 'approval.approved',
      runId: 'run-1',
      details: { comment: 'window is fine' },
    });
  });

  it.each<{ first: Decision; second: { approver: string; decision: Decision }; reason: string }>([
    { first: 'approved', second: { approver: 'U2', decision: 'rejected' }, reason: 'already approved by U1' },
    { first: 'approved', second: { approver: 'U2', decision: 'approved' }, reason: 'already approved by U1' },
    { first: 'approved', second: { approver: 'U1', decision: 'approved' }, reason: 'already approved by U1' },
    { first: 'rejected', second: { approver: 'U2', decision: 'approved' }, reason: 'already rejected by U1' },
  ])('after U1 $first, $second.approver $second.decision is refused', ({ first, second, reason }) => {
    store.decide('run-1', 'U1', first, T1);

    const result = store.decide('run-1', second.approver, second.decision, T1 + 60_000);

    expect(result).toEqual({
      ok: false,
      reason: `${reason} at ${new Date(T1).toISOString()}`,
      decidedBy: 'U1',
      decision: first,
    });
    expect(store.getDecision('run-1')).toMatchObject({ approver: 'U1', decision: first, at: T1 });
    expect(store.auditRows({ runId: 'run-1' }).map((row) => row.action)).toEqual([
      'run.created',
      `approval.${first}`,
    ]);
  });

  it('has no decision for an undecided run', () => {
    expect(store.getDecision('run-1')).toBeNull();
  });

  it('refuses a decision on an unknown run', () => {
    expect(() => store.decide('ghost', 'U1', 'approved', T1)).toThrow(
      expect.objectContaining({ code: 'RUN_NOT_FOUND' }) as unknown as StoreError,
    );
  });

  it('holds across two connections to the same file', () => {
    const other = openStore(dbPath);
    try {
      expect(other.decide('run-1', 'U1', 'approved', T1)).toEqual({ ok: true });
      expect(store.decide('run-1', 'U2', 'rejected', T1 + 1)).toMatchObject({ ok: false, decidedBy: 'U1' });
    } finally {
      other.close();
    }
  });
});

/**
 * Worker source, evaluated as a script. Each worker opens its own Store on the file; before each run, all workers
 * meet at a barrier and then decide that run at once, so every run is a fresh race between the connections.
 */
const RACER = `
(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { openStore } = await import(workerData.storeModule);
  const store = openStore(workerData.dbPath);
  const arrived = new Int32Array(workerData.barrier);
  const barrier = (target) => {
    if (Atomics.add(arrived, 0, 1) + 1 === target) Atomics.notify(arrived, 0);
    for (let seen; (seen = Atomics.load(arrived, 0)) < target; ) Atomics.wait(arrived, 0, seen, 10);
  };
  const results = workerData.runIds.map((runId, index) => {
    barrier((index + 1) * workerData.racers);
    return store.decide(runId, workerData.approver, workerData.decision, 1000 + index);
  });
  store.close();
  parentPort.postMessage(results);
})();
`;

function race(runIds: string[], racers: { approver: string; decision: Decision }[]): Promise<DecisionResult[][]> {
  const barrier = new SharedArrayBuffer(4);
  const storeModule = new URL('../../src/store/index.ts', import.meta.url).href;
  return Promise.all(
    racers.map(
      ({ approver, decision }) =>
        new Promise<DecisionResult[]>((resolve, reject) => {
          const worker = new Worker(RACER, {
            eval: true,
            workerData: { storeModule, dbPath, runIds, approver, decision, barrier, racers: racers.length },
          });
          worker.once('error', reject);
          worker.once('message', resolve);
        }),
    ),
  );
}

describe('decide under a real race between connections on separate threads', () => {
  it('lets exactly one of two connections win each run, and keeps the audit chain intact', async () => {
    const runIds = Array.from({ length: 100 }, (_, index) => `run-${index}`);
    for (const id of runIds) createRun(store, id);
    const racers: { approver: string; decision: Decision }[] = [
      { approver: 'U1', decision: 'approved' },
      { approver: 'U2', decision: 'rejected' },
    ];

    const results = await race(runIds, racers);

    runIds.forEach((runId, index) => {
      const outcomes = results.map((racerResults) => racerResults[index]);
      expect(outcomes.filter((outcome) => outcome?.ok === true), runId).toHaveLength(1);
      const winner = racers.find((_, racer) => outcomes[racer]?.ok === true);
      expect(store.getDecision(runId), runId).toMatchObject({ ...winner });
      for (const outcome of outcomes) {
        if (outcome?.ok === false) expect(outcome.decidedBy, runId).toBe(winner?.approver);
      }
    });
    const approvalsAudited = store.auditRows().filter((row) => row.action.startsWith('approval.'));
    expect(approvalsAudited).toHaveLength(runIds.length);
    expect(store.verifyAudit()).toMatchObject({ ok: true, problems: [] });
  });
});
