/**
 * The durable journal: turns what the running machines do into store commits, so a run survives the orchestrator
 * dying at any instant.
 *
 * - Every machine transition (fleet or node) is recorded before an effect that changes the cluster runs: those
 *   effects call `flush()` first (runtime.ts); everything else is committed once the burst of transitions is over.
 * - Each machine's snapshot is its own row (`fleet`, `node-<position>`), so a node step writes well under 1 KB, not
 *   the fleet. What never changes during a run (the plan, the queue once selected, each node's policy) is stored once
 *   on the run and left out of every snapshot row; `restoreRunSnapshot` puts it back.
 * - The audit log gets one entry per step a node enters and per state the run enters (RunObserver's events, in causal
 *   order), in the same transaction as the snapshot that reflects it: after a crash, the restored state and the audit
 *   log agree.
 */
import type { AnyActorRef } from 'xstate';
import { childId, type FleetContext, type FleetOutput, type FleetTag } from '../engine/fleet.machine.ts';
import { DEADLINE_ACTOR_ID, nodeMachine, nodePolicy, type NodeContext, type NodeOutcome } from '../engine/node.machine.ts';
import type { DeadlineSnapshot } from '../engine/timers.ts';
import { EFFECTS_ACTOR_ID, NODE_EFFECTS, type EffectRequest, type EffectRunnerSnapshot } from '../engine/effect-runner.ts';
import type { Plan } from '../engine/plan.ts';
import type { AuditEntry, CommitBatch, NodeRunRecord, RunPatch, RunStatus } from '../store/types.ts';
import type { Store } from '../store/store.ts';
import type { RunEvent, RunListener } from './progress.ts';

export const FLEET_ACTOR_ID = 'fleet';
/**
 * Bumped when the machines change shape incompatibly; a snapshot from another version is migrated when a migration
 * exists (NODE_MIGRATIONS), else refused, not misread.
 * 3: a node's step deadlines are one re-armed `deadline` actor, no longer a `timer` invoke per step.
 * 4: a node's effects are run by one `effects` actor, no longer a promise actor invoked per step.
 */
export const SNAPSHOT_FORMAT = 4;

type StateValue = string | { [key: string]: StateValue };

export interface PersistedChild {
  snapshot: unknown;
  src: unknown;
  systemId?: string;
  syncSnapshot?: boolean;
}

export interface PersistedFleet {
  format: number;
  snapshot: {
    status: string;
    value: StateValue;
    context: FleetContext;
    children: Record<string, PersistedChild>;
    [key: string]: unknown;
  };
}

/** The run's status in the store, from the fleet state's tags (every state carries one of FLEET_PHASES). */
export function runStatusOf(tags: readonly FleetTag[]): RunStatus {
  const has = (tag: FleetTag) => tags.includes(tag);
  if (has('finished')) return 'done';
  if (has('cancelling')) return 'cancelling';
  if (has('blocked')) return 'blocked';
  if (has('paused') || has('waiting-for-window')) return 'paused';
  if (has('rolling')) return 'rolling';
  if (has('selecting')) return 'selecting';
  if (has('awaiting-approval')) return 'awaiting-approval';
  return 'scheduled';
}

type PendingBatch = Required<Pick<CommitBatch, 'nodeRuns' | 'deleteSnapshots' | 'audit'>> & { run: RunPatch };

const emptyBatch = (): PendingBatch => ({ run: {}, nodeRuns: [], deleteSnapshots: [], audit: [] });

export class Journal implements RunListener {
  readonly #store: Store;
  readonly #runId: string;
  #root: AnyActorRef | null = null;
  #queueStored: boolean;
  /** The fleet's queue, for the positions of nodes that never started. */
  #queue: readonly string[] = [];
  #fleetDirty = false;
  readonly #dirtyNodes = new Map<string, AnyActorRef>();
  /** Node machines whose snapshot has a row (which must be deleted when they finish). */
  readonly #persistedNodes = new Set<string>();
  #batch: PendingBatch = emptyBatch();
  #flushQueued = false;
  /** A run whose restore was refused writes nothing more: its saved state stays as it was for a later attempt. */
  #discarded = false;
  #lastAt: number;
  /** The run was blocked at its last reported state (its reason then says why). */
  #blocked = false;

  constructor(store: Store, runId: string, options: { queueStored: boolean; lastAt: number; restoredNodes?: Iterable<string> }) {
    this.#store = store;
    this.#runId = runId;
    this.#queueStored = options.queueStored;
    this.#lastAt = options.lastAt;
    for (const id of options.restoredNodes ?? []) this.#persistedNodes.add(id);
  }

  attach(root: AnyActorRef): void {
    this.#root = root;
  }

  /** Records a command or decision a person made, in the next commit. */
  audit(entry: Omit<AuditEntry, 'runId'>): void {
    this.#batch.audit.push({ ...entry, runId: this.#runId });
    this.#time(entry.at);
    this.#scheduleFlush();
  }

  event(event: RunEvent): void {
    const batch = this.#batch;
    switch (event.type) {
      case 'run.state': {
        const blocked = event.tags.includes('blocked');
        const wasBlocked = this.#blocked;
        this.#blocked = blocked;
        // A resumed run reporting the state it was saved in is not a new state.
        if (event.restored) return;
        batch.audit.push({
          at: this.#time(event.at),
          actor: 'engine',
          action: 'run.state',
          details: { from: event.from, to: event.state, ...(event.detail ? { detail: event.detail } : {}) },
        });
        batch.run.status = runStatusOf(event.tags);
        // While blocked, the run's reason says why (status, /patch status); it is cleared when the run goes on. Halting
        // and finishing set a reason of their own.
        if (blocked) batch.run.reason = event.detail;
        else if (wasBlocked && !event.tags.includes('halting') && !event.tags.includes('finished')) batch.run.reason = null;
        break;
      }
      case 'node.step':
        if (event.restored) return;
        batch.audit.push({ at: this.#time(event.at), actor: 'engine', action: 'node.step', node: event.node, details: { step: event.step } });
        // The node's row says when it started and how it ended; the step it is in lives in the audit log (node.step),
        // which is written anyway: updating the row at every step too would cost a write per step for nothing.
        if (event.step === 'preflight') {
          batch.nodeRuns.push({ ...emptyNodeRun(event.node, event.position), phase: 'started', result: 'in-progress', startedAt: event.startedAt });
        }
        break;
      case 'node.finished':
        this.#nodeFinished(event.position, event.outcome);
        break;
      case 'run.finished':
        this.#runFinished(event.output, this.#time(event.at));
        break;
    }
    this.#scheduleFlush();
  }

  fleetChanged(context: FleetContext): void {
    this.#queue = context.queue;
    if (!this.#queueStored && context.queue.length > 0) {
      this.#queueStored = true;
      this.#batch.run.queue = context.queue;
      context.queue.forEach((name, position) => this.#batch.nodeRuns.push({ ...emptyNodeRun(name, position), phase: 'queued' }));
    }
    this.#fleetDirty = true;
    this.#scheduleFlush();
  }

  nodeChanged(ref: AnyActorRef): void {
    this.#dirtyNodes.set(ref.id, ref);
    this.#scheduleFlush();
  }

  #nodeFinished(position: number, outcome: NodeOutcome): void {
    const actorId = childId(position);
    this.#batch.nodeRuns.push({
      node: outcome.node,
      position,
      phase: outcome.error?.step ?? 'done',
      result: outcome.result,
      errorCode: outcome.error?.code ?? null,
      errorMessage: outcome.error?.message ?? outcome.note,
      report: outcome.report,
      startedAt: outcome.startedAt,
      finishedAt: outcome.finishedAt,
    });
    this.#batch.audit.push({
      at: this.#time(outcome.finishedAt),
      actor: 'engine',
      action: 'node.finished',
      node: outcome.node,
      details: {
        result: outcome.result,
        error: outcome.error,
        note: outcome.note,
        rebooted: outcome.rebooted,
        rebootPending: outcome.rebootPending,
        cordonedAtEnd: outcome.cordonedAtEnd,
        upgraded: outcome.report?.upgraded.map((p) => `${p.name} ${p.from} -> ${p.to}`) ?? [],
      },
    });
    this.#dirtyNodes.delete(actorId);
    if (this.#persistedNodes.delete(actorId)) this.#batch.deleteSnapshots.push(actorId);
  }

  #runFinished(output: FleetOutput, at: number): void {
    this.#batch.run = { ...this.#batch.run, status: 'done', outcome: output.outcome, reason: output.reason, finishedAt: at };
    for (const name of output.notStarted) {
      this.#batch.nodeRuns.push({ ...emptyNodeRun(name, this.#queue.indexOf(name)), phase: 'not-started', result: 'not-started' });
    }
    this.#batch.audit.push({
      at,
      actor: 'engine',
      action: 'run.finished',
      details: { outcome: output.outcome, reason: output.reason, tally: output.tally, notStarted: output.notStarted },
    });
    this.#batch.deleteSnapshots.push(FLEET_ACTOR_ID);
    this.#fleetDirty = false;
  }

  #time(candidate: number): number {
    this.#lastAt = Math.max(this.#lastAt, candidate);
    return this.#lastAt;
  }

  /**
   * Commits what piled up once the current burst of transitions is over (the next macrotask), so that a burst (a node
   * finishing, the next one starting) is one transaction. Effects that change the cluster do not wait for this: they
   * flush first.
   */
  #scheduleFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    setImmediate(() => {
      if (this.#flushQueued) this.flush();
    });
  }

  /**
   * Drops what was observed and ignores what comes: for a run whose restore was refused, so that the refusal leaves
   * its saved state (fleet and node rows) exactly as it was.
   */
  discard(): void {
    this.#discarded = true;
    this.#batch = emptyBatch();
    this.#dirtyNodes.clear();
    this.#fleetDirty = false;
  }

  /** Writes everything observed since the last flush in one transaction. Cheap when nothing changed. */
  flush(): void {
    this.#flushQueued = false;
    if (this.#discarded) return;
    const batch = this.#batch;
    const snapshots: { actorId: string; snapshot: unknown }[] = [];
    if (this.#fleetDirty && this.#root) {
      snapshots.push({ actorId: FLEET_ACTOR_ID, snapshot: this.#persistFleet(this.#root) });
      this.#fleetDirty = false;
    }
    for (const [id, ref] of this.#dirtyNodes) {
      snapshots.push({ actorId: id, snapshot: dehydrateNode(ref.getPersistedSnapshot()) });
      this.#persistedNodes.add(id);
    }
    this.#dirtyNodes.clear();
    const empty =
      snapshots.length === 0 &&
      batch.audit.length === 0 &&
      batch.nodeRuns.length === 0 &&
      batch.deleteSnapshots.length === 0 &&
      Object.keys(batch.run).length === 0;
    if (empty) return;
    this.#batch = emptyBatch();
    this.#store.commit({
      runId: this.#runId,
      at: this.#lastAt,
      run: batch.run,
      nodeRuns: batch.nodeRuns,
      snapshots,
      deleteSnapshots: batch.deleteSnapshots,
      audit: batch.audit,
    });
  }

  /**
   * The fleet's own snapshot without what is stored elsewhere: its queue (on the run) and its node children's
   * snapshots (their own rows). Any child never written on its own is added to this same commit.
   */
  #persistFleet(root: AnyActorRef): PersistedFleet {
    // Persist the fleet without its node children: XState would otherwise serialise every in-flight node machine on
    // each fleet transition only for us to drop them (they have rows of their own). The logic's own
    // getPersistedSnapshot is used on a copy of the snapshot whose `children` leaves them out; they are put back as
    // references that restore fills from their rows.
    const live = root.getSnapshot() as { children: Record<string, AnyActorRef> } & Record<string, unknown>;
    const others: Record<string, AnyActorRef> = {};
    const nodeIds: string[] = [];
    for (const [id, ref] of Object.entries(live.children)) {
      if (ref.src === 'nodeRun') nodeIds.push(id);
      else others[id] = ref;
    }
    const logic = (root as unknown as { logic: { getPersistedSnapshot(snapshot: unknown): unknown } }).logic;
    const context = { ...(live.context as FleetContext), queue: [], plan: null };
    const persisted = logic.getPersistedSnapshot({ ...live, children: others, context }) as PersistedFleet['snapshot'];
    for (const id of nodeIds) {
      persisted.children[id] = { snapshot: null, src: 'nodeRun' };
      const ref = live.children[id];
      if (ref && !this.#persistedNodes.has(id)) this.#dirtyNodes.set(id, ref);
    }
    return { format: SNAPSHOT_FORMAT, snapshot: persisted };
  }
}

/**
 * What a node snapshot carries that is stored elsewhere: its policy is derived from the run's plan (nodePolicy), so
 * it is left out of every node row (it is half of one) and put back on restore.
 */
function dehydrateNode(persisted: unknown): unknown {
  const snapshot = persisted as { context: NodeContext };
  return { ...snapshot, context: { ...snapshot.context, input: { ...snapshot.context.input, policy: null } } };
}

type NodeSnapshotRow = { context?: NodeContext; children?: Record<string, PersistedChild> };

/**
 * Format 2 gave each step state its own `timer` child sending STEP_TIMEOUT at the step's deadline. Format 3 has one
 * `deadline` child for the node's life: the step timer becomes that child, armed where the old one was.
 */
function nodeFromFormat2(row: NodeSnapshotRow): NodeSnapshotRow {
  const children: Record<string, PersistedChild> = {};
  let at: number | null = null;
  for (const [id, child] of Object.entries(row.children ?? {})) {
    const timer = child.src === 'timer' ? (child.snapshot as { input?: { at?: number; event?: string } } | null) : null;
    if (timer?.input?.event === 'STEP_TIMEOUT' && typeof timer.input.at === 'number') {
      at = timer.input.at;
      continue;
    }
    children[id] = child;
  }
  at ??= row.context?.deadline ?? null;
  const deadline: DeadlineSnapshot = { status: 'active', output: undefined, error: undefined, event: 'STEP_TIMEOUT', at };
  children[DEADLINE_ACTOR_ID] = { snapshot: deadline, src: 'deadline', syncSnapshot: false };
  return { ...row, children };
}

/**
 * Format 3 invoked each step's effect as a promise actor, whose persisted snapshot holds its input and, while it
 * runs, status `active`. Format 4 has one `effects` child for the node's life: an effect in flight becomes that
 * child's current request, which a restored runner runs again, as a restored promise actor did.
 */
function nodeFromFormat3(row: NodeSnapshotRow): NodeSnapshotRow {
  const children: Record<string, PersistedChild> = {};
  let current: EffectRequest | null = null;
  for (const [id, child] of Object.entries(row.children ?? {})) {
    const effect = NODE_EFFECTS.find((name) => name === child.src);
    if (effect === undefined) {
      children[id] = child;
      continue;
    }
    const promise = child.snapshot as { status?: string; input?: unknown } | null;
    if (promise?.status === 'active') current = { effect, input: promise.input };
  }
  const runner: EffectRunnerSnapshot = { status: 'active', output: undefined, error: undefined, current };
  children[EFFECTS_ACTOR_ID] = { snapshot: runner, src: 'effects', syncSnapshot: false };
  return { ...row, children };
}

/**
 * A node row as this version restores it, or why not: XState restores whatever it is given, and a node without its
 * effect runner or deadline, or whose runner runs another effect than its state asked for, would hang or take a
 * result meant for another step (a database edited by hand, or written by a broken build).
 */
function checkNodeRow(id: string, row: NodeSnapshotRow & { value?: unknown; status?: unknown }): void {
  const fail = (why: string): never => {
    throw new SnapshotError(`the snapshot of ${id} ${why}`);
  };
  if (row.status !== 'active') fail(`has status ${JSON.stringify(row.status)}, not "active"`);
  const children = row.children ?? {};
  const deadline = children[DEADLINE_ACTOR_ID];
  const timer = deadline?.snapshot as Partial<DeadlineSnapshot> | null | undefined;
  if (deadline?.src !== 'deadline' || typeof timer !== 'object' || timer === null || timer.status !== 'active' || !(timer.at === null || Number.isFinite(timer.at))) {
    fail('has no valid deadline');
  }
  const effects = children[EFFECTS_ACTOR_ID];
  const runner = effects?.snapshot as Partial<EffectRunnerSnapshot> | null | undefined;
  if (effects?.src !== 'effects' || typeof runner !== 'object' || runner === null || runner.status !== 'active' || runner.current === undefined) {
    fail('has no valid effect runner');
  }
  const current = runner!.current;
  if (current !== null && (typeof current !== 'object' || !NODE_EFFECTS.includes(current.effect) || !('input' in current))) {
    fail(`runs an unknown effect (${JSON.stringify((current as { effect?: unknown } | null)?.effect)})`);
  }
  let asked: string | undefined;
  try {
    asked = stateNodesOf(row.value).map((node) => (node.meta as { effect?: string } | undefined)?.effect).find((effect) => effect !== undefined);
  } catch {
    fail(`is in a state this version does not have (${JSON.stringify(row.value)})`);
  }
  if ((current?.effect ?? undefined) !== asked) {
    fail(`runs ${current?.effect ?? 'no effect'} where its state (${JSON.stringify(row.value)}) runs ${asked ?? 'none'}`);
  }
}

/** The node machine's state nodes a state value names (throws for a state it does not have). */
function stateNodesOf(value: unknown, path = nodeMachine.id): Array<{ meta?: unknown }> {
  if (typeof value === 'string') return [nodeMachine.getStateNodeById(`${path}.${value}`)];
  const entries = typeof value === 'object' && value !== null ? Object.entries(value) : [];
  if (entries.length !== 1) throw new Error('not a state value');
  const [key, child] = entries[0]!;
  return [nodeMachine.getStateNodeById(`${path}.${key}`), ...stateNodesOf(child, `${path}.${key}`)];
}

/** How a node row saved under format N becomes one of format N + 1; applied in turn up to this format. */
const NODE_MIGRATIONS: ReadonlyMap<number, (row: NodeSnapshotRow) => NodeSnapshotRow> = new Map([
  [2, nodeFromFormat2],
  [3, nodeFromFormat3],
]);

/** The migration from `format` to this format, or undefined when some step of it is missing. */
function migrationFrom(format: number): ((row: NodeSnapshotRow) => NodeSnapshotRow) | undefined {
  const steps: Array<(row: NodeSnapshotRow) => NodeSnapshotRow> = [];
  for (let f = format; f < SNAPSHOT_FORMAT; f++) {
    const step = NODE_MIGRATIONS.get(f);
    if (step === undefined) return undefined;
    steps.push(step);
  }
  return (row) => steps.reduce((migrated, step) => step(migrated), row);
}

export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
}

/**
 * Rebuilds the persisted fleet snapshot XState can restore: the fleet row plus what the journal keeps apart (the
 * queue and plan on the run, each node machine in its own row, the node policy derived from the plan).
 */
export function restoreRunSnapshot(input: {
  persisted: PersistedFleet;
  plan: Plan;
  queue: string[] | null;
  snapshots: Map<string, unknown>;
}): PersistedFleet['snapshot'] {
  const { persisted, plan } = input;
  const migrate = Number.isInteger(persisted.format) && persisted.format <= SNAPSHOT_FORMAT ? migrationFrom(persisted.format) : undefined;
  if (migrate === undefined || typeof persisted.snapshot !== 'object' || persisted.snapshot === null) {
    throw new SnapshotError(`snapshot format ${String(persisted.format)}, this version reads formats ${[...NODE_MIGRATIONS.keys(), SNAPSHOT_FORMAT].join(', ')}`);
  }
  const snapshots = new Map([...input.snapshots].map(([id, row]) => [id, row && typeof row === 'object' ? migrate(row as NodeSnapshotRow) : row]));
  const policy = nodePolicy(plan);
  const children: PersistedFleet['snapshot']['children'] = {};
  for (const [id, child] of Object.entries(persisted.snapshot.children ?? {})) {
    if (child.src !== 'nodeRun') {
      children[id] = child;
      continue;
    }
    const own = snapshots.get(id) as { context?: NodeContext } | undefined;
    if (own?.context === undefined) throw new SnapshotError(`the snapshot of ${id} is missing`);
    checkNodeRow(id, own);
    // Each node machine is the one its position in the queue names: another node's would patch what was not selected.
    const queued = input.queue?.[Number(id.slice('node-'.length))];
    if (input.queue !== null && own.context.input?.node !== queued) {
      throw new SnapshotError(`the snapshot of ${id} is of node ${JSON.stringify(own.context.input?.node)}, but the run's queue has ${JSON.stringify(queued)} there`);
    }
    children[id] = { ...child, snapshot: { ...own, context: { ...own.context, input: { ...own.context.input, policy } } } };
  }
  const context = { ...persisted.snapshot.context, queue: input.queue ?? [], plan };
  return { ...persisted.snapshot, context, children };
}

function emptyNodeRun(node: string, position: number): Omit<NodeRunRecord, 'runId' | 'updatedAt'> {
  return {
    node,
    position,
    phase: 'queued',
    result: 'pending',
    errorCode: null,
    errorMessage: null,
    report: null,
    startedAt: null,
    finishedAt: null,
  };
}
