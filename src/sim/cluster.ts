/**
 * SimCluster: a simulated Kubernetes cluster behind the ClusterPort, in virtual time. Nodes have an OS, pods with
 * owners, installed packages and the updates their repositories offer, a boot id, a Ready condition and a kubelet
 * version. Faults are data (src/sim/scenario.ts) applied when the engine reaches the step they concern, or at a time.
 *
 * Everything it decides is drawn from seeded per-node streams, and everything a node did is reported as an
 * Observation, so a run can be recorded and replayed with nodes behaving exactly as they did (src/sim/replay.ts).
 */
import type { Clock } from '../engine/clock.ts';
import { drainRefusals } from '../cluster/drain-rules.ts';
import { EffectError, type BlockedEviction } from '../engine/effects.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import type { AgentReport } from '../engine/report.ts';
import { CONTROL_PLANE_LABELS, OS_LABEL, ZONE_LABEL } from '../engine/selection.ts';
import { applyMetadataPatch, claimLease, releasedLease, sleep, untilAborted, type HeldLease } from '../cluster/in-process.ts';
import type {
  ClusterNode,
  ClusterPort,
  CordonResult,
  DrainOptions,
  DrainResult,
  LeaseRequest,
  Fence,
  LeaseResult,
  MetadataPatch,
  PatchJobSpec,
  PodInfo,
  PodQuery,
  ScanSpec,
  UncordonResult,
} from '../cluster/port.ts';
import type { AlertSource } from '../service/prometheus.ts';
import { matchesLabels, parseLabelSelector } from './kube-api/selectors.ts';
import { scanJobSpec } from '../cluster/jobs.ts';
import { NO_AGENT_FAULTS, runAgent, type AgentFaults, type AgentRun } from './agent-model.ts';
import { InstalledPackages, KUBERNETES_PACKAGES, OS_PROFILES, packageNameOn, type OsProfile } from './os.ts';
import { RandomStreams } from './random.ts';
import type { Fault, SimNodeSpec, Updates } from './scenario.ts';

/** 'none': a bare pod (no controller: the drain refuses it unless forced, and nothing brings it back). */
export type PodOwner = 'Deployment' | 'DaemonSet' | 'static' | 'none';

export interface SimPod {
  name: string;
  namespace: string;
  owner: PodOwner;
  /** Labels beyond the app label (a blocking-pod fault's). */
  labels?: Record<string, string>;
  /** Has an emptyDir volume: the drain refuses it unless drain.deleteEmptyDirData. */
  emptyDir?: boolean;
}

/** How long after a node joins the scheduler starts putting workloads on it, unless it is cordoned by then. */
export const JOIN_SCHEDULE_DELAY_MS = 20_000;

/** Pods a drain evicts (DaemonSet and static pods stay). */
const evicts = (pod: SimPod) => pod.owner === 'Deployment' || pod.owner === 'none';

/** What a node did, as observed from outside: the material of recordings and replays. */
export type Observation =
  | { type: 'drain'; at: number; node: string; ms: number; blocked: BlockedEviction[]; blockedForMs: number | null }
  | { type: 'patch'; at: number; node: string; job: string; ms: number; report: AgentReport; diesWithoutReport: boolean; downloadOnly: boolean; reportOnly?: boolean }
  | { type: 'reboot'; at: number; node: string; shutdownMs: number; bootMs: number | null }
  | { type: 'api-error'; at: number; node: string; call: string; ordinal: number; status: number }
  | { type: 'node-state'; at: number; node: string; ready: boolean }
  /** A fault took effect (for the timeline's markers; replays rely on the observations above, not on these). */
  | { type: 'fault'; at: number; node: string | null; kind: Fault['kind'] };

/** Behaviour a replay imposes instead of the model's (what the recording says the node did). */
export interface RecordedBehaviour {
  drain?: { ms: number; blocked: BlockedEviction[]; blockedForMs: number | null };
  patch?: AgentRun;
  reboot?: { shutdownMs: number; bootMs: number | null };
  /** `call#ordinal` of calls that failed, with the status. */
  apiErrors?: Map<string, number>;
}

interface SimNode {
  spec: SimNodeSpec;
  os: OsProfile;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  unschedulable: boolean;
  ready: boolean;
  bootCount: number;
  kubeletVersion: string;
  installed: InstalledPackages;
  offered: { security: string[]; other: string[] };
  pods: SimPod[];
  rebootKeys: Set<string>;
  /** When the boot in progress completes; null: it never will. Undefined: not rebooting. */
  backAt: number | null | undefined;
  rebootRequired: boolean;
  calls: Map<string, number>;
  faults: Fault[];
  /** Faults used up (an apt lock released, an agent crash that happened). */
  spent: Set<Fault>;
  /** Fault-protected pods (sandbox) that have terminated; the scheduler brings them back with the others. */
  gone: Set<string>;
  /** A download-only Job filled the package cache: the next patch skips the download. */
  prefetched: boolean;
  /** Virtual time the scheduler put workloads on a node that joined (null: not yet, or it was there from the start). */
  workloadsLandedAt: number | null;
}

interface SimJob {
  name: string;
  node: string;
  runId: string;
  createdAt: number;
  run: AgentRun;
}

export interface SimClusterOptions {
  name: string;
  clock: Clock;
  seed: number;
  /** Virtual time 0 (faults' and events' `at` count from here). */
  epoch: number;
  updates: Updates;
  faults?: readonly Fault[];
  observe?: (observation: Observation) => void;
  recorded?: ReadonlyMap<string, RecordedBehaviour>;
  /**
   * Called after anything about a node changed that a Kubernetes API would show (metadata, cordon, Ready, boot, pods).
   * The sandbox turns these into watch events.
   */
  onNodeChange?: (name: string) => void;
  /**
   * Where api-errors faults strike. `port` (default): the ClusterPort calls fail, as the engine sees them through the
   * simulator. `external`: the caller asks `apiFault` per HTTP request (the sandbox), and port calls never fail.
   */
  apiErrorsAt?: 'port' | 'external';
}

export class SimCluster implements ClusterPort {
  readonly name: string;
  readonly #clock: Clock;
  readonly #epoch: number;
  readonly #random: RandomStreams;
  readonly #updates: Updates;
  readonly #nodes = new Map<string, SimNode>();
  readonly #jobs = new Map<string, SimJob>();
  readonly #clusterFaults: Fault[];
  /** Nodes that may be NotReady or unschedulable: a superset, pruned when read (unhealthyNodes). */
  readonly #troubled = new Set<SimNode>();
  readonly #blockingFaults: Extract<Fault, { kind: 'blocking-pod' }>[];
  readonly #alertFaults: Extract<Fault, { kind: 'alert-firing' }>[];
  readonly #faultsByNode = new Map<string, Fault[]>();
  readonly #observe: (observation: Observation) => void;
  readonly #recorded: ReadonlyMap<string, RecordedBehaviour>;
  /** Replaying a recording: nodes do what they were recorded doing, and nothing the model would draw. */
  readonly #replaying: boolean;
  readonly #onNodeChange: (name: string) => void;
  /** Someone watches node changes: a boot must complete at its time, not when the node is next read. */
  readonly #watched: boolean;
  readonly #apiErrorsAtPort: boolean;
  #lease: HeldLease | null = null;
  /** Nodes cordoned by patchpilot whose node run has not finished (a failed node left cordoned on purpose is done). */
  readonly #cordonedInFlight = new Set<string>();
  /** Invariant material, kept as the run goes. */
  readonly stats = {
    maxCordonedByUs: 0,
    maxControlPlanesCordoned: 0,
    /** Patch Jobs per `node@hash`: more than one means a node was patched twice for one hash. */
    patchJobs: new Map<string, number>(),
    /** Held packages that an agent upgraded anyway, as `node:package`. */
    heldUpgraded: [] as string[],
    /** Kubernetes or runtime packages that an agent upgraded, as `node:package`. */
    kubernetesUpgraded: [] as string[],
    /** Nodes that joined and got workloads before anyone cordoned them (patch on join came too late). */
    workloadsBeforeCordon: [] as string[],
  };

  constructor(nodes: readonly SimNodeSpec[], options: SimClusterOptions) {
    this.name = options.name;
    this.#clock = options.clock;
    this.#epoch = options.epoch;
    this.#random = new RandomStreams(options.seed);
    this.#updates = options.updates;
    this.#observe = options.observe ?? (() => {});
    this.#recorded = options.recorded ?? new Map();
    this.#replaying = options.recorded !== undefined;
    this.#onNodeChange = options.onNodeChange ?? (() => {});
    this.#watched = options.onNodeChange !== undefined;
    this.#apiErrorsAtPort = (options.apiErrorsAt ?? 'port') === 'port';
    this.#clusterFaults = (options.faults ?? []).filter((f) => f.node === undefined);
    this.#blockingFaults = (options.faults ?? []).filter((f): f is Extract<Fault, { kind: 'blocking-pod' }> => f.kind === 'blocking-pod');
    this.#alertFaults = (options.faults ?? []).filter((f): f is Extract<Fault, { kind: 'alert-firing' }> => f.kind === 'alert-firing');
    for (const fault of options.faults ?? []) {
      if (fault.node === undefined) continue;
      const list = this.#faultsByNode.get(fault.node) ?? [];
      list.push(fault);
      this.#faultsByNode.set(fault.node, list);
    }
    for (const spec of nodes) this.addNode(spec);
    this.#scheduleTimedFaults(options.faults ?? []);
  }

  /**
   * A node joins (scenario event `node-added`). A node that `joins` later starts with its DaemonSet and static pods
   * only; the scheduler places its workloads JOIN_SCHEDULE_DELAY_MS later, unless it has been cordoned by then.
   */
  addNode(spec: SimNodeSpec, options: { joining?: boolean } = {}): void {
    if (this.#nodes.has(spec.name)) throw new Error(`node ${spec.name} already exists in cluster ${this.name}`);
    const os = OS_PROFILES[spec.os];
    const labels: Record<string, string> = {
      'kubernetes.io/hostname': spec.name,
      [OS_LABEL]: os.kubernetesOs,
      [ZONE_LABEL]: spec.zone,
      'node.kubernetes.io/os-image': spec.os,
    };
    if (spec.role === 'control-plane') labels[CONTROL_PLANE_LABELS[0]] = '';
    const faults = this.#faultsByNode.get(spec.name) ?? [];
    const installed = new InstalledPackages(os, spec.packages);
    const updates = spec.updates ?? this.#updates;
    const security = updates.security.map((p) => packageNameOn(os, p));
    for (const fault of faults) if (fault.kind === 'reboot-required') security.push(packageNameOn(os, fault.package));
    const node: SimNode = {
      spec,
      os,
      labels: { ...labels, ...spec.labels },
      annotations: {},
      unschedulable: spec.unschedulable,
      ready: true,
      bootCount: 1,
      kubeletVersion: spec.kubeletVersion,
      installed,
      offered: { security: [...new Set(security)], other: updates.other.map((p) => packageNameOn(os, p)) },
      pods: podsOf(spec),
      rebootKeys: new Set(),
      backAt: undefined,
      rebootRequired: false,
      calls: new Map(),
      faults,
      spent: new Set(),
      gone: new Set(),
      prefetched: false,
      workloadsLandedAt: null,
    };
    const notReady = faults.find((f) => f.kind === 'node-not-ready' && f.at === undefined);
    if (notReady) this.#setReady(node, false, notReady.kind === 'node-not-ready' ? notReady.forSeconds : undefined);
    if (options.joining) {
      node.pods = node.pods.filter((p) => p.owner !== 'Deployment');
      this.#clock.setTimeout(() => {
        if (this.#nodes.get(spec.name) !== node || node.unschedulable) return;
        node.pods = podsOf(spec);
        node.workloadsLandedAt = this.#virtual(this.#clock.now());
        this.stats.workloadsBeforeCordon.push(spec.name);
        this.#onNodeChange(spec.name);
      }, JOIN_SCHEDULE_DELAY_MS);
    }
    this.#nodes.set(spec.name, node);
    if (node.unschedulable || !node.ready) this.#troubled.add(node);
    this.#onNodeChange(spec.name);
  }

  /** The node object was deleted (`kubectl delete node` in the sandbox): every later call about it finds it gone. */
  removeNode(name: string): void {
    if (!this.#nodes.delete(name)) return;
    this.#cordonedInFlight.delete(name);
  }

  /** Scenario event `exclude`: the task label set to "disabled". */
  setLabel(name: string, key: string, value: string): void {
    this.#require(name).labels[key] = value;
    this.#onNodeChange(name);
  }

  /** Scenario event `cordon`: someone else cordons the node. */
  cordonByOthers(name: string): void {
    const node = this.#require(name);
    if (!node.unschedulable) node.unschedulable = true;
    this.#troubled.add(node);
    this.#onNodeChange(name);
  }

  /** The engine finished with this node: a cordon it keeps no longer counts as in flight. */
  nodeRunFinished(name: string): void {
    this.#cordonedInFlight.delete(name);
  }

  /** Starts the invariant figures afresh for a new run. */
  resetRunStats(): void {
    this.stats.maxCordonedByUs = this.#cordonedInFlight.size;
    this.stats.maxControlPlanesCordoned = this.#controlPlanesInFlight();
    this.stats.patchJobs.clear();
    this.stats.heldUpgraded.length = 0;
    this.stats.kubernetesUpgraded.length = 0;
    this.stats.workloadsBeforeCordon.length = 0;
  }

  #controlPlanesInFlight(): number {
    let count = 0;
    for (const name of this.#cordonedInFlight) if (this.#nodes.get(name)?.spec.role === 'control-plane') count += 1;
    return count;
  }

  /** Read-only facts for reports and invariants. */
  nodeFacts(name: string) {
    const node = this.#nodes.get(name);
    if (!node) return null;
    this.#settleBoot(node);
    return {
      os: node.spec.os,
      role: node.spec.role,
      zone: node.spec.zone,
      ready: node.ready,
      unschedulable: node.unschedulable,
      cordonedBy: node.annotations[ANNOTATIONS.cordonedBy] ?? null,
      bootCount: node.bootCount,
      rebootRequired: node.rebootRequired,
      kubeletVersion: node.kubeletVersion,
      labels: { ...node.labels },
      annotations: { ...node.annotations },
      workloadsLandedAt: node.workloadsLandedAt,
    };
  }

  nodeNames(): string[] {
    return [...this.#nodes.keys()];
  }

  // --- The sandbox's view: what the Kubernetes API facade (src/sim/sandbox) reads and writes directly. ---

  /** The node as a ClusterPort would report it, without counting an API call. */
  nodeView(name: string): ClusterNode | null {
    const node = this.#nodes.get(name);
    return node ? this.#view(node) : null;
  }

  /**
   * What a PATCH or PUT of the Node object set (kubectl, the Kubernetes adapter): metadata and the cordon, written as
   * they are. A cordon carrying our cordoned-by annotation counts as ours for the invariants, as `cordon` does.
   */
  setNodeMetadata(name: string, next: { labels: Record<string, string>; annotations: Record<string, string>; unschedulable: boolean }): void {
    const node = this.#require(name);
    const wasCordoned = node.unschedulable;
    node.labels = { ...next.labels };
    node.annotations = { ...next.annotations };
    node.unschedulable = next.unschedulable;
    if (next.unschedulable) this.#troubled.add(node);
    if (next.unschedulable && next.annotations[ANNOTATIONS.cordonedBy] !== undefined && !this.#cordonedInFlight.has(name)) {
      this.#cordonedInFlight.add(name);
      this.stats.maxCordonedByUs = Math.max(this.stats.maxCordonedByUs, this.#cordonedInFlight.size);
      if (node.spec.role === 'control-plane') {
        this.stats.maxControlPlanesCordoned = Math.max(this.stats.maxControlPlanesCordoned, this.#controlPlanesInFlight());
      }
    }
    if (!next.unschedulable) this.#cordonedInFlight.delete(name);
    // The scheduler puts workloads back on a node that became schedulable.
    if (wasCordoned && !next.unschedulable) {
      node.pods = podsOf(node.spec);
      node.gone.clear();
    }
    this.#onNodeChange(name);
  }

  /** The pods on a node, with those a drain fault protects (a PodDisruptionBudget's pod, a pod with a finalizer). */
  podsOn(name: string): SimPod[] {
    const node = this.#require(name);
    const pods = [...node.pods];
    if (node.faults.some((f) => f.kind === 'pdb-blocks-drain') && !node.gone.has(PDB_POD(name))) {
      pods.push({ name: PDB_POD(name), namespace: 'shop', owner: 'Deployment' });
    }
    if (node.faults.some((f) => f.kind === 'pod-stuck-terminating') && !node.gone.has(STUCK_POD(name))) {
      pods.push({ name: STUCK_POD(name), namespace: 'jobs', owner: 'Deployment' });
    }
    this.#blockingFaults.forEach((fault, i) => {
      if ((fault.node ?? this.#firstNode()) === name && this.#activeFor(fault)) {
        // A mirror pod, so that no drain ever evicts it: it blocks until its time is over.
        pods.push({ name: BLOCKING_POD(i, name), namespace: 'default', owner: 'static', labels: { app: `blocker-${i + 1}`, ...fault.labels } });
      }
    });
    return pods;
  }

  /** The blockers' and the soak's view of pods: Running, Ready while their node is. */
  async listPods(query: PodQuery): Promise<PodInfo[]> {
    const selector = parseLabelSelector(query.selector || undefined);
    const names = query.node !== undefined ? (this.#nodes.has(query.node) ? [query.node] : []) : [...this.#nodes.keys()];
    const pods: PodInfo[] = [];
    for (const name of names) {
      const node = this.#require(name);
      for (const pod of this.podsOn(name)) {
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

  /** The alert-firing faults active now, as Prometheus would list them (the URL is not asked). */
  readonly alertSource: AlertSource = {
    firingAlerts: async () => this.#alertFaults.filter((f) => this.#activeFor(f)).map((f) => f.name),
  };

  #firstNode(): string {
    return this.#nodes.keys().next().value ?? '';
  }

  /** An evicted pod finished terminating. */
  podGone(name: string, pod: string): void {
    const node = this.#require(name);
    node.pods = node.pods.filter((p) => p.name !== pod);
    if (pod === PDB_POD(name) || pod === STUCK_POD(name)) node.gone.add(pod);
    this.#onNodeChange(name);
  }

  /**
   * A drain as the Eviction API sees it (the sandbox): how long each evictable pod takes to terminate, and which pods a
   * fault protects and for how long from the first eviction (null: until the fault is gone, never here). Draws from
   * the same stream and faults as `drain`, so a node drains alike through either.
   */
  evictionPlan(name: string): { terminationMs: Map<string, number>; protectedPods: Map<string, { kind: 'pdb' | 'finalizer'; forMs: number | null; reason: string }> } {
    const node = this.#require(name);
    const random = this.#random.of(`${name}/drain`);
    const terminationMs = new Map<string, number>();
    for (const pod of node.pods) if (evicts(pod)) terminationMs.set(pod.name, random.int(3_000, 25_000));
    const protectedPods = new Map<string, { kind: 'pdb' | 'finalizer'; forMs: number | null; reason: string }>();
    const pdb = this.#fault(node, 'pdb-blocks-drain');
    if (pdb) {
      this.#struck(node, 'pdb-blocks-drain');
      terminationMs.set(PDB_POD(name), random.int(3_000, 25_000));
      protectedPods.set(PDB_POD(name), {
        kind: 'pdb',
        forMs: pdb.forSeconds === undefined ? null : pdb.forSeconds * 1000,
        reason: "Cannot evict pod as it would violate the pod's disruption budget.",
      });
    }
    const stuck = this.#fault(node, 'pod-stuck-terminating');
    if (stuck) {
      this.#struck(node, 'pod-stuck-terminating');
      terminationMs.set(STUCK_POD(name), random.int(3_000, 25_000));
      protectedPods.set(STUCK_POD(name), {
        kind: 'finalizer',
        forMs: stuck.forSeconds === undefined ? null : stuck.forSeconds * 1000,
        reason: `pod stuck Terminating: finalizer ${STUCK_FINALIZER} has not been removed`,
      });
    }
    return { terminationMs, protectedPods };
  }

  /**
   * Nodes NotReady or unschedulable (what the health gate looks at), as one list call. Kept as a set updated where
   * either changes, so that asking before every node start stays cheap in a 10,000-node simulation.
   */
  async unhealthyNodes(): Promise<ClusterNode[]> {
    this.#apiCall(null, 'list');
    const views: ClusterNode[] = [];
    for (const node of this.#troubled) {
      if (this.#nodes.get(node.spec.name) !== node) {
        this.#troubled.delete(node);
        continue;
      }
      const view = this.#view(node);
      if (view.ready && !view.unschedulable) this.#troubled.delete(node);
      else views.push(view);
    }
    return views;
  }

  async listNodes(): Promise<ClusterNode[]> {
    this.#apiCall(null, 'list');
    return [...this.#nodes.values()].map((n) => this.#view(n));
  }

  async getNode(name: string): Promise<ClusterNode | null> {
    const node = this.#nodes.get(name);
    if (!node) return null;
    this.#apiCall(node, 'get');
    return this.#view(node);
  }

  async cordon(name: string, owner: string, _signal?: AbortSignal, fence?: Fence): Promise<CordonResult> {
    const node = this.#require(name);
    this.#apiCall(node, 'cordon');
    if (node.unschedulable) return node.annotations[ANNOTATIONS.cordonedBy] === owner ? 'already-ours' : 'foreign';
    node.unschedulable = true;
    node.annotations[ANNOTATIONS.cordonedBy] = owner;
    if (fence) node.annotations[ANNOTATIONS.cordonGeneration] = String(fence.generation);
    this.#troubled.add(node);
    this.#cordonedInFlight.add(name);
    this.stats.maxCordonedByUs = Math.max(this.stats.maxCordonedByUs, this.#cordonedInFlight.size);
    if (node.spec.role === 'control-plane') {
      this.stats.maxControlPlanesCordoned = Math.max(this.stats.maxControlPlanesCordoned, this.#controlPlanesInFlight());
    }
    this.#onNodeChange(name);
    return 'cordoned';
  }

  async uncordon(name: string, owner: string): Promise<UncordonResult> {
    const node = this.#require(name);
    this.#apiCall(node, 'uncordon');
    if (!node.unschedulable) return 'not-cordoned';
    if (node.annotations[ANNOTATIONS.cordonedBy] !== owner) return 'not-ours';
    node.unschedulable = false;
    delete node.annotations[ANNOTATIONS.cordonedBy];
    delete node.annotations[ANNOTATIONS.cordonGeneration];
    this.#cordonedInFlight.delete(name);
    // The scheduler puts workloads back on a schedulable node.
    node.pods = podsOf(node.spec);
    node.gone.clear();
    this.#onNodeChange(name);
    return 'uncordoned';
  }

  /**
   * `kubectl drain` semantics: DaemonSet and static (mirror) pods stay; the others are evicted together and the drain
   * ends when the last one has terminated. A PodDisruptionBudget that allows no disruption refuses its pod's eviction
   * (HTTP 429) until it relaxes; a pod stuck terminating (a finalizer) keeps the drain waiting. At `giveUpAt` the
   * drain reports what is still in the way.
   */
  async drain(name: string, options: DrainOptions): Promise<DrainResult> {
    const node = this.#require(name);
    const started = this.#clock.now();
    const evictable = node.pods.filter(evicts);
    // kubectl drain's checks come first and evict nothing: the same rules (and words) as the Kubernetes adapter.
    const refused = drainRefusals(
      evictable.map((p) => ({ namespace: p.namespace, name: p.name, controlled: p.owner !== 'none', emptyDir: p.emptyDir === true })),
      options,
    );
    if (refused.length > 0) return { evicted: 0, blocked: refused, refused: true };
    const plan = this.#recorded.get(name)?.drain ?? this.#drainPlan(node, evictable.length);
    this.#observe({ type: 'drain', at: this.#virtual(started), node: name, ...plan });
    if (!this.#replaying) {
      for (const kind of ['pdb-blocks-drain', 'pod-stuck-terminating'] as const) if (this.#fault(node, kind)) this.#struck(node, kind);
    }
    const blockedUntil = plan.blocked.length === 0 ? started : plan.blockedForMs === null ? Infinity : started + plan.blockedForMs;
    const doneAt = Math.max(started + plan.ms, blockedUntil);
    if (doneAt > options.giveUpAt) {
      await sleep(this.#clock, Math.max(0, options.giveUpAt - started), options.signal);
      return { evicted: evictable.length - plan.blocked.length, blocked: plan.blocked };
    }
    await sleep(this.#clock, doneAt - started, options.signal);
    node.pods = node.pods.filter((p) => !evicts(p));
    this.#onNodeChange(name);
    return { evicted: evictable.length, blocked: [] };
  }

  async startPatchJob(spec: PatchJobSpec): Promise<{ jobName: string; created: boolean }> {
    const node = this.#require(spec.node);
    // This run's Job is found again after a crash and reused. An earlier run's Job can bear the same name (Palette's
    // names carry no hash; and a node that failed is retried with the same hash by the next run): it has finished,
    // and is replaced.
    if (this.#jobs.get(spec.jobName)?.runId === spec.runId) return { jobName: spec.jobName, created: false };
    this.#apiCall(node, 'create-job');
    const now = this.#clock.now();
    const patching = !spec.downloadOnly && !spec.reportOnly;
    const run = (patching ? this.#recorded.get(spec.node)?.patch : undefined) ?? this.#agentRun(node, spec, now);
    this.#jobs.set(spec.jobName, { name: spec.jobName, node: spec.node, runId: spec.runId, createdAt: now, run });
    this.#observe({
      type: 'patch',
      at: this.#virtual(now),
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
      const key = `${spec.node}@${spec.hash}`;
      this.stats.patchJobs.set(key, (this.stats.patchJobs.get(key) ?? 0) + 1);
      this.#apply(node, run, spec.holdPackages);
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
    const node = this.#require(name);
    if (node.rebootKeys.has(key)) return;
    node.rebootKeys.add(key);
    const now = this.#clock.now();
    const plan = this.#recorded.get(name)?.reboot ?? this.#rebootPlan(node, now);
    this.#observe({ type: 'reboot', at: this.#virtual(now), node: name, ...plan });
    await sleep(this.#clock, plan.shutdownMs, signal);
    node.ready = false;
    this.#troubled.add(node);
    node.backAt = plan.bootMs === null ? null : this.#clock.now() + plan.bootMs;
    this.#onNodeChange(name);
    if (plan.bootMs !== null && this.#watched) this.#clock.setTimeout(() => this.#settleBoot(node), plan.bootMs);
  }

  async awaitReady(name: string, notBootId: string, signal: AbortSignal): Promise<ClusterNode> {
    for (;;) {
      const node = this.#require(name);
      const view = this.#view(node);
      if (view.ready && view.bootId !== notBootId) return view;
      if (node.backAt === null) return untilAborted(signal);
      // Not yet down (shutdown still running) or a NotReady spell: look again in a while, as a watch would.
      const wait = node.backAt === undefined ? 5_000 : Math.max(0, node.backAt - this.#clock.now());
      await sleep(this.#clock, wait, signal);
    }
  }

  async patchNodeMetadata(name: string, patch: MetadataPatch): Promise<void> {
    const node = this.#require(name);
    this.#apiCall(node, 'patch');
    applyMetadataPatch(node, patch);
    this.#onNodeChange(name);
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

  #virtual(at: number): number {
    return at - this.#epoch;
  }

  #active(fault: Fault, now = this.#clock.now()): boolean {
    return fault.at === undefined || this.#virtual(now) >= fault.at;
  }

  #fault<K extends Fault['kind']>(node: SimNode, kind: K): Extract<Fault, { kind: K }> | undefined {
    return node.faults.find((f) => f.kind === kind && !node.spent.has(f) && this.#active(f)) as Extract<Fault, { kind: K }> | undefined;
  }

  #drainPlan(node: SimNode, evictable: number): { ms: number; blocked: BlockedEviction[]; blockedForMs: number | null } {
    const random = this.#random.of(`${node.spec.name}/drain`);
    let ms = 1_000;
    for (let i = 0; i < evictable; i++) ms = Math.max(ms, random.int(3_000, 25_000));
    ms += 1_000;
    const blocked: BlockedEviction[] = [];
    let blockedForMs: number | null = 0;
    const pdb = this.#fault(node, 'pdb-blocks-drain');
    if (pdb) {
      blocked.push({
        pod: PDB_POD(node.spec.name),
        namespace: 'shop',
        reason: 'Cannot evict pod as it would violate the pod\'s disruption budget: PodDisruptionBudget shop/web needs 2 healthy pods and has 2 currently',
      });
      blockedForMs = pdb.forSeconds === undefined ? null : pdb.forSeconds * 1000;
    }
    const stuck = this.#fault(node, 'pod-stuck-terminating');
    if (stuck) {
      blocked.push({ pod: STUCK_POD(node.spec.name), namespace: 'jobs', reason: `pod stuck Terminating: finalizer ${STUCK_FINALIZER} has not been removed` });
      const forMs = stuck.forSeconds === undefined ? null : stuck.forSeconds * 1000;
      blockedForMs = blockedForMs === null || forMs === null ? null : Math.max(blockedForMs, forMs);
    }
    return { ms, blocked, blockedForMs: blocked.length === 0 ? 0 : blockedForMs };
  }

  #agentRun(node: SimNode, spec: PatchJobSpec, now: number): AgentRun {
    const faults: AgentFaults = { ...NO_AGENT_FAULTS };
    // A scan, like a prefetch, never waits for the lock (it reads into a private directory): the lock stays for the patch.
    const lock = this.#lockHeldMs(node, now, spec.downloadOnly || spec.reportOnly === true);
    faults.lockHeldMs = lock;
    if (lock > 0) this.#struck(node, 'apt-lock');
    faults.keyserverUnreachable = this.#fault(node, 'keyserver-unreachable') !== undefined;
    faults.repoUnreachable = this.#fault(node, 'repo-unreachable') !== undefined;
    faults.diskFull = this.#fault(node, 'disk-full') !== undefined;
    const interrupted = this.#fault(node, 'dpkg-interrupted');
    faults.dpkgInterrupted = interrupted ? { recoverable: interrupted.recoverable } : null;
    const postinst = this.#fault(node, 'postinst-fails');
    if (postinst) faults.postinstFails = postinst.package ? packageNameOn(node.os, postinst.package) : (node.offered.security.find((p) => p !== node.os.kernelPackage && node.installed.has(p)) ?? null);
    const patching = !spec.downloadOnly && !spec.reportOnly;
    const crash = patching ? this.#fault(node, 'agent-crash') : undefined;
    if (crash) {
      faults.agentCrash = true;
      node.spent.add(crash);
    }
    if (patching) {
      const flags: Array<[boolean, Fault['kind']]> = [
        [faults.keyserverUnreachable && spec.agent === 'legacy' && node.os.family === 'apt', 'keyserver-unreachable'],
        [faults.repoUnreachable, 'repo-unreachable'],
        [faults.diskFull, 'disk-full'],
        [faults.dpkgInterrupted !== null && node.os.family === 'apt', 'dpkg-interrupted'],
        [faults.postinstFails !== null, 'postinst-fails'],
        [faults.agentCrash, 'agent-crash'],
        [node.faults.some((f) => f.kind === 'reboot-required') && node.offered.security.includes(node.os.kernelPackage), 'reboot-required'],
      ];
      for (const [hit, kind] of flags) if (hit) this.#struck(node, kind);
    }
    return runAgent({
      os: node.os,
      installed: node.installed,
      offered: node.offered,
      agent: spec.agent,
      securityOnly: spec.securityOnly,
      holdPackages: spec.holdPackages,
      lockTimeoutSeconds: spec.lockTimeoutSeconds,
      downloadOnly: spec.downloadOnly,
      reportOnly: spec.reportOnly === true,
      prefetched: patching && node.prefetched,
      faults,
      random: this.#random.of(`${node.spec.name}/${spec.reportOnly ? 'scan' : spec.downloadOnly ? 'prefetch' : 'patch'}`),
    });
  }

  /** How long the package manager's lock is still held when an agent starts on the node. */
  #lockHeldMs(node: SimNode, now: number, downloadOnly: boolean): number {
    const lock = node.faults.find((f) => f.kind === 'apt-lock' && !node.spent.has(f)) as Extract<Fault, { kind: 'apt-lock' }> | undefined;
    if (!lock || downloadOnly) return 0;
    if (lock.at === undefined) {
      // Held by unattended-upgrades at the moment the agent starts, once.
      node.spent.add(lock);
      return lock.holdSeconds * 1000;
    }
    const from = this.#epoch + lock.at;
    const until = from + lock.holdSeconds * 1000;
    return now >= from && now < until ? until - now : 0;
  }

  #rebootPlan(node: SimNode, now: number): { shutdownMs: number; bootMs: number | null } {
    const random = this.#random.of(`${node.spec.name}/reboot`);
    const shutdownMs = random.int(8_000, 20_000);
    let bootMs: number | null = random.int(45_000, 90_000);
    const fails = node.faults.find((f) => f.kind === 'rejoin-fails' && !node.spent.has(f) && this.#active(f, now));
    const slow = node.faults.find((f) => f.kind === 'rejoin-slow' && !node.spent.has(f) && this.#active(f, now)) as Extract<Fault, { kind: 'rejoin-slow' }> | undefined;
    if (fails) {
      node.spent.add(fails);
      bootMs = null;
      this.#struck(node, 'rejoin-fails');
    } else if (slow) {
      node.spent.add(slow);
      bootMs = slow.delaySeconds * 1000;
      this.#struck(node, 'rejoin-slow');
    }
    return { shutdownMs, bootMs };
  }

  /** What a finished agent changed on the node. */
  #apply(node: SimNode, run: AgentRun, holds: readonly string[]): void {
    node.prefetched = false;
    if (run.diesWithoutReport && node.os.family === 'apt' && !node.faults.some((f) => f.kind === 'dpkg-interrupted' && !node.spent.has(f))) {
      // The killed agent's dpkg run never finished: the next agent on this node finds it interrupted and repairs it.
      node.faults.push({ kind: 'dpkg-interrupted', recoverable: true });
    }
    for (const change of run.report.upgraded) {
      node.installed.set(change.name, change.to);
      if (holds.includes(change.name)) this.stats.heldUpgraded.push(`${node.spec.name}:${change.name}`);
      if ((KUBERNETES_PACKAGES as readonly string[]).includes(change.name)) this.stats.kubernetesUpgraded.push(`${node.spec.name}:${change.name}`);
      node.offered.security = node.offered.security.filter((p) => p !== change.name);
      node.offered.other = node.offered.other.filter((p) => p !== change.name);
    }
    if (run.report.rebootRequired) node.rebootRequired = true;
  }

  /** Counts the call; an api-errors fault may fail it with a retryable 429/500/409. */
  #apiCall(node: SimNode | null, call: string): void {
    if (!this.#apiErrorsAtPort) return;
    const status = this.#apiStatus(node, call);
    if (status === undefined) return;
    const name = node?.spec.name ?? '(cluster)';
    const text = status === 429 ? 'Too Many Requests' : status === 409 ? 'Conflict: the object has been modified' : 'Internal Server Error';
    throw new EffectError('API_ERROR', `HTTP ${status} ${text} from the API server (${call} ${name})`, true);
  }

  /**
   * The sandbox's question for each HTTP request: does an api-errors fault fail this call (`node` null for calls not
   * about one node)? Returns the HTTP status to answer with, or undefined.
   */
  apiFault(nodeName: string | null, call: string): number | undefined {
    const node = nodeName === null ? null : (this.#nodes.get(nodeName) ?? null);
    return this.#apiStatus(node, call);
  }

  #apiStatus(node: SimNode | null, call: string): number | undefined {
    const name = node?.spec.name ?? '(cluster)';
    const calls = node?.calls ?? this.#clusterCalls;
    const ordinal = (calls.get(call) ?? 0) + 1;
    calls.set(call, ordinal);
    let status: number | undefined;
    if (this.#replaying) status = this.#recorded.get(name)?.apiErrors?.get(`${call}#${ordinal}`);
    else {
      // Every API call passes here: look through the two lists without building a third.
      const isActive = (f: Fault): f is Extract<Fault, { kind: 'api-errors' }> => f.kind === 'api-errors' && this.#activeFor(f);
      const fault = node?.faults.find(isActive) ?? this.#clusterFaults.find(isActive);
      if (fault && this.#random.of(`${name}/api`).chance(fault.rate)) status = fault.status;
    }
    if (status === undefined) return undefined;
    if (!this.#apiErrorsMarked.has(name)) {
      // One marker per node (and one for the cluster's own calls) says where the errors began.
      this.#apiErrorsMarked.add(name);
      this.#observe({ type: 'fault', at: this.#virtual(this.#clock.now()), node: node ? name : null, kind: 'api-errors' });
    }
    this.#observe({ type: 'api-error', at: this.#virtual(this.#clock.now()), node: name, call, ordinal, status });
    return status;
  }

  readonly #clusterCalls = new Map<string, number>();
  readonly #apiErrorsMarked = new Set<string>();

  #struck(node: SimNode, kind: Fault['kind']): void {
    this.#observe({ type: 'fault', at: this.#virtual(this.#clock.now()), node: node.spec.name, kind });
  }

  /** A fault with a span: from `at` (default 0) for `forSeconds` (default: for ever). */
  #activeFor(fault: { at?: number | undefined; forSeconds?: number | undefined }): boolean {
    const now = this.#virtual(this.#clock.now());
    const from = fault.at ?? 0;
    return now >= from && (fault.forSeconds === undefined || now < from + fault.forSeconds * 1000);
  }

  #scheduleTimedFaults(faults: readonly Fault[]): void {
    // A blocking pod appears and goes: its node's pods change (the sandbox renders them); an alert leaves a marker.
    this.#blockingFaults.forEach((fault) => {
      const from = fault.at ?? 0;
      const node = fault.node ?? this.#firstNode();
      const change = (what: 'start' | 'end') => () => {
        if (what === 'start') this.#observe({ type: 'fault', at: this.#virtual(this.#clock.now()), node, kind: 'blocking-pod' });
        if (this.#nodes.has(node)) this.#onNodeChange(node);
      };
      this.#clock.setTimeout(change('start'), Math.max(0, this.#epoch + from - this.#clock.now()));
      if (fault.forSeconds !== undefined) this.#clock.setTimeout(change('end'), Math.max(0, this.#epoch + from + fault.forSeconds * 1000 - this.#clock.now()));
    });
    for (const fault of this.#alertFaults) {
      this.#clock.setTimeout(
        () => this.#observe({ type: 'fault', at: this.#virtual(this.#clock.now()), node: fault.node ?? null, kind: 'alert-firing' }),
        Math.max(0, this.#epoch + (fault.at ?? 0) - this.#clock.now()),
      );
    }
    for (const fault of faults) {
      if (fault.kind !== 'node-not-ready' || fault.at === undefined || fault.node === undefined) continue;
      const name = fault.node;
      const forSeconds = fault.forSeconds;
      this.#clock.setTimeout(() => {
        const node = this.#nodes.get(name);
        if (node) this.#setReady(node, false, forSeconds);
      }, Math.max(0, this.#epoch + fault.at - this.#clock.now()));
    }
  }

  #setReady(node: SimNode, ready: boolean, forSeconds?: number): void {
    node.ready = ready;
    if (!ready) this.#troubled.add(node);
    if (!ready) this.#struck(node, 'node-not-ready');
    this.#observe({ type: 'node-state', at: this.#virtual(this.#clock.now()), node: node.spec.name, ready });
    this.#onNodeChange(node.spec.name);
    if (!ready && forSeconds !== undefined) {
      this.#clock.setTimeout(() => this.#setReady(node, true), forSeconds * 1000);
    }
  }

  #require(name: string): SimNode {
    const node = this.#nodes.get(name);
    if (!node) throw new EffectError('NODE_GONE', `node "${name}" does not exist in cluster ${this.name}`);
    this.#settleBoot(node);
    return node;
  }

  /** A boot completes by itself once its time has come. */
  #settleBoot(node: SimNode): void {
    if (node.backAt === undefined || node.backAt === null || this.#clock.now() < node.backAt) return;
    node.backAt = undefined;
    node.ready = true;
    node.bootCount += 1;
    node.rebootRequired = false;
    this.#onNodeChange(node.spec.name);
  }

  #view(node: SimNode): ClusterNode {
    this.#settleBoot(node);
    return {
      name: node.spec.name,
      labels: { ...node.labels },
      annotations: { ...node.annotations },
      unschedulable: node.unschedulable,
      ready: node.ready,
      bootId: `${node.spec.name}-boot-${node.bootCount}`,
      kubeletVersion: node.kubeletVersion,
      osImage: node.os.osImage,
    };
  }
}

/** The pod a pdb-blocks-drain fault's PodDisruptionBudget protects, and the one a finalizer keeps Terminating. */
export const PDB_POD = (node: string) => `web-${node}`;
export const STUCK_POD = (node: string) => `worker-queue-${node}`;
export const STUCK_FINALIZER = 'example.com/drain-protection';
/** The pod a blocking-pod fault puts on its node (the i-th fault of the scenario). */
export const BLOCKING_POD = (i: number, node: string) => `blocker-${i + 1}-${node}`;

function podsOf(spec: SimNodeSpec): SimPod[] {
  const pods: SimPod[] = [];
  for (let i = 0; i < spec.pods.deployment; i++) pods.push({ name: `app-${spec.name}-${i + 1}`, namespace: 'apps', owner: 'Deployment' });
  for (let i = 0; i < spec.pods.daemonset; i++) pods.push({ name: `ds-${i + 1}-${spec.name}`, namespace: 'kube-system', owner: 'DaemonSet' });
  const statics = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'etcd'];
  for (let i = 0; i < spec.pods.static; i++) pods.push({ name: `${statics[i % statics.length]}-${spec.name}`, namespace: 'kube-system', owner: 'static' });
  for (let i = 0; i < (spec.pods.bare ?? 0); i++) pods.push({ name: `debug-${spec.name}-${i + 1}`, namespace: 'apps', owner: 'none' });
  for (let i = 0; i < (spec.pods.emptyDir ?? 0); i++) pods.push({ name: `cache-${spec.name}-${i + 1}`, namespace: 'apps', owner: 'Deployment', emptyDir: true });
  return pods;
}
