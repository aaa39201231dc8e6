/**
 * SimCluster: the simulated cluster behind the ClusterPort, in virtual time. The engine's calls become changes of the
 * state (cluster-state.ts) with Kubernetes' semantics (a cordon owned through its annotation, kubectl drain's
 * refusals and evictions, a patch Job found again by name, a reboot that changes the boot id), each counted as an API
 * call an api-errors fault may fail, and each taking the virtual time the node's model says. The invariants' figures
 * (invariants.ts) are fed as it goes.
 */
import { drainRefusals } from '../cluster/drain-rules.ts';
import { applyMetadataPatch, claimLease, releasedLease, sleep, untilAborted, type HeldLease } from '../cluster/in-process.ts';
import { scanJobSpec } from '../cluster/jobs.ts';
import type {
  ClusterNode,
  ClusterPort,
  CordonResult,
  DrainOptions,
  DrainResult,
  Fence,
  LeaseRequest,
  LeaseResult,
  MetadataPatch,
  PatchJobSpec,
  PodInfo,
  PodQuery,
  ScanSpec,
  UncordonResult,
} from '../cluster/port.ts';
import { EffectError, type NodeHealth } from '../engine/effects.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import type { AgentReport } from '../engine/report.ts';
import type { AlertSource } from '../service/prometheus.ts';
import type { AgentRun } from './agent-model.ts';
import { evicts, podsNow, SimClusterState, type SimClusterOptions } from './cluster-state.ts';
import { InvariantMonitor } from './invariants.ts';
import { matchesLabels, parseLabelSelector } from './kube-api/selectors.ts';
import type { SimNodeSpec } from './scenario.ts';

interface SimJob {
  name: string;
  node: string;
  runId: string;
  createdAt: number;
  run: AgentRun;
}

export class SimCluster implements ClusterPort {
  readonly name: string;
  /** The nodes themselves: what the sandbox and the runner read and change directly. */
  readonly state: SimClusterState;
  /** The safety invariants' figures of the current run. */
  readonly invariants = new InvariantMonitor();
  readonly #jobs = new Map<string, SimJob>();
  /** Names of the Jobs each node has in #jobs, so that a node's can be let go when its run is over. */
  readonly #jobsOf = new Map<string, string[]>();
  #lease: HeldLease | null = null;

  constructor(nodes: readonly SimNodeSpec[], options: SimClusterOptions) {
    this.name = options.name;
    this.state = new SimClusterState(nodes, options, this.invariants);
  }

  get #clock() {
    return this.state.clock;
  }

  /** The alert-firing faults active now, as Prometheus would list them (the URL is not asked). */
  readonly alertSource: AlertSource = {
    firingAlerts: async () => this.state.firingAlerts(),
  };

  /** The blockers' and the soak's view of pods: Running, Ready while their node is. */
  async listPods(query: PodQuery): Promise<PodInfo[]> {
    const state = this.state;
    const selector = parseLabelSelector(query.selector || undefined);
    const names = query.node !== undefined ? (state.hasNode(query.node) ? [query.node] : []) : state.nodeNames();
    const pods: PodInfo[] = [];
    for (const name of names) {
      const node = state.require(name);
      for (const pod of state.podsOn(name)) {
        if (!matchesLabels(selector, pod.labels ?? {})) continue;
        pods.push({ namespace: pod.namespace, name: pod.name, node: name, phase: 'Running', ready: node.ready, daemon: pod.owner !== 'Deployment' });
      }
    }
    return pods;
  }

  /** The simulated API server always answers /readyz. */
  async controlPlaneReady(): Promise<{ ready: boolean; detail: string }> {
    return { ready: true, detail: 'ok' };
  }

  /** Nodes NotReady or unschedulable (what the health gate looks at), as one list call. */
  async unhealthyNodes(): Promise<NodeHealth[]> {
    this.state.apiCall(null, 'list');
    return this.state.unhealthyNodes();
  }

  async listNodes(): Promise<ClusterNode[]> {
    this.state.apiCall(null, 'list');
    return [...this.state.allNodes()].map((n) => this.state.view(n));
  }

  async getNode(name: string): Promise<ClusterNode | null> {
    const node = this.state.find(name);
    if (!node) return null;
    this.state.apiCall(node, 'get');
    return this.state.view(node);
  }

  async cordon(name: string, owner: string, _signal?: AbortSignal, fence?: Fence): Promise<CordonResult> {
    const node = this.state.require(name);
    this.state.apiCall(node, 'cordon');
    if (node.unschedulable) return node.annotations[ANNOTATIONS.cordonedBy] === owner ? 'already-ours' : 'foreign';
    node.unschedulable = true;
    node.annotations[ANNOTATIONS.cordonedBy] = owner;
    if (fence) node.annotations[ANNOTATIONS.cordonGeneration] = String(fence.generation);
    this.state.troubled(node);
    this.invariants.cordoned(name, node.spec.role === 'control-plane');
    this.state.changed(name);
    return 'cordoned';
  }

  async uncordon(name: string, owner: string): Promise<UncordonResult> {
    const node = this.state.require(name);
    this.state.apiCall(node, 'uncordon');
    if (!node.unschedulable) return 'not-cordoned';
    if (node.annotations[ANNOTATIONS.cordonedBy] !== owner) return 'not-ours';
    node.unschedulable = false;
    // A new object rather than `delete`, which turns the node's annotations into a hash table for the rest of the run.
    const { [ANNOTATIONS.cordonedBy]: _owner, [ANNOTATIONS.cordonGeneration]: _generation, ...annotations } = node.annotations;
    node.annotations = annotations;
    this.invariants.released(name);
    // The scheduler puts workloads back on a schedulable node.
    this.state.podsBack(node);
    this.state.changed(name);
    return 'uncordoned';
  }

  /** The engine finished with this node: a cordon it keeps no longer counts as in flight. */
  nodeRunFinished(name: string): void {
    this.invariants.released(name);
    // Its Jobs are only ever asked for again by the node run that created them (found again after a crash, or
    // awaited): a later run's Job of the same name replaces them anyway. Kept, a 100,000-node simulation would hold
    // two Jobs and their reports per node to the end.
    for (const job of this.#jobsOf.get(name) ?? []) this.#jobs.delete(job);
    this.#jobsOf.delete(name);
  }

  /**
   * `kubectl drain` semantics: DaemonSet and static (mirror) pods stay; the others are evicted together and the drain
   * ends when the last one has terminated. A PodDisruptionBudget that allows no disruption refuses its pod's eviction
   * (HTTP 429) until it relaxes; a pod stuck terminating (a finalizer) keeps the drain waiting. At `giveUpAt` the
   * drain reports what is still in the way.
   */
  async drain(name: string, options: DrainOptions): Promise<DrainResult> {
    const state = this.state;
    const node = state.require(name);
    const started = this.#clock.now();
    const evictable = podsNow(node).filter(evicts);
    // kubectl drain's checks come first and evict nothing: the same rules (and words) as the Kubernetes adapter.
    const refused = drainRefusals(
      evictable.map((p) => ({ namespace: p.namespace, name: p.name, controlled: p.owner !== 'none', emptyDir: p.emptyDir === true })),
      options,
    );
    if (refused.length > 0) return { evicted: 0, blocked: refused, refused: true };
    const plan = state.recorded(name)?.drain ?? state.drainPlan(node, evictable.length);
    state.observe({ type: 'drain', at: state.virtual(started), node: name, ...plan });
    if (!state.replaying) {
      for (const kind of ['pdb-blocks-drain', 'pod-stuck-terminating'] as const) if (state.fault(node, kind)) state.struck(node, kind);
    }
    const blockedUntil = plan.blocked.length === 0 ? started : plan.blockedForMs === null ? Infinity : started + plan.blockedForMs;
    const doneAt = Math.max(started + plan.ms, blockedUntil);
    if (doneAt > options.giveUpAt) {
      await sleep(this.#clock, Math.max(0, options.giveUpAt - started), options.signal);
      return { evicted: evictable.length - plan.blocked.length, blocked: plan.blocked };
    }
    await sleep(this.#clock, doneAt - started, options.signal);
    node.pods = podsNow(node).filter((p) => !evicts(p));
    state.changed(name);
    return { evicted: evictable.length, blocked: [] };
  }

  async startPatchJob(spec: PatchJobSpec): Promise<{ jobName: string; created: boolean }> {
    const state = this.state;
    const node = state.require(spec.node);
    // This run's Job is found again after a crash and reused. An earlier run's Job can bear the same name (Palette's
    // names carry no hash; and a node that failed is retried with the same hash by the next run): it has finished,
    // and is replaced.
    if (this.#jobs.get(spec.jobName)?.runId === spec.runId) return { jobName: spec.jobName, created: false };
    state.apiCall(node, 'create-job');
    const now = this.#clock.now();
    const patching = !spec.downloadOnly && !spec.reportOnly;
    const run = (patching ? state.recorded(spec.node)?.patch : undefined) ?? state.agentRun(node, spec, now);
    this.#jobs.set(spec.jobName, { name: spec.jobName, node: spec.node, runId: spec.runId, createdAt: now, run });
    const names = this.#jobsOf.get(spec.node);
    if (!names) this.#jobsOf.set(spec.node, [spec.jobName]);
    else if (!names.includes(spec.jobName)) names.push(spec.jobName);
    state.observe({
      type: 'patch',
      at: state.virtual(now),
      node: spec.node,
      job: spec.jobName,
      ms: run.durationMs,
      report: run.report,
      diesWithoutReport: run.diesWithoutReport,
      downloadOnly: spec.downloadOnly,
      ...(spec.reportOnly ? { reportOnly: true } : {}),
    });
    if (spec.downloadOnly && run.report.result !== 'failed') node.prefetched = true;
    if (patching) {
      this.invariants.patchJob(spec.node, spec.hash);
      state.applyAgentRun(node, run, spec.holdPackages);
    }
    return { jobName: spec.jobName, created: true };
  }

  async scanNode(spec: ScanSpec, signal: AbortSignal): Promise<AgentReport> {
    const job = scanJobSpec(spec);
    await this.startPatchJob(job);
    return this.awaitAgentReport(job.jobName, signal);
  }

  async awaitAgentReport(jobName: string, signal: AbortSignal): Promise<AgentReport> {
    const job = this.#jobs.get(jobName);
    if (!job) throw new EffectError('JOB_FAILED', `job ${jobName} does not exist`);
    const remaining = job.createdAt + job.run.durationMs - this.#clock.now();
    if (remaining > 0) await sleep(this.#clock, remaining, signal);
    if (job.run.diesWithoutReport) {
      throw new EffectError('JOB_FAILED', `job ${jobName}: the agent pod was OOMKilled before it printed a report`);
    }
    return job.run.report;
  }

  /** The node shuts down (the reboot phase), then boots (the rejoin phase) unless a fault keeps it down. */
  async reboot(name: string, key: string, signal?: AbortSignal): Promise<void> {
    const state = this.state;
    const node = state.require(name);
    const keys = node.rebootKeys;
    if (keys === key || (keys instanceof Set && keys.has(key))) return;
    node.rebootKeys = keys === null ? key : new Set([...(typeof keys === 'string' ? [keys] : keys), key]);
    const now = this.#clock.now();
    const plan = state.recorded(name)?.reboot ?? state.rebootPlan(node, now);
    state.observe({ type: 'reboot', at: state.virtual(now), node: name, ...plan });
    await sleep(this.#clock, plan.shutdownMs, signal);
    node.ready = false;
    state.troubled(node);
    node.backAt = plan.bootMs === null ? null : this.#clock.now() + plan.bootMs;
    state.changed(name);
    if (plan.bootMs !== null && state.watched) this.#clock.setTimeout(() => state.settleBoot(node), plan.bootMs);
  }

  async awaitReady(name: string, notBootId: string, signal: AbortSignal): Promise<ClusterNode> {
    for (;;) {
      const node = this.state.require(name);
      const view = this.state.view(node);
      if (view.ready && view.bootId !== notBootId) return view;
      if (node.backAt === null) return untilAborted(signal);
      // Not yet down (shutdown still running) or a NotReady spell: look again in a while, as a watch would.
      const wait = node.backAt === undefined ? 5_000 : Math.max(0, node.backAt - this.#clock.now());
      await sleep(this.#clock, wait, signal);
    }
  }

  async patchNodeMetadata(name: string, patch: MetadataPatch): Promise<void> {
    const node = this.state.require(name);
    this.state.apiCall(node, 'patch');
    applyMetadataPatch(node, patch);
    this.state.changed(name);
  }

  async acquireLease(request: LeaseRequest): Promise<LeaseResult> {
    const { result, lease } = claimLease(this.#lease, request, this.#clock.now());
    this.#lease = lease;
    return result;
  }

  async renewLease(request: LeaseRequest): Promise<LeaseResult> {
    return this.acquireLease(request);
  }

  async releaseLease(_name: string, holder: string): Promise<void> {
    this.#lease = releasedLease(this.#lease, holder, this.#clock.now());
  }
}
