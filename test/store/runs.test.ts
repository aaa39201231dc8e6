import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreError } from '../../src/store/index.ts';
import { tempStore } from '../helpers/scratch.ts';
import type { CommitBatch, NewRun, NodeRunRecord, Store, StoreErrorCode } from '../../src/store/index.ts';

let dbPath: string;
let store: Store;
let cleanup: () => void;
beforeEach(() => {
  ({ dbPath, store, cleanup } = tempStore());
});
afterEach(() => cleanup());

function newRun(overrides: Partial<NewRun> = {}): NewRun {
  return {
    id: 'run-1',
    cluster: 'prod',
    hash: 'abc123',
    plan: { concurrency: 2, holdPackages: ['kubelet'] },
    trigger: { kind: 'slack', id: 'T1' },
    requestedBy: 'U1',
    createdAt: 1_000,
    ...overrides,
  };
}

function nodeRun(node: string, position: number, overrides: Partial<NodeRunRecord> = {}) {
  return {
    node,
    position,
    phase: 'queued',
    result: 'pending' as const,
    errorCode: null,
    errorMessage: null,
    report: null,
    startedAt: null,
    finishedAt: null,
    ...overrides,
  };
}

function expectStoreError(action: () => unknown, code: StoreErrorCode): StoreError {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StoreError);
  expect((caught as StoreError).code).toBe(code);
  return caught as StoreError;
}

describe('runs', () => {
  it('creates a scheduled run and audits run.created in the same write', () => {
    const created = store.createRun(newRun());

    expect(created).toEqual({
      ...newRun(),
      status: 'scheduled',
      outcome: null,
      reason: null,
      queue: null,
      updatedAt: 1_000,
      finishedAt: null,
    });
    expect(store.getRun('run-1')).toEqual(created);
    expect(store.auditRows()).toMatchObject([
      { seq: 1, at: 1_000, actor: 'U1', action: 'run.created', runId: 'run-1', details: { cluster: 'prod' } },
    ]);
  });

  it('refuses a duplicate id with RUN_EXISTS and writes nothing', () => {
    store.createRun(newRun());
    expectStoreError(() => store.createRun(newRun({ cluster: 'staging' })), 'RUN_EXISTS');
    expect(store.requireRun('run-1').cluster).toBe('prod');
    expect(store.auditRows()).toHaveLength(1);
  });

  it('returns null for an unknown run, and requireRun explains how to list runs', () => {
    expect(store.getRun('nope')).toBeNull();
    const error = expectStoreError(() => store.requireRun('nope'), 'RUN_NOT_FOUND');
    expect(error.message).toContain('nope');
    expect(error.hint).toContain('patchpilot runs');
  });

  describe('listRuns', () => {
    beforeEach(() => {
      store.createRun(newRun({ id: 'a', cluster: 'prod', createdAt: 1 }));
      store.createRun(newRun({ id: 'b', cluster: 'staging', createdAt: 2 }));
      store.createRun(newRun({ id: 'c', cluster: 'prod', createdAt: 3 }));
      store.createRun(newRun({ id: 'd', cluster: 'prod', createdAt: 4 }));
      store.commit({ runId: 'c', at: 10, run: { status: 'done', outcome: 'succeeded', finishedAt: 10 } });
    });

    it.each([
      { opts: undefined, ids: ['d', 'c', 'b', 'a'] },
      { opts: { cluster: 'prod' }, ids: ['d', 'c', 'a'] },
      { opts: { active: true }, ids: ['d', 'b', 'a'] },
      { opts: { cluster: 'prod', active: true }, ids: ['d', 'a'] },
      { opts: { limit: 2 }, ids: ['d', 'c'] },
      { opts: { cluster: 'prod', active: true, limit: 1 }, ids: ['d'] },
      { opts: { cluster: 'dev' }, ids: [] },
    ])('$opts → $ids (newest first)', ({ opts, ids }) => {
      expect(store.listRuns(opts).map((run) => run.id)).toEqual(ids);
    });
  });
});

describe('commit', () => {
  beforeEach(() => {
    store.createRun(newRun());
  });

  it('applies a run patch: given fields change, absent ones stay, null clears, updatedAt is the batch time', () => {
    store.commit({ runId: 'run-1', at: 2_000, run: { status: 'rolling', queue: ['n1', 'n2'], reason: 'window open' } });
    store.commit({ runId: 'run-1', at: 3_000, run: { status: 'done', outcome: 'partial', finishedAt: 3_000 } });
    expect(store.requireRun('run-1')).toMatchObject({
      status: 'done',
      outcome: 'partial',
      reason: 'window open',
      queue: ['n1', 'n2'],
      updatedAt: 3_000,
      finishedAt: 3_000,
    });

    store.commit({ runId: 'run-1', at: 4_000, run: { outcome: null, reason: null, finishedAt: null } });
    expect(store.requireRun('run-1')).toMatchObject({
      status: 'done',
      outcome: null,
      reason: null,
      queue: ['n1', 'n2'],
      updatedAt: 4_000,
      finishedAt: null,
    });
  });

  it('refuses an unknown run with RUN_NOT_FOUND and writes nothing', () => {
    expectStoreError(
      () =>
        store.commit({
          runId: 'ghost',
          at: 2_000,
          snapshots: [{ actorId: 'fleet', snapshot: {} }],
          audit: [{ at: 2_000, actor: 'engine', action: 'run.state' }],
        }),
      'RUN_NOT_FOUND',
    );
    expect(store.auditRows()).toHaveLength(1);
    expect(store.loadSnapshots('ghost').size).toBe(0);
  });

  it('upserts node runs and returns them by position', () => {
    store.commit({ runId: 'run-1', at: 2_000, nodeRuns: [nodeRun('node-b', 1), nodeRun('node-a', 0)] });
    store.commit({
      runId: 'run-1',
      at: 3_000,
      nodeRuns: [
        nodeRun('node-b', 1, {
          phase: 'rejoin',
          result: 'failed',
          errorCode: 'REBOOT_TIMEOUT',
          errorMessage: 'node did not come back',
          report: { packages: ['openssl'], rebooted: true },
          startedAt: 2_500,
          finishedAt: 3_000,
        }),
      ],
    });

    expect(store.getNodeRuns('run-1')).toEqual([
      { ...nodeRun('node-a', 0), runId: 'run-1', updatedAt: 2_000 },
      {
        runId: 'run-1',
        node: 'node-b',
        position: 1,
        phase: 'rejoin',
        result: 'failed',
        errorCode: 'REBOOT_TIMEOUT',
        errorMessage: 'node did not come back',
        report: { packages: ['openssl'], rebooted: true },
        startedAt: 2_500,
        finishedAt: 3_000,
        updatedAt: 3_000,
      },
    ]);
  });

  it('appends audit entries in order, defaulting their run to the batch run', () => {
    store.commit({
      runId: 'run-1',
      at: 2_000,
      audit: [
        { at: 2_000, actor: 'engine', action: 'run.state', details: { to: 'rolling' } },
        { at: 2_000, actor: 'engine', action: 'node.step', node: 'node-a', details: { step: 'drain' } },
        { at: 2_000, actor: 'scheduler', action: 'tick', runId: null },
      ],
    });
    expect(store.auditRows({ afterSeq: 1 })).toMatchObject([
      { seq: 2, action: 'run.state', runId: 'run-1', node: null },
      { seq: 3, action: 'node.step', runId: 'run-1', node: 'node-a' },
      { seq: 4, action: 'tick', runId: null },
    ]);
    expect(store.verifyAudit().ok).toBe(true);
  });

  describe('atomicity: a batch that fails part-way leaves nothing written', () => {
    it.each([
      {
        failure: 'the audit insert violates NOT NULL',
        badEntry: { at: null as unknown as number, actor: 'engine', action: 'node.step' },
      },
      {
        failure: 'the audit insert is aborted by the database',
        badEntry: { at: 2_000, actor: 'engine', action: 'boom' },
        sabotage: `CREATE TRIGGER sabotage BEFORE INSERT ON audit WHEN NEW.action = 'boom'
                   BEGIN SELECT RAISE(ABORT, 'simulated failure'); END`,
      },
      {
        failure: 'the audit details cannot be serialized',
        badEntry: { at: 2_000, actor: 'engine', action: 'node.step', details: { size: 10n } },
      },
    ])('when $failure', ({ badEntry, sabotage }) => {
      if (sabotage !== undefined) {
        const raw = new Database(dbPath);
        raw.exec(sabotage);
        raw.close();
      }
      store.commit({
        runId: 'run-1',
        at: 1_500,
        nodeRuns: [nodeRun('node-a', 0)],
        snapshots: [{ actorId: 'fleet', snapshot: { step: 0 } }, { actorId: 'node-a', snapshot: { step: 0 } }],
      });
      const before = everything();

      const failing: CommitBatch = {
        runId: 'run-1',
        at: 2_000,
        run: { status: 'rolling', queue: ['node-a'] },
        nodeRuns: [nodeRun('node-a', 0, { phase: 'drain', result: 'in-progress', startedAt: 2_000 })],
        snapshots: [{ actorId: 'fleet', snapshot: { step: 1 } }],
        deleteSnapshots: ['node-a'],
        audit: [{ at: 2_000, actor: 'engine', action: 'run.state' }, badEntry],
      };
      expect(() => store.commit(failing)).toThrow();

      expect(everything()).toEqual(before);
      expect(store.verifyAudit()).toMatchObject({ ok: true, checked: 1 });
      // The store stays usable and the chain continues from the last committed entry.
      store.commit({ runId: 'run-1', at: 3_000, audit: [{ at: 3_000, actor: 'engine', action: 'run.state' }] });
      expect(store.verifyAudit()).toMatchObject({ ok: true, checked: 2, headSeq: 2 });
    });

    function everything() {
      return {
        run: store.requireRun('run-1'),
        nodeRuns: store.getNodeRuns('run-1'),
        snapshots: store.snapshotRecords('run-1'),
        audit: store.auditRows(),
      };
    }
  });
});

describe('snapshots', () => {
  beforeEach(() => {
    store.createRun(newRun());
  });

  it('start at version 1, count up on each write, and can be deleted', () => {
    store.commit({ runId: 'run-1', at: 2_000, snapshots: [{ actorId: 'fleet', snapshot: { value: 'selecting' } }] });
    store.commit({
      runId: 'run-1',
      at: 3_000,
      snapshots: [
        { actorId: 'fleet', snapshot: { value: 'rolling' } },
        { actorId: 'node-a', snapshot: { value: 'drain' } },
      ],
    });
    expect(store.snapshotRecords('run-1')).toEqual([
      { actorId: 'fleet', snapshot: { value: 'rolling' }, version: 2, updatedAt: 3_000 },
      { actorId: 'node-a', snapshot: { value: 'drain' }, version: 1, updatedAt: 3_000 },
    ]);

    store.commit({ runId: 'run-1', at: 4_000, deleteSnapshots: ['node-a'] });
    expect(store.loadSnapshots('run-1')).toEqual(new Map([['fleet', { value: 'rolling' }]]));
  });

  it('are kept per run', () => {
    store.createRun(newRun({ id: 'run-2' }));
    store.commit({ runId: 'run-1', at: 2_000, snapshots: [{ actorId: 'fleet', snapshot: 1 }] });
    store.commit({ runId: 'run-2', at: 2_000, snapshots: [{ actorId: 'fleet', snapshot: 2 }] });
    store.commit({ runId: 'run-2', at: 3_000, deleteSnapshots: ['fleet'] });
    expect(store.loadSnapshots('run-1')).toEqual(new Map([['fleet', 1]]));
    expect(store.loadSnapshots('run-2').size).toBe(0);
  });

  it('refuses to load a corrupt snapshot, naming the run and actor and saying the run cannot be resumed', () => {
    store.commit({ runId: 'run-1', at: 2_000, snapshots: [{ actorId: 'node-a', snapshot: { value: 'drain' } }] });
    const raw = new Database(dbPath);
    raw.prepare("UPDATE snapshots SET snapshot_json = '{\"value\": \"dr' WHERE actor_id = 'node-a'").run();
    raw.close();

    const error = expectStoreError(() => store.loadSnapshots('run-1'), 'SNAPSHOT_CORRUPT');
    expect(error.message).toContain('run-1');
    expect(error.message).toContain('node-a');
    expect(error.hint).toMatch(/cannot be resumed/);
    expect(error.hint).toMatch(/labels and annotations/);
    expect(error.cause).toBeInstanceOf(SyntaxError);
  });
});
