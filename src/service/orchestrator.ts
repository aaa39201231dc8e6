/**
 * The orchestrator: the one service module the CLI and the bot use. It starts runs, resumes them from the store after
 * a crash, takes operators' commands (approve, pause, resume, cancel), holds the cluster's lease, and reports progress.
 */
import { randomUUID } from 'node:crypto';
import { createActor, type Actor } from 'xstate';
import type { ClusterNode, ClusterPort } from '../cluster/port.ts';
import type { Clock } from '../engine/clock.ts';
import { approvalVerdict, cancelVerdict, rejectionVerdict, type FleetEvent, type FleetInput, type FleetOutput } from '../engine/fleet.machine.ts';
import { parsePlan, type Plan } from '../engine/plan.ts';
import { deriveRunStart } from '../engine/run-start.ts';
import { selectForRun, type Selection } from '../engine/selection.ts';
import type { Store } from '../store/store.ts';
import type { AlertSource } from './prometheus.ts';
import type { RunOwner, RunRecord } from '../store/types.ts';
import { hostname } from 'node:os';
import { clusterEffects, nodeViews } from './effects.ts';
import { describeHolder, isProcessAlive, parseHolder, processHolder } from './holder.ts';
import { fencedCluster, LeaseKeeper, type LeaseLoss } from './lease-keeper.ts';
import { FLEET_ACTOR_ID, Journal, restoreRunSnapshot, type PersistedFleet } from './journal.ts';
import { RunObserver, stateString, type RunEvent, type RunListener } from './progress.ts';
import { provideFleetMachine, type ProvidedFleetMachine } from './runtime.ts';

export type { RunEvent } from './progress.ts';

export type CommandType = 'APPROVE' | 'REJECT' | 'PAUSE' | 'RESUME' | 'CANCEL';

export interface Command {
  type: CommandType;
  by: string;
  reason?: string;
  /** For APPROVE, REJECT and CANCEL: the plan's approver entries (groups) `by` belongs to; `decide` fills it through the resolver. */
  memberOf?: readonly string[];
}

/**
 * Which of `entries` (a plan's approvers that are not `user` itself: user groups) `user` belongs to. Injected by the
 * front end that knows what a group is (the bot: Slack user groups); the engine decides with the answer.
 */
export type MembershipResolver = (user: string, entries: readonly string[]) => Promise<readonly string[]>;

export type CommandResult = { ok: true; message: string } | { ok: false; message: string };

export type OrchestratorErrorCode = 'LEASE_HELD' | 'LEASE_LOST' | 'RUN_FINISHED' | 'SNAPSHOT_INCOMPATIBLE' | 'NO_STORE' | 'RUN_OWNED';

export class OrchestratorError extends Error {
  override readonly name = 'OrchestratorError';
  readonly code: OrchestratorErrorCode;
  readonly hint: string;

  constructor(code: OrchestratorErrorCode, message: string, hint: string) {
    super(message);
    this.code = code;
    this.hint = hint;
  }
}

export interface OrchestratorOptions {
  cluster: ClusterPort;
  clock: Clock;
  /** Without a store a run lives in memory only: nothing to resume after a crash, no audit log. */
  store?: Store | null;
  /**
   * Lease holder identity: one per process (host, pid, start time, random suffix; src/service/holder.ts), never per
   * host, or two processes on one machine would both believe they hold the cluster.
   */
  holder?: string;
  leaseSeconds?: number;
  /**
   * Given: a run waits for a held lease instead of being refused, and this hears who holds it each time it asks
   * (`patchpilot run --wait`). Absent: a held lease refuses the run at once (LEASE_HELD).
   */
  waitForLease?: (refusal: LeaseRefusal) => void;
  newRunId?: (at: number) => string;
  onEvent?: (event: RunEvent) => void;
  /** Where the blockers learn which alerts fire (default: the plan's Prometheus over HTTP; the simulator's faults). */
  alerts?: AlertSource;
  /** Resolves group approvers for `decide`; without one, only approvers named one by one count. */
  membership?: MembershipResolver;
  /**
   * The time of run ownership heartbeats, which other processes read (default: the clock's now()). A run in virtual
   * time that other processes may also open (demo) passes Date.now: a process is alive or not in real time.
   */
  ownerNow?: () => number;
  /** Whether a process of this host is running (default: process.kill(pid, 0)); injected by tests. */
  pidAlive?: (pid: number) => boolean;
}

export interface StartRequest {
  plan: Plan;
  requestedBy: string;
  /** Identifies the trigger (each on-demand click or scheduled fire is new); it is hashed into the version hash. */
  triggerId?: string;
  /**
   * Earliest start. Omitted: from the plan's trigger (deriveRunStart: on demand, its notBefore or at once; a
   * schedule, its next fire time; on boot, at once). `null`: start now.
   */
  notBefore?: number | null;
}

/** A run as `preview` finds it: a StartRequest with its trigger settled, so `start(preview)` starts that very run. */
export interface RunPreview extends StartRequest {
  triggerId: string;
  notBefore: number | null;
  /** The version hash the run patches to (its nodes' label value once patched). */
  hash: string;
  /** The nodes the run would patch, in order, and those it leaves out. */
  selection: Selection;
  /** The cluster's nodes as this preview read them (`run --dry-run` shows their state beside the selection). */
  nodes: ClusterNode[];
}

type FleetActor = Actor<ProvidedFleetMachine>;

/** Who holds a cluster we asked for, for people: the holder, since when, and until when unless it renews. */
export interface LeaseRefusal {
  cluster: string;
  holder: string;
  since: number | null;
  expiresAt: number;
  problem: string | null;
}

export function describeRefusal(refusal: LeaseRefusal): string {
  const since = refusal.since ? ` since ${new Date(refusal.since).toISOString()}` : '';
  const problem = refusal.problem ? ` (${refusal.problem})` : '';
  return `cluster ${refusal.cluster} is held by another orchestrator, ${describeHolder(refusal.holder)}${since}; its lease runs until ${new Date(refusal.expiresAt).toISOString()} unless it renews it${problem}`;
}

export class RunHandle {
  readonly runId: string;
  readonly actor: FleetActor;
  /** Resolves with the run's output when it finishes; rejects if the handle is detached first. */
  readonly result: Promise<FleetOutput>;
  readonly #detach: () => void;
  readonly #command: (command: Command) => CommandResult;

  constructor(runId: string, actor: FleetActor, result: Promise<FleetOutput>, detach: () => void, command: (c: Command) => CommandResult) {
    this.runId = runId;
    this.actor = actor;
    this.result = result;
    this.#detach = detach;
    this.#command = command;
  }

  get state(): string {
    return stateString(this.actor.getSnapshot().value as never);
  }

  send(command: Command): CommandResult {
    return this.#command(command);
  }

  /** Stops driving the run without finishing it (shutdown); its state stays in the store for `resume`. */
  detach(): void {
    this.#detach();
  }
}

export class RunDetachedError extends Error {
  override readonly name = 'RunDetachedError';
}


export class Orchestrator {
  readonly #cluster: ClusterPort;
  readonly #clock: Clock;
  readonly #store: Store | null;
  readonly #holder: string;
  readonly #leaseSeconds: number;
  readonly #newRunId: (at: number) => string;
  readonly #onEvent: ((event: RunEvent) => void) | undefined;
  readonly #waitForLease: ((refusal: LeaseRefusal) => void) | undefined;
  readonly #alerts: AlertSource | undefined;
  readonly #membership: MembershipResolver | undefined;
  readonly #ownerNow: () => number;
  readonly #pidAlive: (pid: number) => boolean;
  readonly #active = new Map<string, RunHandle>();
  /** The lease per cluster this orchestrator holds, and how many of its runs use it. */
  readonly #keepers = new Map<string, { keeper: LeaseKeeper; runs: number }>();
  /** The store's audit head, kept in the cluster after every write that adds audit records (see #auditAnchor). */
  readonly #anchor: { poke(): void; flush(): Promise<void> };

  constructor(options: OrchestratorOptions) {
    this.#cluster = options.cluster;
    this.#clock = options.clock;
    this.#alerts = options.alerts;
    this.#store = options.store ?? null;
    this.#holder = options.holder ?? processHolder();
    this.#leaseSeconds = options.leaseSeconds ?? 60;
    this.#newRunId = options.newRunId ?? defaultRunId;
    this.#onEvent = options.onEvent;
    this.#waitForLease = options.waitForLease;
    this.#membership = options.membership;
    this.#ownerNow = options.ownerNow ?? (() => this.#clock.now());
    this.#pidAlive = options.pidAlive ?? isProcessAlive;
    this.#anchor = this.#auditAnchor();
    // Every audit record this process adds (a run's steps, the bot's commands, an approval) moves the anchor along.
    // After the store's write has returned, never inside it: the anchor is I/O and must not run in its call stack.
    this.#store?.onAuditChanged(() => queueMicrotask(() => this.#anchor.poke()));
  }

  /** This orchestrator's lease holder identity. */
  get holder(): string {
    return this.#holder;
  }

  get(runId: string): RunHandle | undefined {
    return this.#active.get(runId);
  }

  async start(request: StartRequest): Promise<RunHandle> {
    const now = this.#clock.now();
    const plan = request.plan;
    const { notBefore, triggerId, hash } = deriveRunStart(plan, now, request);
    const input: FleetInput = { runId: this.#newRunId(now), plan, hash, requestedBy: request.requestedBy, createdAt: now, notBefore };
    const { keeper } = await this.#acquireLease(plan.cluster);
    return this.#begin(input, triggerId, keeper, null);
  }

  /**
   * What `start(request)` would run now, started by nothing: the run's trigger, version hash and earliest start (the
   * one derivation, deriveRunStart), and the engine's own selection (selectForRun) from the cluster's nodes as the
   * run's listNodes effect reads them. `start(preview)` runs exactly that trigger and hash, so what an approver is
   * shown is what the run selects unless the cluster changes before it begins (it selects again then).
   */
  async preview(request: StartRequest): Promise<RunPreview> {
    const { plan, requestedBy } = request;
    const start = deriveRunStart(plan, this.#clock.now(), request);
    // The run reads its nodes under the lease generation it will hold: this orchestrator's if it holds the cluster,
    // else a new tenure's, newer than every cordon already made (a lease that changes holder gets a higher generation).
    const held = this.#keepers.get(plan.cluster);
    const generation = held && held.keeper.check() === null ? held.keeper.generation : Number.POSITIVE_INFINITY;
    const nodes = await this.#cluster.listNodes();
    return { plan, requestedBy, ...start, selection: selectForRun(plan, start.hash, nodeViews(nodes, generation)), nodes };
  }

  /** A new run in the store, claimed by this process, launched under `keeper`. */
  #begin(input: FleetInput, triggerId: string, keeper: LeaseKeeper, supersedes: string | null): RunHandle {
    const { runId, plan, createdAt: now } = input;
    this.#store?.createRun({
      id: runId,
      cluster: plan.cluster,
      hash: input.hash,
      plan,
      trigger: { id: triggerId, notBefore: input.notBefore, ...(supersedes ? { supersedes } : {}) },
      requestedBy: input.requestedBy,
      createdAt: now,
    });
    this.#claimRun(runId);
    const journal = this.#store ? new Journal(this.#store, runId, { queueStored: false, lastAt: now }) : null;
    const handle = this.#launch(input, journal, undefined, keeper);
    if (supersedes) journal?.audit({ at: now, actor: this.#holder, action: 'run.supersedes', details: { run: supersedes, generation: keeper.generation } });
    return handle;
  }

  /**
   * Picks a run up where the store left it; the engine re-reads the cluster before every step it repeats. Its saved
   * steps are trusted only if nobody but its own previous owner held the cluster since: when another orchestrator did,
   * it may have finished, adopted or failed the run's nodes, so the run is closed as superseded and a new run of the
   * same trigger starts from the cluster's own state (hash labels, cordons, Jobs), under the lease already held.
   */
  async resume(runId: string): Promise<RunHandle> {
    const store = this.#requireStore('resume a run');
    // One process per run: a run whose owner is alive is refused (whatever the lease says); a dead owner's is ours.
    // Claimed before it is read, so an owner that finishes it meanwhile cannot leave us a stale copy.
    const tookOverFrom = this.#claimRun(runId);
    let saved: SavedRun;
    try {
      saved = this.#readSavedRun(store, runId);
    } catch (err) {
      store.releaseRun(runId, this.#holder);
      throw err;
    }
    let lease: { keeper: LeaseKeeper; previousHolder: string };
    try {
      // While it waits for the lease our claim on the run is kept alive, or another process of this database would
      // take the run from a process that merely waits.
      lease = await this.#acquireLease(saved.plan.cluster, () => {
        let mine = true;
        try {
          mine = store.heartbeatRun(runId, this.#holder, this.#ownerNow());
        } catch {
          // A busy database: the next round of the wait beats again.
        }
        if (!mine) {
          throw new OrchestratorError('RUN_OWNED', `run ${runId} was taken over by ${describeOwner(store.runOwner(runId))} while this process waited for the cluster`, 'leave it to that process');
        }
      });
    } catch (err) {
      store.releaseRun(runId, this.#holder);
      throw err;
    }
    const { keeper, previousHolder } = lease;
    const now = this.#clock.now();
    const continuous = previousHolder === this.#holder || (tookOverFrom !== null && previousHolder === tookOverFrom.owner);
    if (!continuous) return this.#supersede(store, runId, saved, previousHolder, keeper);
    const { input, snapshot, run } = saved;
    // Without a fleet snapshot the run crashed between its creation and its first transition: it starts afresh.
    const journal = new Journal(store, runId, {
      queueStored: run.queue !== null,
      lastAt: Math.max(now, run.updatedAt),
      restoredNodes: snapshot ? Object.keys(snapshot.children).filter((id) => snapshot.children[id]?.src === 'nodeRun') : [],
    });
    const handle = this.#launch(input, journal, snapshot, keeper);
    journal.audit({
      at: now,
      actor: this.#holder,
      action: 'run.resumed',
      details: { state: snapshot ? stateString(snapshot.value) : 'created', generation: keeper.generation, ...(tookOverFrom ? { tookOverFrom: tookOverFrom.owner, lastHeartbeat: tookOverFrom.heartbeatAt } : {}) },
    });
    return handle;
  }

  /** The run as the store holds it, refused when it is finished or its saved state cannot be restored. */
  #readSavedRun(store: Store, runId: string): SavedRun {
    const run = store.requireRun(runId);
    if (run.status === 'done') {
      throw new OrchestratorError('RUN_FINISHED', `run ${runId} already finished (${run.outcome})`, 'start a new run instead');
    }
    const plan = parsePlan(run.plan, `plan stored with run ${runId}`);
    const trigger = run.trigger as { id?: string; notBefore?: number | null };
    const input: FleetInput = {
      runId,
      plan,
      hash: run.hash,
      requestedBy: run.requestedBy,
      createdAt: run.createdAt,
      notBefore: trigger.notBefore ?? null,
    };
    const snapshots = store.loadSnapshots(runId);
    const persisted = snapshots.get(FLEET_ACTOR_ID) as PersistedFleet | undefined;
    let snapshot: PersistedFleet['snapshot'] | undefined;
    try {
      snapshot = persisted ? restoreRunSnapshot({ persisted, plan, queue: run.queue, snapshots }) : undefined;
    } catch (err) {
      throw incompatible(runId, err);
    }
    return { run, plan, input, snapshot, triggerId: trigger.id ?? null };
  }

  /**
   * Another orchestrator held the cluster between this run's last owner and us: the run ends here (cancelled, with
   * the reason and the run that replaces it in its audit trail) and a new run of the same trigger takes over. Its
   * version hash is the old run's, so nodes either of them finished are skipped, and a cordon either of them left is
   * adopted (its generation is older than ours).
   */
  #supersede(store: Store, runId: string, saved: SavedRun, previousHolder: string, keeper: LeaseKeeper): RunHandle {
    const now = this.#clock.now();
    const successor = this.#newRunId(now);
    const heldBy = previousHolder === '' ? 'released by its last holder' : `last held by ${describeHolder(previousHolder)}`;
    const reason = `superseded by run ${successor}: another orchestrator held the cluster since this run's owner (${heldBy}); the new run finishes the trigger from the cluster's state`;
    store.commit({
      runId,
      at: Math.max(now, saved.run.updatedAt),
      run: { status: 'done', outcome: 'cancelled', reason, finishedAt: now },
      audit: [{ at: Math.max(now, saved.run.updatedAt), actor: this.#holder, action: 'run.superseded', runId, details: { by: successor, previousHolder, generation: keeper.generation } }],
    });
    store.releaseRun(runId, this.#holder);
    const { input } = saved;
    return this.#begin({ ...input, runId: successor, createdAt: now, notBefore: null }, saved.triggerId ?? `superseded-${runId}`, keeper, runId);
  }
  /** Sends an operator's command to a run this orchestrator is driving, after checking it makes sense now. */
  command(runId: string, command: Command): CommandResult {
    const handle = this.#active.get(runId);
    if (!handle) return this.#notActive(runId);
    return handle.send(command);
  }

  /** Why a command cannot reach a run: it has ended (said with its outcome), or another process drives it. */
  #notActive(runId: string): CommandResult {
    const run = this.#store?.getRun(runId);
    if (run?.status === 'done') return { ok: false, message: `run ${runId} has already ended (${run.outcome ?? 'done'}${run.reason ? `: ${run.reason}` : ''})` };
    return { ok: false, message: `run ${runId} is not active here` };
  }

  /**
   * `command`, after asking the membership resolver which of the plan's group approvers the person approving or
   * rejecting belongs to; the engine then decides. Front ends whose approvers may be groups (the bot) use this one.
   */
  async decide(runId: string, command: Command): Promise<CommandResult> {
    const handle = this.#active.get(runId);
    if (!handle) return this.#notActive(runId);
    // Only a decision rule can let someone in through a group, and only while the run waits for its decision (a
    // running run anyone may stop): asking Slack otherwise would cost a call for nothing.
    const snapshot = handle.actor.getSnapshot();
    if (!decidesByMembership(command.type) || !snapshot.hasTag('decision-open') || !this.#membership) return handle.send(command);
    const { approvers } = snapshot.context.plan.approval;
    const entries = approvers.filter((entry) => entry !== command.by);
    const memberOf = entries.length === 0 ? [] : await this.#membership(command.by, entries);
    return handle.send({ ...command, memberOf: memberOf.filter((group) => entries.includes(group)) });
  }

  #launch(
    input: FleetInput,
    journal: Journal | null,
    snapshot: PersistedFleet['snapshot'] | undefined,
    keeper: LeaseKeeper,
  ): RunHandle {
    const { runId } = input;
    const machine = provideFleetMachine({
      // Every write waits for a valid lease and carries its generation; a stale holder's cordon is finished, not skipped.
      effects: clusterEffects(fencedCluster(this.#cluster, keeper), {
        clock: this.#clock,
        ...(this.#alerts ? { alerts: this.#alerts } : {}),
        generation: () => keeper.generation,
        onAdopted: (node, from) =>
          journal?.audit({
            at: this.#clock.now(),
            actor: this.#holder,
            action: 'node.cordon-adopted',
            details: { node, fromRun: from.runId, fromGeneration: from.generation, generation: keeper.generation },
          }),
      }),
      clock: this.#clock,
      beforeEffect: () => journal?.flush(),
    });
    const anchor = this.#anchor;
    const listeners: RunListener[] = [...(journal ? [journal] : []), ...(this.#onEvent ? [{ event: this.#onEvent }] : [])];
    const observer = new RunObserver(runId, () => this.#clock.now(), listeners);
    const refuse = (err: unknown): never => {
      // Nothing of a refused restore reaches the store: the effects it launched are stopped, and the journal, which
      // would otherwise commit what it saw (the machines failing) over the saved run, writes nothing more.
      journal?.discard();
      observer.stop();
      // (Unassigned when createActor itself refused the snapshot.)
      (actor as FleetActor | undefined)?.stop();
      this.#releaseLease(input.plan.cluster);
      throw incompatible(runId, err);
    };
    let actor!: FleetActor;
    try {
      actor = createActor(machine, { input, clock: this.#clock, ...(snapshot ? { snapshot: snapshot as never } : {}) });
      journal?.attach(actor);
      observer.attach(actor, { resumed: snapshot !== undefined });
    } catch (err) {
      refuse(err);
    }
    // Without the lease another orchestrator may act on the cluster: start no more nodes until it is ours again (the
    // fence already holds back every write). Taken by another holder, it is never ours again: the run stops here,
    // saved in the store, and the new holder finishes the trigger from the cluster's own state.
    let pausedForLease = false;
    let lostTo: LeaseLoss | null = null;
    const renewal = this.#keepLease(keeper, {
      onLost: (loss) => {
        journal?.audit({ at: this.#clock.now(), actor: this.#holder, action: 'run.lease-lost', details: { reason: loss.why } });
        if (loss.takenBy !== null) {
          lostTo = loss;
          queueMicrotask(() => detach());
          return;
        }
        pausedForLease = this.#apply(handle, input, journal, { type: 'PAUSE', by: this.#holder, reason: `lease lost: ${loss.why}` }).ok;
      },
      onRegained: () => {
        journal?.audit({ at: this.#clock.now(), actor: this.#holder, action: 'run.lease-regained', details: {} });
        if (pausedForLease) this.#apply(handle, input, journal, { type: 'RESUME', by: this.#holder, reason: 'lease regained' });
        pausedForLease = false;
      },
    });
    const heartbeat = this.#heartbeat(runId, () => {
      journal?.audit({ at: this.#clock.now(), actor: this.#holder, action: 'run.owner-lost', details: {} });
      lostTo = { why: `another process took run ${runId} over (${describeOwner(this.#store?.runOwner(runId) ?? null)})`, takenBy: 'another process' };
      queueMicrotask(() => detach());
    });
    const result = new Promise<FleetOutput>((resolve, reject) => {
      actor.subscribe({
        complete: () => {
          renewal.stop();
          heartbeat.stop();
          this.#active.delete(runId);
          const snap = actor.getSnapshot();
          if (snap.status === 'done') {
            // Observers hear of the end before the inspector does; wait for it so the final commit holds the end.
            queueMicrotask(() => {
              journal?.flush();
              this.#store?.releaseRun(runId, this.#holder);
              // The final head is anchored while the lease still fences the write; then the lease is given up (one that
              // cannot be released runs out by itself; the run's result depends on neither).
              anchor.poke();
              void anchor
                .flush()
                .then(() => this.#releaseLease(input.plan.cluster))
                .finally(() => resolve(snap.output as FleetOutput));
            });
          } else {
            // Detached (a shutdown, or a crash as tests make one): the lease runs out by itself, like a crashed holder's,
            // and so does our claim on the run (its heartbeat stops), unless a new owner already has it.
            this.#releaseLease(input.plan.cluster, { keep: true });
            const state = stateString(snap.value as never);
            reject(
              lostTo
                ? new OrchestratorError(
                    'LEASE_LOST',
                    `run ${runId} stopped in state ${state}: ${lostTo.why}`,
                    'nothing more was written; the new holder finishes the trigger from the cluster (labels, cordons, Jobs), and this run stays unfinished in the database',
                  )
                : new RunDetachedError(`run ${runId} was detached in state ${state}`),
            );
          }
        },
        error: (err) => {
          renewal.stop();
          heartbeat.stop();
          this.#active.delete(runId);
          this.#releaseLease(input.plan.cluster);
          reject(err);
        },
      });
    });
    result.catch(() => {});
    const detach = () => {
      journal?.flush();
      observer.stop();
      renewal.stop();
      heartbeat.stop();
      actor.stop();
    };
    const handle = new RunHandle(runId, actor, result, detach, (command) => this.#apply(handle, input, journal, command));
    this.#active.set(runId, handle);
    try {
      actor.start();
    } catch (err) {
      this.#active.delete(runId);
      renewal.stop();
      heartbeat.stop();
      refuse(err);
    }
    if (actor.getSnapshot().status === 'error') {
      this.#active.delete(runId);
      renewal.stop();
      heartbeat.stop();
      refuse(actor.getSnapshot().error);
    }
    return handle;
  }

  #apply(handle: RunHandle, input: FleetInput, journal: Journal | null, command: Command): CommandResult {
    const at = this.#clock.now();
    const event = {
      type: command.type,
      by: command.by,
      at,
      ...(command.reason ? { reason: command.reason } : {}),
      ...(decidesByMembership(command.type) && command.memberOf?.length ? { memberOf: [...command.memberOf] } : {}),
    } as FleetEvent;
    // The machine decides what it accepts, guards (the approval and rejection rules) included; nothing here re-decides
    // it. A refusal while the run waits for a decision is explained with the rule that made it.
    const snapshot = handle.actor.getSnapshot();
    if (!snapshot.can(event)) {
      const rule = snapshot.hasTag('decision-open') ? DECISION_RULES[command.type] : undefined;
      const verdict = rule?.(input.plan, input.requestedBy, command.by, command.memberOf);
      if (verdict && !verdict.ok) return { ok: false, message: verdict.reason };
      return { ok: false, message: `run ${handle.runId} cannot take ${command.type.toLowerCase()} now: it is ${handle.state}` };
    }
    if (command.type === 'APPROVE' || command.type === 'REJECT') {
      const decision = this.#store?.decide(handle.runId, command.by, command.type === 'APPROVE' ? 'approved' : 'rejected', at, command.reason);
      if (decision && !decision.ok) return { ok: false, message: decision.reason };
    } else {
      journal?.audit({ at, actor: command.by, action: `run.${command.type.toLowerCase()}`, details: command.reason ? { reason: command.reason } : {} });
    }
    handle.actor.send(event);
    return { ok: true, message: `${command.type.toLowerCase()} accepted for run ${handle.runId} by ${command.by}` };
  }

  /**
   * Takes the cluster's lease before the run's first cluster write (or shares the one this orchestrator holds for
   * another run of the same cluster). Held by someone else: refused with who, since when and until when, or, with
   * `waitForLease`, asked again every third of the lease until it is ours.
   */
  async #acquireLease(cluster: string, whileWaiting?: () => void): Promise<{ keeper: LeaseKeeper; previousHolder: string }> {
    const held = this.#keepers.get(cluster);
    if (held && held.keeper.check() === null) {
      held.runs += 1;
      return { keeper: held.keeper, previousHolder: this.#holder };
    }
    const keeper = held?.keeper ?? new LeaseKeeper({ cluster: this.#cluster, clock: this.#clock, name: leaseName(cluster), holder: this.#holder, durationSeconds: this.#leaseSeconds });
    let previousHolder: string;
    for (;;) {
      const lease = await keeper.tryAcquire();
      if (lease.acquired) {
        previousHolder = lease.previousHolder;
        break;
      }
      const refusal: LeaseRefusal = { cluster, holder: lease.holder, since: lease.since, expiresAt: lease.expiresAt, problem: lease.problem ?? null };
      if (!this.#waitForLease) {
        throw new OrchestratorError(
          'LEASE_HELD',
          describeRefusal(refusal),
          `wait for it (patchpilot run --wait takes the cluster as soon as the lease is free or expires), or stop that process`,
        );
      }
      this.#waitForLease(refusal);
      whileWaiting?.();
      const retryIn = Math.min(Math.max(lease.expiresAt - this.#clock.now(), 50), (this.#leaseSeconds * 1000) / 3);
      await new Promise<void>((resolve) => this.#clock.setTimeout(resolve, retryIn));
    }
    this.#keepers.set(cluster, { keeper, runs: (held?.runs ?? 0) + 1 });
    // The adapter checks the fence right before each request it sends (the engine's effects wait for it earlier).
    this.#cluster.guardWrites?.(() => keeper.check());
    return { keeper, previousHolder };
  }

  /** One run less on the cluster's lease; the last one gives it up (best effort: it would expire anyway). */
  #releaseLease(cluster: string, options: { keep?: boolean } = {}): Promise<void> {
    const held = this.#keepers.get(cluster);
    if (!held) return Promise.resolve();
    held.runs -= 1;
    if (held.runs > 0) return Promise.resolve();
    this.#keepers.delete(cluster);
    this.#cluster.guardWrites?.(null);
    if (options.keep) {
      held.keeper.stop();
      return Promise.resolve();
    }
    return held.keeper.release();
  }

  /**
   * Renews the lease a third of the way through each term, on the same clock as everything else (LeaseKeeper). A
   * renewal that fails is retried sooner; once our belief in the lease has run out, or another orchestrator holds
   * it, `onLost` is told. Nothing here can reject unhandled.
   */
  #keepLease(keeper: LeaseKeeper, events: { onLost(loss: LeaseLoss): void; onRegained(): void }): { stop(): void } {
    keeper.start(events);
    return { stop: () => undefined };
  }

  /**
   * Writes the store's audit head to the cluster (ClusterPort.writeAuditAnchor), one write at a time: pokes that
   * arrive meanwhile become one more write of the then newest head. A failed write is not the run's failure: the next
   * poke tries again, and `audit verify` says how far the anchor got.
   */
  #auditAnchor(): { poke(): void; flush(): Promise<void> } {
    const store = this.#store;
    const cluster = this.#cluster;
    if (!store || !cluster.writeAuditAnchor) return { poke: () => undefined, flush: () => Promise.resolve() };
    const storeId = store.storeId();
    let writing: Promise<void> | null = null;
    let pending = false;
    const write = (): Promise<void> => {
      pending = false;
      let head;
      try {
        head = store.auditHead();
      } catch {
        return Promise.resolve();
      }
      return cluster.writeAuditAnchor!(storeId, { seq: head.seq, hash: head.hash, at: this.#clock.now() }).catch(() => undefined);
    };
    const poke = () => {
      if (writing) {
        pending = true;
        return;
      }
      writing = write().finally(() => {
        writing = null;
        if (pending) poke();
      });
    };
    const flush = async (): Promise<void> => {
      while (writing) await writing;
    };
    return { poke, flush };
  }

  /** Claims the run for this process (RUN_OWNED when a live process drives it); returns the dead owner it replaced. */
  #claimRun(runId: string): RunOwner | null {
    const store = this.#store;
    if (!store) return null;
    const now = this.#ownerNow();
    const staleMs = this.#leaseSeconds * 1000;
    const claim = store.claimRun(runId, this.#holder, now, (current) => this.#ownerGone(current, now, staleMs));
    if (claim.ok) return claim.tookOverFrom;
    throw new OrchestratorError(
      'RUN_OWNED',
      `run ${runId} is being driven by ${describeOwner(claim.owner)}, last heard from ${Math.max(0, Math.round((now - claim.owner.heartbeatAt) / 1000))} s ago`,
      `leave it to that process, or stop it: ${Math.round(staleMs / 1000)} s after its last heartbeat (or at once if its pid is gone on this host) the run can be resumed here`,
    );
  }

  #ownerGone(owner: RunOwner, now: number, staleMs: number): boolean {
    if (now - owner.heartbeatAt >= staleMs) return true;
    const parts = parseHolder(owner.owner);
    return parts !== null && parts.host === hostname() && !this.#pidAlive(parts.pid);
  }

  /** Says the run's owner is alive every third of the lease; tells `onLost` once another process owns the run. */
  #heartbeat(runId: string, onLost: () => void): { stop(): void } {
    const store = this.#store;
    if (!store) return { stop: () => undefined };
    let timer: number | undefined;
    let stopped = false;
    const beat = () => {
      if (stopped) return;
      let mine = true;
      try {
        mine = store.heartbeatRun(runId, this.#holder, this.#ownerNow());
      } catch {
        // A busy or full database: the next beat tries again; past the stale time another process may take over.
      }
      if (!mine) {
        stopped = true;
        onLost();
        return;
      }
      timer = this.#clock.setTimeout(beat, (this.#leaseSeconds * 1000) / 3);
    };
    timer = this.#clock.setTimeout(beat, (this.#leaseSeconds * 1000) / 3);
    return {
      stop: () => {
        stopped = true;
        if (timer !== undefined) this.#clock.clearTimeout(timer);
      },
    };
  }

  #requireStore(what: string): Store {
    if (!this.#store) throw new OrchestratorError('NO_STORE', `cannot ${what} without a store`, 'pass --db PATH');
    return this.#store;
  }
}

interface SavedRun {
  run: RunRecord;
  plan: Plan;
  input: FleetInput;
  snapshot: PersistedFleet['snapshot'] | undefined;
  triggerId: string | null;
}

function describeOwner(owner: RunOwner | null): string {
  return owner ? describeHolder(owner.owner) : 'nobody';
}

/** The rules that decide who may send a command while a run waits for a decision; the fleet machine's guards use them. */
const DECISION_RULES: Partial<Record<CommandType, typeof approvalVerdict>> = { APPROVE: approvalVerdict, REJECT: rejectionVerdict, CANCEL: cancelVerdict };

/** Commands whose rule may let someone in through a group, so `decide` resolves the sender's memberships first. */
function decidesByMembership(type: CommandType): boolean {
  return DECISION_RULES[type] !== undefined;
}

/** What may be a run id (ours are run-YYYYMMDD-HHMMSS-xxxxxx; the simulator's <scenario>-N): one rule for every front end. */
export function isRunId(text: string): boolean {
  return /^[\w.-]{1,128}$/.test(text);
}

export function leaseName(cluster: string): string {
  return `patchpilot-${cluster}`;
}

function defaultRunId(at: number): string {
  const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${randomUUID().slice(0, 6)}`;
}

function incompatible(runId: string, err: unknown): OrchestratorError {
  const why = err instanceof Error ? err.message : String(err);
  return new OrchestratorError(
    'SNAPSHOT_INCOMPATIBLE',
    `the saved state of run ${runId} cannot be restored (${why})`,
    'the nodes keep their labels and annotations in the cluster; start a new run, which skips nodes already patched',
  );
}
