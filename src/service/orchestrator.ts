/**
 * The orchestrator: the one service module the CLI and the bot use. It starts runs, resumes them from the store after
 * a crash, takes operators' commands (approve, pause, resume, cancel), holds the cluster's lease, and reports progress.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { ClusterPort } from '../cluster/port.ts';
import type { Clock } from '../engine/clock.ts';
import { approvalVerdict, type FleetEvent, type FleetInput, type FleetOutput } from '../engine/fleet.machine.ts';
import { versionHash } from '../engine/hash.ts';
import { parsePlan, type Plan } from '../engine/plan.ts';
import { resolveTriggerStart } from '../engine/schedule.ts';
import type { Store } from '../store/store.ts';
import type { AlertSource } from './prometheus.ts';
import { clusterEffects } from './effects.ts';
import { FLEET_ACTOR_ID, Journal, restoreRunSnapshot, type PersistedFleet } from './journal.ts';
import { RunObserver, stateString, topState, type RestoredState, type RunEvent, type RunListener } from './progress.ts';
import { provideFleetMachine, type ProvidedFleetMachine } from './runtime.ts';

export type { RunEvent } from './progress.ts';

export type CommandType = 'APPROVE' | 'REJECT' | 'PAUSE' | 'RESUME' | 'CANCEL';

export interface Command {
  type: CommandType;
  by: string;
  reason?: string;
}

export type CommandResult = { ok: true; message: string } | { ok: false; message: string };

export type OrchestratorErrorCode = 'LEASE_HELD' | 'RUN_FINISHED' | 'SNAPSHOT_INCOMPATIBLE' | 'NO_STORE';

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
  /** Lease holder identity; stable across restarts of the same orchestrator so it can resume its own runs at once. */
  holder?: string;
  leaseSeconds?: number;
  newRunId?: (at: number) => string;
  onEvent?: (event: RunEvent) => void;
  /** Where the blockers learn which alerts fire (default: the plan's Prometheus over HTTP; the simulator's faults). */
  alerts?: AlertSource;
}

export interface StartRequest {
  plan: Plan;
  requestedBy: string;
  /** Identifies the trigger (each on-demand click or scheduled fire is new); it is hashed into the version hash. */
  triggerId?: string;
  /**
   * Earliest start. Omitted: from the plan's trigger (on demand: its notBefore, or now + 10 minutes as Palette does;
   * a schedule: its next fire time; on boot: now). `null`: start now.
   */
  notBefore?: number | null;
}

type FleetActor = Actor<ProvidedFleetMachine>;

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

const ACCEPTS: Record<CommandType, readonly string[]> = {
  APPROVE: ['scheduled', 'awaitingApproval'],
  REJECT: ['scheduled', 'awaitingApproval'],
  PAUSE: ['rolling.active', 'rolling.waitingForWindow', 'rolling.gating', 'rolling.blocked', 'rolling.canarySoak'],
  RESUME: ['rolling.paused'],
  CANCEL: ['scheduled', 'awaitingApproval', 'selecting', 'prefetching', 'rolling'],
};

export class Orchestrator {
  readonly #cluster: ClusterPort;
  readonly #clock: Clock;
  readonly #store: Store | null;
  readonly #holder: string;
  readonly #leaseSeconds: number;
  readonly #newRunId: (at: number) => string;
  readonly #onEvent: ((event: RunEvent) => void) | undefined;
  readonly #alerts: AlertSource | undefined;
  readonly #active = new Map<string, RunHandle>();

  constructor(options: OrchestratorOptions) {
    this.#cluster = options.cluster;
    this.#clock = options.clock;
    this.#alerts = options.alerts;
    this.#store = options.store ?? null;
    this.#holder = options.holder ?? `patchpilot@${hostname()}`;
    this.#leaseSeconds = options.leaseSeconds ?? 60;
    this.#newRunId = options.newRunId ?? defaultRunId;
    this.#onEvent = options.onEvent;
  }

  get(runId: string): RunHandle | undefined {
    return this.#active.get(runId);
  }

  async start(request: StartRequest): Promise<RunHandle> {
    const now = this.#clock.now();
    const plan = request.plan;
    const derived = resolveTriggerStart(plan.trigger, now);
    const notBefore = request.notBefore === undefined ? derived.notBefore : request.notBefore;
    const triggerId = request.triggerId ?? derived.triggerId;
    const runId = this.#newRunId(now);
    const input: FleetInput = {
      runId,
      plan,
      hash: versionHash(plan, triggerId),
      requestedBy: request.requestedBy,
      createdAt: now,
      notBefore,
    };
    await this.#acquireLease(plan.cluster);
    this.#store?.createRun({
      id: runId,
      cluster: plan.cluster,
      hash: input.hash,
      plan,
      trigger: { id: triggerId, notBefore: input.notBefore },
      requestedBy: request.requestedBy,
      createdAt: now,
    });
    const journal = this.#store ? new Journal(this.#store, runId, { queueStored: false, lastAt: now }) : null;
    return this.#launch(input, journal, undefined, undefined);
  }

  /** Picks a run up where the store left it; the engine re-reads the cluster before every step it repeats. */
  async resume(runId: string): Promise<RunHandle> {
    const store = this.#requireStore('resume a run');
    const run = store.requireRun(runId);
    if (run.status === 'done') {
      throw new OrchestratorError('RUN_FINISHED', `run ${runId} already finished (${run.outcome})`, 'start a new run instead');
    }
    const plan = parsePlan(run.plan, `plan stored with run ${runId}`);
    const trigger = run.trigger as { notBefore?: number | null };
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
    // Everything that can refuse the run is checked before the lease is taken and anything starts.
    let snapshot: PersistedFleet['snapshot'] | undefined;
    try {
      snapshot = persisted ? restoreRunSnapshot({ persisted, plan, queue: run.queue, snapshots }) : undefined;
    } catch (err) {
      throw incompatible(runId, err);
    }
    await this.#acquireLease(plan.cluster);
    const now = this.#clock.now();
    // Without a fleet snapshot the run crashed between its creation and its first transition: it starts afresh.
    const restored = snapshot ? restoredState(snapshot) : undefined;
    const journal = new Journal(store, runId, {
      queueStored: run.queue !== null,
      lastAt: Math.max(now, run.updatedAt),
      restoredNodes: restored?.nodeSteps.keys(),
    });
    const handle = this.#launch(input, journal, snapshot, restored);
    journal.audit({ at: now, actor: this.#holder, action: 'run.resumed', details: { state: snapshot ? stateString(snapshot.value) : 'created' } });
    return handle;
  }

  /** Sends an operator's command to a run this orchestrator is driving, after checking it makes sense now. */
  command(runId: string, command: Command): CommandResult {
    const handle = this.#active.get(runId);
    if (!handle) return { ok: false, message: `run ${runId} is not active here` };
    return handle.send(command);
  }

  #launch(
    input: FleetInput,
    journal: Journal | null,
    snapshot: PersistedFleet['snapshot'] | undefined,
    restored: RestoredState | undefined,
  ): RunHandle {
    const { runId } = input;
    const machine = provideFleetMachine({
      effects: clusterEffects(this.#cluster, { clock: this.#clock, ...(this.#alerts ? { alerts: this.#alerts } : {}) }),
      clock: this.#clock,
      beforeEffect: () => journal?.flush(),
    });
    const listeners: RunListener[] = [...(journal ? [journal] : []), ...(this.#onEvent ? [{ event: this.#onEvent }] : [])];
    const observer = new RunObserver(runId, () => this.#clock.now(), listeners, restored);
    let detached = false;
    const inspect = (event: InspectionEvent) => {
      if (!detached) observer.inspect(event);
    };
    const refuse = (err: unknown): never => {
      detached = true;
      this.#cluster.releaseLease(leaseName(input.plan.cluster), this.#holder).catch(() => {});
      throw incompatible(runId, err);
    };
    let actor!: FleetActor;
    try {
      actor = createActor(machine, { input, clock: this.#clock, inspect, ...(snapshot ? { snapshot: snapshot as never } : {}) });
      journal?.attach(actor);
      observer.attach(actor);
    } catch (err) {
      refuse(err);
    }
    // Without the lease another orchestrator may act on the cluster: start no more nodes until it is ours again.
    let pausedForLease = false;
    const renewal = this.#keepLease(input.plan.cluster, {
      onLost: (why) => {
        journal?.audit({ at: this.#clock.now(), actor: this.#holder, action: 'run.lease-lost', details: { reason: why } });
        pausedForLease = this.#apply(handle, input, journal, { type: 'PAUSE', by: this.#holder, reason: `lease lost: ${why}` }).ok;
      },
      onRegained: () => {
        journal?.audit({ at: this.#clock.now(), actor: this.#holder, action: 'run.lease-regained', details: {} });
        if (pausedForLease) this.#apply(handle, input, journal, { type: 'RESUME', by: this.#holder, reason: 'lease regained' });
        pausedForLease = false;
      },
    });
    const result = new Promise<FleetOutput>((resolve, reject) => {
      actor.subscribe({
        complete: () => {
          renewal.stop();
          this.#active.delete(runId);
          const snap = actor.getSnapshot();
          if (snap.status === 'done') {
            // Observers hear of the end before the inspector does; wait for it so the final commit holds the end.
            queueMicrotask(() => {
              journal?.flush();
              // A lease that cannot be released runs out by itself; the run's result does not depend on it.
              this.#cluster
                .releaseLease(leaseName(input.plan.cluster), this.#holder)
                .catch(() => {})
                .finally(() => resolve(snap.output as FleetOutput));
            });
          } else {
            reject(new RunDetachedError(`run ${runId} was detached in state ${stateString(snap.value as never)}`));
          }
        },
        error: (err) => {
          renewal.stop();
          this.#active.delete(runId);
          reject(err);
        },
      });
    });
    result.catch(() => {});
    const detach = () => {
      journal?.flush();
      detached = true;
      renewal.stop();
      actor.stop();
    };
    const handle = new RunHandle(runId, actor, result, detach, (command) => this.#apply(handle, input, journal, command));
    this.#active.set(runId, handle);
    try {
      actor.start();
    } catch (err) {
      this.#active.delete(runId);
      renewal.stop();
      refuse(err);
    }
    if (actor.getSnapshot().status === 'error') {
      this.#active.delete(runId);
      renewal.stop();
      refuse(actor.getSnapshot().error);
    }
    return handle;
  }

  #apply(handle: RunHandle, input: FleetInput, journal: Journal | null, command: Command): CommandResult {
    const state = handle.state;
    const accepted = ACCEPTS[command.type].some((s) => state === s || state.startsWith(`${s}.`));
    if (!accepted) {
      return { ok: false, message: `run ${handle.runId} cannot take ${command.type.toLowerCase()} now: it is ${state}` };
    }
    const at = this.#clock.now();
    if (command.type === 'APPROVE' || command.type === 'REJECT') {
      if (command.type === 'APPROVE') {
        const verdict = approvalVerdict(input.plan, input.requestedBy, command.by);
        if (!verdict.ok) return { ok: false, message: verdict.reason };
      }
      const decision = this.#store?.decide(handle.runId, command.by, command.type === 'APPROVE' ? 'approved' : 'rejected', at, command.reason);
      if (decision && !decision.ok) return { ok: false, message: decision.reason };
    } else {
      journal?.audit({ at, actor: command.by, action: `run.${command.type.toLowerCase()}`, details: command.reason ? { reason: command.reason } : {} });
    }
    handle.actor.send({ type: command.type, by: command.by, at, ...(command.reason ? { reason: command.reason } : {}) } as FleetEvent);
    return { ok: true, message: `${command.type.toLowerCase()} accepted for run ${handle.runId} by ${command.by}` };
  }

  async #acquireLease(cluster: string): Promise<void> {
    const lease = await this.#cluster.acquireLease({ name: leaseName(cluster), holder: this.#holder, durationSeconds: this.#leaseSeconds });
    if (!lease.acquired) {
      throw new OrchestratorError(
        'LEASE_HELD',
        `another orchestrator (${lease.holder}) is active on cluster ${cluster}`,
        `wait until its lease expires at ${new Date(lease.expiresAt).toISOString()}, or stop it`,
      );
    }
  }

  /**
   * Renews the lease a third of the way through each term, on the same clock as everything else. A renewal that
   * fails (the API server unreachable) is retried sooner while the lease still runs; once it has run out, or another
   * orchestrator holds it, the lease is lost: `onLost` is told (the run stops starting nodes), and the orchestrator
   * keeps asking, so that `onRegained` can let the run go on. Nothing here can reject unhandled.
   */
  #keepLease(cluster: string, events: { onLost(why: string): void; onRegained(): void }): { stop(): void } {
    let timer: number | undefined;
    let stopped = false;
    let lost = false;
    const durationMs = this.#leaseSeconds * 1000;
    const period = durationMs / 3;
    let expiresAt = this.#clock.now() + durationMs;
    const arm = (delay: number) => {
      timer = this.#clock.setTimeout(() => void renew(), delay);
    };
    const renew = async () => {
      let held: boolean;
      try {
        held = await this.#cluster.renewLease({ name: leaseName(cluster), holder: this.#holder, durationSeconds: this.#leaseSeconds });
      } catch (err) {
        if (stopped) return;
        if (!lost && this.#clock.now() >= expiresAt) {
          lost = true;
          events.onLost(`the cluster's lease could not be renewed before it ran out (${err instanceof Error ? err.message : String(err)})`);
        }
        arm(period / 3);
        return;
      }
      if (stopped) return;
      if (held) {
        expiresAt = this.#clock.now() + durationMs;
        if (lost) {
          lost = false;
          events.onRegained();
        }
      } else if (!lost) {
        lost = true;
        events.onLost("another orchestrator holds the cluster's lease");
      }
      arm(period);
    };
    arm(period);
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

export function leaseName(cluster: string): string {
  return `patchpilot-${cluster}`;
}

function defaultRunId(at: number): string {
  const stamp = new Date(at).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `run-${stamp}-${randomUUID().slice(0, 6)}`;
}

/** The states a restored run was saved in, so that picking it up is not reported as new transitions. */
function restoredState(snapshot: PersistedFleet['snapshot']): RestoredState {
  const nodeSteps = new Map<string, string>();
  for (const [id, child] of Object.entries(snapshot.children)) {
    if (child.src === 'nodeRun') nodeSteps.set(id, topState((child.snapshot as { value: never }).value));
  }
  return { fleetState: stateString(snapshot.value), nodeSteps };
}

function incompatible(runId: string, err: unknown): OrchestratorError {
  const why = err instanceof Error ? err.message : String(err);
  return new OrchestratorError(
    'SNAPSHOT_INCOMPATIBLE',
    `the saved state of run ${runId} cannot be restored (${why})`,
    'the nodes keep their labels and annotations in the cluster; start a new run, which skips nodes already patched',
  );
}
