/**
 * Runs a scenario: the real orchestrator (engine, journal, store) against the simulated cluster, in virtual time.
 * Triggers, cluster events and timed faults are timers on the same clock, an orchestrator crash drops the running
 * orchestrator and resumes the run from the store, and every engine event and node observation is written to the
 * recording as it happens. The result is the `--json` document of DESIGN.md.
 */
import type { ClusterPort } from '../cluster/port.ts';
import type { VirtualClock } from '../engine/clock.ts';
import { VirtualClock as Clock } from '../engine/clock.ts';
import type { FleetOutput } from '../engine/fleet.machine.ts';
import type { NodeOutcome } from '../engine/node.machine.ts';
import { resolveLimits } from '../engine/plan.ts';
import { classifyStoredOnDemand, ON_DEMAND_DELAY_MS } from '../engine/schedule.ts';
import { DISABLED } from '../engine/selection.ts';
import { settle, StalledRunError } from '../service/drive.ts';
import { JoinWatcher } from '../service/join-watcher.ts';
import { Orchestrator, type RunEvent, type RunHandle } from '../service/orchestrator.ts';
import { openStore } from '../store/index.ts';
import { SimCluster } from './cluster.ts';
import type { Observation, RecordedBehaviour } from './cluster-state.ts';
import { checkExpectations } from './expect.ts';
import { checkInvariants, type InvariantResult } from './invariants.ts';
import { lowerBoundMs } from './lower-bound.ts';
import type { Fault, Scenario, ScenarioEvent, Trigger } from './scenario.ts';

export const SIM_HOLDER = 'patchpilot-sim';
const RECORDING_FORMAT = 'patchpilot-recording/1';

export type SimNodeResultKind = 'patched' | 'no-updates' | 'failed' | 'skipped' | 'cancelled' | 'excluded' | 'not-selected' | 'not-started';

export interface TimelineEntry {
  step: string;
  /** Seconds since the scenario's virtual 0. */
  start: number;
  end: number;
}

export interface SimNodeResult {
  name: string;
  os: string;
  role: 'control-plane' | 'worker';
  zone: string;
  result: SimNodeResultKind;
  error: string | null;
  errorMessage: string | null;
  failedStep: string | null;
  upgraded: string[];
  held: string[];
  rebooted: boolean;
  rebootPending: boolean;
  cordonedAtEnd: boolean;
  /** Seconds per phase. */
  phases: { scan: number; drain: number; patch: number; reboot: number; rejoin: number; soak: number };
  /**
   * Seconds the node spent cordoned by this run: from the start of its cordon step to the end of its uncordon (or of
   * the run, when it stayed cordoned). 0 for a node never cordoned (no updates found by the scan).
   */
  cordonedSeconds: number;
  timeline: TimelineEntry[];
}

export interface FaultMarker {
  kind: string;
  node: string | null;
  /** Seconds since virtual 0. */
  at: number;
}

export interface SimRunResult {
  trigger: string;
  runId: string | null;
  outcome: FleetOutput['outcome'] | 'not-triggered';
  reason: string | null;
  /** Seconds since virtual 0: when the trigger fired, when the first node started, when the run ended. */
  triggeredAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  makespanSeconds: number;
  /** The zero-overhead makespan (lower-bound.ts) plus the time spent waiting for a window or in a pause. */
  lowerBoundSeconds: number;
  waitedSeconds: number;
  concurrency: number;
  nodes: SimNodeResult[];
  invariants: InvariantResult[];
  faults: FaultMarker[];
}

export interface SimResult {
  scenario: string;
  seed: number;
  ok: boolean;
  failedExpectations: string[];
  runs: SimRunResult[];
}

export interface RunScenarioOptions {
  /** Each line of the recording (JSON text, no newline), in order. */
  record?: (line: string) => void;
  /** Engine events as they happen (live views). */
  onEvent?: (event: RunEvent) => void;
  /** Called after each jump of the virtual clock. */
  onTick?: (now: number) => void | Promise<void>;
  /** Nodes behave as recorded instead of as the fault model says (replay). */
  recorded?: ReadonlyMap<string, RecordedBehaviour>;
  /** Virtual time after which an unfinished scenario counts as stuck (default 60 days). */
  horizonMs?: number;
  /**
   * Keep the runs in a (in-memory) SQLite store, as a real orchestrator does. Default: only when the scenario crashes
   * the orchestrator, which must resume from the store; otherwise the journal's commits are pure overhead here.
   */
  durable?: boolean;
  /**
   * Drive the engine through another ClusterPort in front of the simulated cluster (the sandbox's Kubernetes API and
   * the real Kubernetes adapter), instead of the simulator's own. Outcomes must not change: any difference is a bug.
   */
  through?: ClusterThrough;
}

/** A ClusterPort in front of the SimCluster, and how to know it has nothing in flight before virtual time moves. */
export interface ClusterThrough {
  /** Node changes, for the facade's watches (given to the SimCluster). */
  onNodeChange(name: string): void;
  attach(sim: SimCluster, clock: VirtualClock): Promise<AttachedPort>;
}

export interface AttachedPort {
  port: ClusterPort;
  /** Resolves when no request is in flight: only then may the virtual clock jump. */
  idle(): Promise<void>;
  close(): Promise<void>;
}

interface ActiveRun {
  /** The scenario's trigger, or the join of a node under an on-boot plan (`join:<node>`). */
  trigger: { id?: string | undefined; by: string };
  triggeredAt: number;
  handle: RunHandle;
  /** Each node that started: its queue position and the bars of its timeline. */
  started: Map<string, { position: number; timeline: TimelineEntry[] }>;
  /** Each node that finished: what its result takes from its outcome (finishedNode). */
  finished: Map<string, FinishedNode>;
  output: FleetOutput | null;
  /** Time the run spent waiting by rule (a closed window, an operator's pause), and since when it waits now. */
  waitedMs: number;
  /** Waiting since the last node started that counts once another node starts. */
  pendingWaitMs: number;
  waitingSince: number | null;
  waiting: boolean;
  inFlight: Set<string>;
}

export async function runScenario(scenario: Scenario, options: RunScenarioOptions = {}): Promise<SimResult> {
  const clock = new Clock(scenario.startAt);
  const epoch = scenario.startAt;
  const seconds = (at: number) => Math.round((at - epoch) / 10) / 100;
  const record = options.record ?? null;
  const write = (line: object) => record?.(JSON.stringify(line));
  write({ line: 'header', format: RECORDING_FORMAT, scenario: recordingHeader(scenario) });

  /** Faults that struck since the last run ended (the simulator reports them; crashes are the runner's own). */
  const markers: FaultMarker[] = [];
  const cluster = new SimCluster(scenario.nodes, {
    name: scenario.clusterName,
    clock,
    seed: scenario.seed,
    epoch,
    updates: scenario.updates,
    faults: scenario.faults,
    observe: (o: Observation) => {
      if (o.type === 'fault') markers.push({ kind: o.kind, node: o.node, at: o.at / 1000 });
      if (record) write({ line: 'observe', ...o });
    },
    ...(options.recorded ? { recorded: options.recorded } : {}),
    ...(options.through ? { onNodeChange: (name: string) => options.through?.onNodeChange(name), apiErrorsAt: 'external' as const } : {}),
  });
  const attached = options.through ? await options.through.attach(cluster, clock) : null;
  const port: ClusterPort = attached?.port ?? cluster;
  const durable = options.durable ?? scenario.faults.some((f) => f.kind === 'orchestrator-crash');
  const store = durable ? openStore(':memory:') : null;
  const runs: SimRunResult[] = [];
  let active: ActiveRun | null = null;
  let runCounter = 0;
  const crashFaults = scenario.faults.filter((f): f is Extract<Fault, { kind: 'orchestrator-crash' }> => f.kind === 'orchestrator-crash');
  const spentCrashes = new Set<Fault>();
  // Palette's stored onDemandPatchAfter (palette mode only).
  let onDemandPatchAfter: string | null = null;
  const staleFault = scenario.faults.find((f) => f.kind === 'palette-stale-timestamp');
  let staleStruck = false;

  /** Every run in progress by id: the trigger's (`active`) and those of nodes that joined under an on-boot plan. */
  const live = new Map<string, ActiveRun>();
  const onEvent = (event: RunEvent) => {
    // Every engine event passes here: the line is only built when there is a recording to write it to.
    if (record) write({ line: 'engine', ...event });
    options.onEvent?.(event);
    const run = live.get(event.runId);
    if (!run) return;
    if (event.type === 'run.state') {
      // Waiting by rule: a closed window, a pause, the health gate or a blocker, the canaries' soak.
      run.waiting = event.tags.includes('waiting');
    } else if (event.type === 'node.step') {
      run.inFlight.add(event.node);
      let node = run.started.get(event.node);
      if (node) node.position = event.position;
      else run.started.set(event.node, (node = { position: event.position, timeline: [] }));
      const last = node.timeline.at(-1);
      // A resumed run reports the step it was saved in again: the bar already there goes on.
      if (event.restored && last?.step === event.step) return;
      if (last && last.end < 0) last.end = seconds(event.at);
      node.timeline.push({ step: event.step, start: seconds(event.at), end: -1 });
      maybeCrash(event);
    } else if (event.type === 'node.finished') {
      const { outcome } = event;
      run.finished.set(outcome.node, finishedNode(outcome));
      const last = run.started.get(outcome.node)?.timeline.at(-1);
      if (last && last.end < 0) last.end = seconds(event.at);
      cluster.nodeRunFinished(event.outcome.node);
      run.inFlight.delete(event.outcome.node);
    }
    // Only a wait with nothing in flight lengthens the run beyond what its nodes need.
    // Waiting before the first node started is not inside the makespan (which runs from the first node's start).
    const idleByRule = run.waiting && run.inFlight.size === 0 && run.started.size > 0;
    if (idleByRule && run.waitingSince === null) run.waitingSince = event.at;
    if (!idleByRule && run.waitingSince !== null) {
      run.pendingWaitMs += event.at - run.waitingSince;
      run.waitingSince = null;
    }
    // A wait lengthens the makespan only when a node starts after it (a run that halts while blocked does not).
    if (event.type === 'node.step' && event.step === 'preflight' && !event.restored) {
      run.waitedMs += run.pendingWaitMs;
      run.pendingWaitMs = 0;
    }
  };

  let orchestrator = newOrchestrator();
  function newOrchestrator(): Orchestrator {
    return new Orchestrator({
      cluster: port,
      clock,
      store,
      holder: SIM_HOLDER,
      newRunId: () => `${scenario.name}-${++runCounter}`,
      onEvent,
      alerts: cluster.alertSource,
    });
  }

  function maybeCrash(event: Extract<RunEvent, { type: 'node.step' }>): void {
    if (event.restored) return;
    const fault = crashFaults.find((f) => !spentCrashes.has(f) && f.node === event.node && f.step === event.step && f.at === undefined);
    if (!fault) return;
    spentCrashes.add(fault);
    // In the middle of the step: its effect has started, and the cluster carries on without the orchestrator.
    clock.setTimeout(() => void crash(), 0);
  }

  async function crash(): Promise<void> {
    const run = active;
    if (!run) return;
    write({ line: 'crash', at: clock.now(), runId: run.handle.runId });
    markers.push({ kind: 'orchestrator-crash', node: null, at: seconds(clock.now()) });
    run.handle.detach();
    orchestrator = newOrchestrator();
    run.handle = await orchestrator.resume(run.handle.runId);
    live.set(run.handle.runId, run);
    watch(run);
  }

  function watch(run: ActiveRun): void {
    const handle = run.handle;
    handle.result.then(
      (output) => {
        if (run.handle === handle) run.output = output;
      },
      () => {
        // Detached by a crash: the resumed handle reports instead.
      },
    );
  }

  async function fire(trigger: Trigger): Promise<void> {
    const now = clock.now();
    write({ line: 'trigger', ...trigger, at: now });
    if (trigger.kind === 'unstick') {
      onDemandPatchAfter = null;
      return;
    }
    const ignored = (reason: string) => {
      runs.push(notTriggered(trigger.id ?? '?', seconds(now), reason, resolveLimits(scenario.plan, 0).concurrency));
    };
    if (active) return ignored(`run ${active.handle.runId} is still in progress; the trigger was ignored`);
    let notBefore: number | null = null;
    if (scenario.plan.mode === 'palette') {
      if (staleFault && staleFault.at !== undefined && now - epoch >= staleFault.at && !staleStruck) {
        // An earlier patch left its timestamp behind (the fault's time is when it became stale); once cleared, it
        // stays cleared.
        staleStruck = true;
        onDemandPatchAfter = new Date(epoch + staleFault.at - ON_DEMAND_DELAY_MS).toISOString();
      }
      const stored = classifyStoredOnDemand(onDemandPatchAfter, now);
      if (stored.state === 'stuck') {
        return ignored(
          `On-Demand Update did nothing: onDemandPatchAfter is stuck at ${onDemandPatchAfter} (in the past), and Palette rejects a new past-relative timer; clear the stored timestamp first (in a scenario: a trigger of kind unstick)`,
        );
      }
      if (stored.state === 'pending') return ignored(`a patch is already scheduled for ${onDemandPatchAfter}`);
      notBefore = now + ON_DEMAND_DELAY_MS;
      onDemandPatchAfter = new Date(notBefore).toISOString();
    }
    cluster.invariants.resetRun();
    const handle = await orchestrator.start({ plan: scenario.plan, requestedBy: trigger.by, triggerId: trigger.id ?? 't', notBefore });
    const run = newRun({ id: trigger.id, by: trigger.by }, now, handle);
    active = run;
    live.set(handle.runId, run);
    watch(run);
  }

  /**
   * Patch on join (plan trigger on-boot): the watcher sees a node arrive without the current hash and starts a run of
   * that node alone at once, cordoning before the scheduler places workloads; the same steps as any node, with no
   * scan first (cordoning an empty node costs nothing, and waiting for a scan would let workloads land).
   */
  async function join(name: string): Promise<void> {
    const now = clock.now();
    const view = cluster.state.nodeView(name);
    if (!view) return;
    const triggerId = scenario.triggers.find((t) => t.kind === 'on-demand')?.id ?? 't1';
    write({ line: 'trigger', kind: 'join', node: name, at: now });
    // A new watcher per join: the orchestrator may have been replaced by a crash since the last one.
    const handle = await new JoinWatcher({ orchestrator, plan: scenario.plan, triggerId }).nodeJoined(view);
    if (!handle) return;
    const run = newRun({ id: `join:${name}`, by: 'on-boot' }, now, handle);
    joins.add(run);
    live.set(handle.runId, run);
    watch(run);
  }

  function newRun(trigger: ActiveRun['trigger'], triggeredAt: number, handle: RunHandle): ActiveRun {
    return {
      trigger,
      triggeredAt,
      handle,
      started: new Map(),
      finished: new Map(),
      output: null,
      waitedMs: 0,
      pendingWaitMs: 0,
      waitingSince: null,
      waiting: false,
      inFlight: new Set(),
    };
  }

  function apply(event: ScenarioEvent): void {
    write({ line: 'event', ...event, at: clock.now() });
    switch (event.kind) {
      case 'node-added': {
        const onBoot = scenario.plan.trigger.kind === 'on-boot';
        cluster.state.addNode(event.node, { joining: onBoot });
        if (onBoot) {
          pendingJoins += 1;
          void join(event.node.name).finally(() => (pendingJoins -= 1));
        }
        return;
      }
      case 'exclude':
        cluster.state.setLabel(event.node, scenario.plan.labelKey, DISABLED);
        return;
      case 'cordon':
        cluster.state.cordonByOthers(event.node);
        return;
      default: {
        if (!active) return;
        const type = event.kind.toUpperCase() as 'PAUSE' | 'RESUME' | 'CANCEL' | 'APPROVE' | 'REJECT';
        const answer = active.handle.send({ type, by: event.by });
        write({ line: 'command', at: clock.now(), command: type, by: event.by, ...answer });
      }
    }
  }

  function finish(run: ActiveRun, output: FleetOutput): void {
    runs.push(runResult(run, output));
    live.delete(run.handle.runId);
    if (joins.delete(run)) return;
    // Palette clears the timestamp once the patch is done, unless the stale-timestamp fault keeps it.
    if (scenario.plan.mode === 'palette' && !(staleFault && staleFault.at === undefined)) onDemandPatchAfter = null;
    active = null;
  }

  function runResult(run: ActiveRun, output: FleetOutput): SimRunResult {
    const selected = new Set(output.selected);
    const notStarted = new Set(output.notStarted);
    const nodes: SimNodeResult[] = [];
    for (const name of cluster.state.nodeNames()) {
      const facts = cluster.state.nodeFacts(name)!;
      const timeline = run.started.get(name)?.timeline ?? [];
      const finished = run.finished.get(name);
      const disabled = facts.labels[scenario.plan.labelKey] === DISABLED;
      let result: SimNodeResultKind;
      if (finished) result = finished.result === 'skipped' && disabled ? 'excluded' : finished.result;
      else if (selected.has(name) || notStarted.has(name)) result = 'not-started';
      else result = disabled ? 'excluded' : 'not-selected';
      const f = finished ?? notFinished();
      nodes.push({
        name,
        os: facts.os,
        role: facts.role,
        zone: facts.zone,
        result,
        error: f.error,
        errorMessage: f.errorMessage,
        failedStep: f.failedStep,
        upgraded: f.upgraded,
        held: f.held,
        rebooted: f.rebooted,
        rebootPending: f.rebootPending,
        cordonedAtEnd: facts.unschedulable && facts.cordonedBy === run.handle.runId,
        phases: f.phases,
        cordonedSeconds: cordonedSeconds(timeline),
        timeline,
      });
    }
    const roles = new Map(nodes.map((n) => [n.name, n.role]));
    const started = [...run.finished].map(([name, f]) => ({
      position: run.started.get(name)?.position ?? 0,
      durationMs: f.finishedAt - f.startedAt,
      controlPlane: roles.get(name) === 'control-plane',
    }));
    let firstStart = Infinity;
    let lastEnd = -Infinity;
    for (const f of run.finished.values()) {
      firstStart = Math.min(firstStart, f.startedAt);
      lastEnd = Math.max(lastEnd, f.finishedAt);
    }
    const makespanMs = started.length > 0 ? lastEnd - firstStart : 0;
    const { concurrency } = resolveLimits(scenario.plan, output.selected.length);
    return {
      trigger: run.trigger.id ?? '?',
      runId: run.handle.runId,
      outcome: output.outcome,
      reason: output.reason,
      triggeredAt: seconds(run.triggeredAt),
      startedAt: started.length > 0 ? seconds(firstStart) : null,
      finishedAt: output.finishedAt === null ? null : seconds(output.finishedAt),
      makespanSeconds: Math.round(makespanMs / 1000),
      // Waiting for a window or through a pause is the plan's or an operator's doing, not idle time of the engine.
      lowerBoundSeconds: Math.round((lowerBoundMs(started, concurrency) + run.waitedMs) / 1000),
      waitedSeconds: Math.round(run.waitedMs / 1000),
      concurrency,
      nodes,
      invariants: checkInvariants(scenario.plan, nodes, cluster.invariants.stats, scenario.expect[runs.length]?.invariants ?? []),
      faults: markers.splice(0).sort((a, b) => a.at - b.at),
    };
  }

  const joins = new Set<ActiveRun>();
  let pendingJoins = 0;
  // Under an on-boot plan the watcher keeps running: the scenario ends after the last node has joined and its run ended.
  const lastJoinAt = scenario.plan.trigger.kind === 'on-boot' ? Math.max(-1, ...scenario.events.filter((e) => e.kind === 'node-added').map((e) => e.at)) : -1;
  const joinsAhead = () => clock.now() - epoch < lastJoinAt;
  const triggers = [...scenario.triggers].sort((a, b) => a.at - b.at);
  let pendingTriggers = triggers.length;
  for (const trigger of triggers) {
    clock.setTimeout(() => {
      void fire(trigger).finally(() => (pendingTriggers -= 1));
    }, trigger.at);
  }
  for (const event of scenario.events) clock.setTimeout(() => apply(event), event.at);
  for (const fault of crashFaults) {
    if (fault.at === undefined) continue;
    clock.setTimeout(() => {
      spentCrashes.add(fault);
      void crash();
    }, fault.at);
  }

  const horizonMs = options.horizonMs ?? 60 * 86_400_000;
  const horizon = { at: epoch + horizonMs, days: Math.round(horizonMs / 86_400_000) };
  try {
    await drive(clock, horizon, options.onTick, attached?.idle, () => {
      for (const run of [...live.values()]) if (run.output) finish(run, run.output);
      return pendingTriggers === 0 && pendingJoins === 0 && live.size === 0 && !joinsAhead();
    }, () => (active ? `run ${active.handle.runId} is ${active.handle.state}` : 'waiting for a trigger'));
  } finally {
    store?.close();
    await attached?.close();
  }
  // Runs in the order they were triggered (a join's run may end before the trigger's).
  runs.sort((a, b) => a.triggeredAt - b.triggeredAt);
  const failedExpectations = checkExpectations(scenario, runs);
  const result: SimResult = { scenario: scenario.name, seed: scenario.seed, ok: failedExpectations.length === 0, failedExpectations, runs };
  write({ line: 'result', result });
  return result;
}

async function drive(
  clock: VirtualClock,
  horizon: { at: number; days: number },
  onTick: ((now: number) => void | Promise<void>) | undefined,
  idle: (() => Promise<void>) | undefined,
  finished: () => boolean,
  describe: () => string,
): Promise<void> {
  for (;;) {
    await settle();
    if (idle) {
      await idle();
      await settle();
    }
    if (finished()) return;
    const next = clock.nextDueAt();
    if (next === undefined) throw new StalledRunError(`the scenario is stuck: ${describe()}, and nothing is scheduled`);
    if (next > horizon.at) {
      throw new StalledRunError(`the scenario has not finished within the simulator's ${horizon.days} virtual days (a plan timeout longer than that?): ${describe()}`);
    }
    clock.set(next);
    await onTick?.(next);
  }
}

/**
 * What a finished node's result takes from its outcome, kept from when it finishes: the NodeOutcome itself (its
 * report, its package versions) kept to the end was most of what a finished node held in a 100,000-node run
 * (issue 13). The rest of the result is what the cluster says at the end of the run.
 */
type FinishedNode = Pick<SimNodeResult, 'error' | 'errorMessage' | 'failedStep' | 'upgraded' | 'held' | 'rebooted' | 'rebootPending' | 'phases'> & {
  result: NodeOutcome['result'];
  startedAt: number;
  finishedAt: number;
};

function finishedNode(outcome: NodeOutcome): FinishedNode {
  const phase = (step: keyof NodeOutcome['phases']) => Math.round((outcome.phases[step] ?? 0) / 1000);
  return {
    result: outcome.result,
    error: outcome.error?.code ?? null,
    errorMessage: outcome.error?.message ?? null,
    failedStep: outcome.error?.step ?? null,
    upgraded: outcome.report?.upgraded.map((u) => u.name) ?? [],
    held: outcome.report?.held ?? [],
    rebooted: outcome.rebooted,
    rebootPending: outcome.rebootPending,
    phases: { scan: phase('scan'), drain: phase('drain'), patch: phase('patch'), reboot: phase('reboot'), rejoin: phase('rejoin'), soak: phase('soak') },
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
  };
}

/** The same for a node the run did not finish (not started, or never selected): nothing happened to it. */
function notFinished(): Omit<FinishedNode, 'result' | 'startedAt' | 'finishedAt'> {
  return {
    error: null,
    errorMessage: null,
    failedStep: null,
    upgraded: [],
    held: [],
    rebooted: false,
    rebootPending: false,
    phases: { scan: 0, drain: 0, patch: 0, reboot: 0, rejoin: 0, soak: 0 },
  };
}

/** From the start of the cordon step to the end of the uncordon step (or of the last step), in seconds. */
export function cordonedSeconds(timeline: readonly TimelineEntry[]): number {
  const from = timeline.findIndex((e) => e.step === 'cordon');
  if (from < 0) return 0;
  const until = timeline.findIndex((e, i) => i > from && e.step === 'uncordon');
  const end = (until >= 0 ? timeline[until]! : timeline.at(-1)!).end;
  return Math.max(0, Math.round((end - timeline[from]!.start) * 100) / 100);
}

/** A trigger that started no run (Palette's stuck timestamp, a run already in progress). */
function notTriggered(trigger: string, at: number, reason: string, concurrency: number): SimRunResult {
  return {
    trigger,
    runId: null,
    outcome: 'not-triggered',
    reason,
    triggeredAt: at,
    startedAt: null,
    finishedAt: at,
    makespanSeconds: 0,
    lowerBoundSeconds: 0,
    waitedSeconds: 0,
    concurrency,
    nodes: [],
    invariants: [],
    faults: [],
  };
}

/** The scenario as a recording keeps it: enough to rebuild the cluster, the plan, triggers and events. */
export function recordingHeader(scenario: Scenario) {
  return {
    name: scenario.name,
    description: scenario.description,
    seed: scenario.seed,
    startAt: new Date(scenario.startAt).toISOString(),
    clusterName: scenario.clusterName,
    nodes: scenario.nodes,
    updates: scenario.updates,
    plan: scenario.planInput,
    faults: scenario.faults,
    triggers: scenario.triggers,
    events: scenario.events,
    expect: scenario.expect,
  };
}
