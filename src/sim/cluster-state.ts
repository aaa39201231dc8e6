/**
 * The simulated cluster's state and what its nodes do on their own: nodes with an OS, pods with owners, installed
 * packages and the updates their repositories offer, a boot id, a Ready condition and a kubelet version; faults (data,
 * src/sim/scenario.ts) applied when a node reaches what they concern, or at a time; the models of a drain, an agent
 * run and a reboot, drawn from seeded per-node streams.
 *
 * Two readers: the ClusterPort over it (cluster.ts), and the sandbox (src/sim/sandbox), which reads and writes this
 * raw state directly to keep Kubernetes API objects in step with it (`nodeView`, `setNodeMetadata`, `podsOn`,
 * `podGone`, `evictionPlan`, `apiFault`, ...). Everything a node did is reported as an Observation, so a run can be
 * recorded and replayed with nodes behaving exactly as they did (src/sim/replay.ts).
 */
import type { Clock } from '../engine/clock.ts';
import type { BlockedEviction, NodeHealth } from '../engine/effects.ts';
import { EffectError } from '../engine/effects.ts';
import { ANNOTATIONS } from '../engine/metadata.ts';
import type { AgentReport } from '../engine/report.ts';
import { CONTROL_PLANE_LABELS, OS_LABEL, ZONE_LABEL } from '../engine/selection.ts';
import { holdMatches } from '../engine/plan.ts';
import type { ClusterNode, PatchJobSpec } from '../cluster/port.ts';
import { NO_AGENT_FAULTS, runAgent, type AgentFaults, type AgentRun } from './agent-model.ts';
import type { InvariantMonitor } from './invariants.ts';
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
export const evicts = (pod: SimPod) => pod.owner === 'Deployment' || pod.owner === 'none';

/** The node an observation names when it concerns no node (an API call on the cluster as a whole). */
export const CLUSTER_WIDE = '(cluster)';

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

export type DrainPlan = NonNullable<RecordedBehaviour['drain']>;
export type RebootPlan = NonNullable<RecordedBehaviour['reboot']>;

/** The updates offered to a node, by source. */
export interface Offer {
  readonly security: readonly string[];
  readonly other: readonly string[];
}

const NO_FAULTS: readonly Fault[] = Object.freeze([]);
const offers = new Map<string, Offer>();

/** One frozen offer per content: 100,000 nodes offered the same updates share one (and, once patched, one empty). */
function sharedOffer(security: string[], other: string[]): Offer {
  // A package name may hold any character but cannot make two lists one JSON text.
  const key = JSON.stringify([security, other]);
  let offer = offers.get(key);
  if (!offer) offers.set(key, (offer = Object.freeze({ security: Object.freeze(security), other: Object.freeze(other) })));
  return offer;
}

export interface SimNode {
  spec: SimNodeSpec;
  os: OsProfile;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  unschedulable: boolean;
  ready: boolean;
  bootCount: number;
  kubeletVersion: string;
  installed: InstalledPackages;
  /** Shared between nodes offered the same (never changed in place: a patch replaces it). */
  offered: Offer;
  /**
   * The node's pods; null while they are the ones its spec schedules (podsNow makes them when asked), so that the
   * nodes of a 100,000-node simulation that are not being drained hold no pod list.
   */
  pods: SimPod[] | null;
  /**
   * The idempotency keys of the reboots asked for: the one key most nodes ever see, a set from the second on (a set
   * per rebooted node was a large part of a 100,000-node run's memory). `spent` and `gone` are created on first use.
   */
  rebootKeys: string | Set<string> | null;
  /** When the boot in progress completes; null: it never will. Undefined: not rebooting. */
  backAt: number | null | undefined;
  rebootRequired: boolean;
  /** API calls so far, by call (an object: a Map per node cost four times the memory). */
  calls: Record<string, number>;
  /** Never changed in place (a node without faults shares one empty list): a new fault replaces the list. */
  faults: readonly Fault[];
  /** Faults used up (an apt lock released, an agent crash that happened). */
  spent: Set<Fault> | null;
  /** Fault-protected pods (sandbox) that have terminated; the scheduler brings them back with the others. */
  gone: Set<string> | null;
  /** A download-only Job filled the package cache: the next patch skips the download. */
  prefetched: boolean;
  /** Virtual time the scheduler put workloads on a node that joined (null: not yet, or it was there from the start). */
  workloadsLandedAt: number | null;
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

export class SimClusterState {
  readonly name: string;
  readonly clock: Clock;
  readonly invariants: InvariantMonitor;
  readonly #epoch: number;
  readonly #random: RandomStreams;
  readonly #updates: Updates;
  readonly #nodes = new Map<string, SimNode>();
  readonly #clusterFaults: Fault[];
  /** Nodes that may be NotReady or unschedulable: a superset, pruned when read (unhealthyNodes). */
  readonly #troubled = new Set<SimNode>();
  readonly #blockingFaults: Extract<Fault, { kind: 'blocking-pod' }>[];
  readonly #alertFaults: Extract<Fault, { kind: 'alert-firing' }>[];
  readonly #faultsByNode = new Map<string, Fault[]>();
  readonly #observe: (observation: Observation) => void;
  readonly #recorded: ReadonlyMap<string, RecordedBehaviour>;
  /** Replaying a recording: nodes do what they were recorded doing, and nothing the model would draw. */
  readonly replaying: boolean;
  readonly #onNodeChange: (name: string) => void;
  /** Someone watches node changes: a boot must complete at its time, not when the node is next read. */
  readonly watched: boolean;
  readonly #apiErrorsAtPort: boolean;
  readonly #clusterCalls: Record<string, number> = {};
  readonly #apiErrorsMarked = new Set<string>();

  constructor(nodes: readonly SimNodeSpec[], options: SimClusterOptions, invariants: InvariantMonitor) {
    this.name = options.name;
    this.clock = options.clock;
    this.invariants = invariants;
    this.#epoch = options.epoch;
    this.#random = new RandomStreams(options.seed);
    this.#updates = options.updates;
    this.#observe = options.observe ?? (() => {});
    this.#recorded = options.recorded ?? new Map();
    this.replaying = options.recorded !== undefined;
    this.#onNodeChange = options.onNodeChange ?? (() => {});
    this.watched = options.onNodeChange !== undefined;
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

  // --- Nodes joining, leaving and changing outside the engine (scenario events, the sandbox's clients). ---

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
    const faults = this.#faultsByNode.get(spec.name) ?? NO_FAULTS;
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
      offered: sharedOffer([...new Set(security)], updates.other.map((p) => packageNameOn(os, p))),
      pods: null,
      rebootKeys: null,
      backAt: undefined,
      rebootRequired: false,
      calls: {},
      faults,
      spent: null,
      gone: null,
      prefetched: false,
      workloadsLandedAt: null,
    };
    const notReady = faults.find((f) => f.kind === 'node-not-ready' && f.at === undefined);
    if (notReady) this.#setReady(node, false, notReady.kind === 'node-not-ready' ? notReady.forSeconds : undefined);
    if (options.joining) {
      node.pods = podsOf(spec).filter((p) => p.owner !== 'Deployment');
      this.clock.setTimeout(() => {
        if (this.#nodes.get(spec.name) !== node || node.unschedulable) return;
        node.pods = null;
        node.workloadsLandedAt = this.virtual(this.clock.now());
        this.invariants.workloadsLanded(spec.name);
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
    this.invariants.released(name);
  }

  /** Scenario event `exclude`: the task label set to "disabled". */
  setLabel(name: string, key: string, value: string): void {
    this.require(name).labels[key] = value;
    this.#onNodeChange(name);
  }

  /** Scenario event `cordon`: someone else cordons the node. */
  cordonByOthers(name: string): void {
    const node = this.require(name);
    if (!node.unschedulable) node.unschedulable = true;
    this.#troubled.add(node);
    this.#onNodeChange(name);
  }

  /**
   * What a PATCH or PUT of the Node object set (kubectl, the Kubernetes adapter): metadata and the cordon, written as
   * they are. A cordon carrying our cordoned-by annotation counts as ours for the invariants, as `cordon` does.
   */
  setNodeMetadata(name: string, next: { labels: Record<string, string>; annotations: Record<string, string>; unschedulable: boolean }): void {
    const node = this.require(name);
    const wasCordoned = node.unschedulable;
    node.labels = { ...next.labels };
    node.annotations = { ...next.annotations };
    node.unschedulable = next.unschedulable;
    if (next.unschedulable) this.#troubled.add(node);
    if (next.unschedulable && next.annotations[ANNOTATIONS.cordonedBy] !== undefined && !this.invariants.isCordonedInFlight(name)) {
      this.invariants.cordoned(name, node.spec.role === 'control-plane');
    }
    if (!next.unschedulable) this.invariants.released(name);
    // The scheduler puts workloads back on a node that became schedulable.
    if (wasCordoned && !next.unschedulable) this.podsBack(node);
    this.#onNodeChange(name);
  }

  // --- Reading the state. ---

  /** Read-only facts for reports and invariants. */
  nodeFacts(name: string) {
    const node = this.#nodes.get(name);
    if (!node) return null;
    this.settleBoot(node);
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

  /** The node as a ClusterPort would report it, without counting an API call. */
  nodeView(name: string): ClusterNode | null {
    const node = this.#nodes.get(name);
    return node ? this.view(node) : null;
  }

  /** The pods on a node, with those a drain fault protects (a PodDisruptionBudget's pod, a pod with a finalizer). */
  podsOn(name: string): SimPod[] {
    const node = this.require(name);
    const pods = [...podsNow(node)];
    if (node.faults.some((f) => f.kind === 'pdb-blocks-drain') && node.gone?.has(PDB_POD(name)) !== true) {
      pods.push({ name: PDB_POD(name), namespace: 'shop', owner: 'Deployment' });
    }
    if (node.faults.some((f) => f.kind === 'pod-stuck-terminating') && node.gone?.has(STUCK_POD(name)) !== true) {
      pods.push({ name: STUCK_POD(name), namespace: 'jobs', owner: 'Deployment' });
    }
    this.#blockingFaults.forEach((fault, i) => {
      if ((fault.node ?? this.#firstNode()) === name && this.activeFor(fault)) {
        // A mirror pod, so that no drain ever evicts it: it blocks until its time is over.
        pods.push({ name: BLOCKING_POD(i, name), namespace: 'default', owner: 'static', labels: { app: `blocker-${i + 1}`, ...fault.labels } });
      }
    });
    return pods;
  }

  /** The alert-firing faults active now, as Prometheus would list them. */
  firingAlerts(): string[] {
    return this.#alertFaults.filter((f) => this.activeFor(f)).map((f) => f.name);
  }

  /**
   * The nodes that are NotReady or unschedulable, as the health gate sees them. The candidates are kept as a set
   * updated where either changes, and each node's answer is one frozen object reused while its state holds: the gate
   * asks before every node start, and late in a 100,000-node run thousands of failed nodes were copied at each ask.
   */
  unhealthyNodes(): NodeHealth[] {
    const unhealthy: NodeHealth[] = [];
    for (const node of this.#troubled) {
      if (this.#nodes.get(node.spec.name) !== node) {
        this.#troubled.delete(node);
        continue;
      }
      const health = this.#healthOf(node);
      if (health.ready && !health.unschedulable) this.#troubled.delete(node);
      else unhealthy.push(health);
    }
    return unhealthy;
  }

  readonly #health = new WeakMap<SimNode, Readonly<NodeHealth>>();

  #healthOf(node: SimNode): Readonly<NodeHealth> {
    this.settleBoot(node);
    const cordonedBy = node.annotations[ANNOTATIONS.cordonedBy] ?? null;
    const known = this.#health.get(node);
    if (known?.ready === node.ready && known.unschedulable === node.unschedulable && known.cordonedBy === cordonedBy) return known;
    const health = Object.freeze({ name: node.spec.name, ready: node.ready, unschedulable: node.unschedulable, cordonedBy });
    this.#health.set(node, health);
    return health;
  }

  allNodes(): IterableIterator<SimNode> {
    return this.#nodes.values();
  }

  hasNode(name: string): boolean {
    return this.#nodes.has(name);
  }

  // --- The sandbox's drain: evictions, and pods that finished terminating. ---

  /** An evicted pod finished terminating. */
  podGone(name: string, pod: string): void {
    const node = this.require(name);
    node.pods = podsNow(node).filter((p) => p.name !== pod);
    if (pod === PDB_POD(name) || pod === STUCK_POD(name)) (node.gone ??= new Set()).add(pod);
    this.#onNodeChange(name);
  }

  /**
   * A drain as the Eviction API sees it (the sandbox): how long each evictable pod takes to terminate, and which pods a
   * fault protects and for how long from the first eviction (null: until the fault is gone, never here). Draws from
   * the same stream and faults as the port's drain, so a node drains alike through either.
   */
  evictionPlan(name: string): { terminationMs: Map<string, number>; protectedPods: Map<string, { kind: 'pdb' | 'finalizer'; forMs: number | null; reason: string }> } {
    const node = this.require(name);
    const random = this.#random.of(name, 'drain');
    const terminationMs = new Map<string, number>();
    for (const pod of podsNow(node)) if (evicts(pod)) terminationMs.set(pod.name, random.int(3_000, 25_000));
    const protectedPods = new Map<string, { kind: 'pdb' | 'finalizer'; forMs: number | null; reason: string }>();
    const pdb = this.fault(node, 'pdb-blocks-drain');
    if (pdb) {
      this.struck(node, 'pdb-blocks-drain');
      terminationMs.set(PDB_POD(name), random.int(3_000, 25_000));
      protectedPods.set(PDB_POD(name), {
        kind: 'pdb',
        forMs: pdb.forSeconds === undefined ? null : pdb.forSeconds * 1000,
        reason: "Cannot evict pod as it would violate the pod's disruption budget.",
      });
    }
    const stuck = this.fault(node, 'pod-stuck-terminating');
    if (stuck) {
      this.struck(node, 'pod-stuck-terminating');
      terminationMs.set(STUCK_POD(name), random.int(3_000, 25_000));
      protectedPods.set(STUCK_POD(name), {
        kind: 'finalizer',
        forMs: stuck.forSeconds === undefined ? null : stuck.forSeconds * 1000,
        reason: `pod stuck Terminating: finalizer ${STUCK_FINALIZER} has not been removed`,
      });
    }
    return { terminationMs, protectedPods };
  }

  // --- API errors. ---

  /** Counts a ClusterPort call; an api-errors fault may fail it with a retryable 429/500/409. */
  apiCall(node: SimNode | null, call: string): void {
    if (!this.#apiErrorsAtPort) return;
    const status = this.#apiStatus(node, call);
    if (status === undefined) return;
    const name = node?.spec.name ?? CLUSTER_WIDE;
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
    const name = node?.spec.name ?? CLUSTER_WIDE;
    const calls = node?.calls ?? this.#clusterCalls;
    const ordinal = (calls[call] ?? 0) + 1;
    calls[call] = ordinal;
    let status: number | undefined;
    if (this.replaying) status = this.#recorded.get(name)?.apiErrors?.get(`${call}#${ordinal}`);
    else {
      // Every API call passes here: look through the two lists without building a third.
      const isActive = (f: Fault): f is Extract<Fault, { kind: 'api-errors' }> => f.kind === 'api-errors' && this.activeFor(f);
      const fault = node?.faults.find(isActive) ?? this.#clusterFaults.find(isActive);
      if (fault && this.#random.of(name, 'api').chance(fault.rate)) status = fault.status;
    }
    if (status === undefined) return undefined;
    if (!this.#apiErrorsMarked.has(name)) {
      // One marker per node (and one for the cluster's own calls) says where the errors began.
      this.#apiErrorsMarked.add(name);
      this.#observe({ type: 'fault', at: this.virtual(this.clock.now()), node: node ? name : null, kind: 'api-errors' });
    }
    this.#observe({ type: 'api-error', at: this.virtual(this.clock.now()), node: name, call, ordinal, status });
    return status;
  }

  // --- What nodes do: the models behind the port's drain, patch Job and reboot. ---

  /** The node, its pending boot settled; NODE_GONE if it does not exist. */
  require(name: string): SimNode {
    const node = this.#nodes.get(name);
    if (!node) throw new EffectError('NODE_GONE', `node "${name}" does not exist in cluster ${this.name}`);
    this.settleBoot(node);
    return node;
  }

  /** The node, if it exists (its boot not settled). */
  find(name: string): SimNode | undefined {
    return this.#nodes.get(name);
  }

  /** Something a Kubernetes API would show changed on the node. */
  changed(name: string): void {
    this.#onNodeChange(name);
  }

  /** The node may now be unschedulable or NotReady (the health gate's candidates). */
  troubled(node: SimNode): void {
    this.#troubled.add(node);
  }

  observe(observation: Observation): void {
    this.#observe(observation);
  }

  /** What a replay says the node did instead of the model. */
  recorded(name: string): RecordedBehaviour | undefined {
    return this.#recorded.get(name);
  }

  /** The scheduler puts the node's workloads back (it became schedulable). */
  podsBack(node: SimNode): void {
    node.pods = null;
    node.gone = null;
  }

  virtual(at: number): number {
    return at - this.#epoch;
  }

  #active(fault: Fault, now = this.clock.now()): boolean {
    return fault.at === undefined || this.virtual(now) >= fault.at;
  }

  /** The node's fault of this kind that is in force now and not used up. */
  fault<K extends Fault['kind']>(node: SimNode, kind: K): Extract<Fault, { kind: K }> | undefined {
    return node.faults.find((f) => f.kind === kind && node.spent?.has(f) !== true && this.#active(f)) as Extract<Fault, { kind: K }> | undefined;
  }

  drainPlan(node: SimNode, evictable: number): DrainPlan {
    const random = this.#random.of(node.spec.name, 'drain');
    let ms = 1_000;
    for (let i = 0; i < evictable; i++) ms = Math.max(ms, random.int(3_000, 25_000));
    ms += 1_000;
    const blocked: BlockedEviction[] = [];
    let blockedForMs: number | null = 0;
    const pdb = this.fault(node, 'pdb-blocks-drain');
    if (pdb) {
      blocked.push({
        pod: PDB_POD(node.spec.name),
        namespace: 'shop',
        reason: 'Cannot evict pod as it would violate the pod\'s disruption budget: PodDisruptionBudget shop/web needs 2 healthy pods and has 2 currently',
      });
      blockedForMs = pdb.forSeconds === undefined ? null : pdb.forSeconds * 1000;
    }
    const stuck = this.fault(node, 'pod-stuck-terminating');
    if (stuck) {
      blocked.push({ pod: STUCK_POD(node.spec.name), namespace: 'jobs', reason: `pod stuck Terminating: finalizer ${STUCK_FINALIZER} has not been removed` });
      const forMs = stuck.forSeconds === undefined ? null : stuck.forSeconds * 1000;
      blockedForMs = blockedForMs === null || forMs === null ? null : Math.max(blockedForMs, forMs);
    }
    return { ms, blocked, blockedForMs: blocked.length === 0 ? 0 : blockedForMs };
  }

  agentRun(node: SimNode, spec: PatchJobSpec, now: number): AgentRun {
    const faults: AgentFaults = { ...NO_AGENT_FAULTS };
    // A scan, like a prefetch, never waits for the lock (it reads into a private directory): the lock stays for the patch.
    const lock = this.#lockHeldMs(node, now, spec.downloadOnly || spec.reportOnly === true);
    faults.lockHeldMs = lock;
    if (lock > 0) this.struck(node, 'apt-lock');
    faults.keyserverUnreachable = this.fault(node, 'keyserver-unreachable') !== undefined;
    faults.repoUnreachable = this.fault(node, 'repo-unreachable') !== undefined;
    faults.diskFull = this.fault(node, 'disk-full') !== undefined;
    const interrupted = this.fault(node, 'dpkg-interrupted');
    faults.dpkgInterrupted = interrupted ? { recoverable: interrupted.recoverable } : null;
    const postinst = this.fault(node, 'postinst-fails');
    if (postinst) faults.postinstFails = postinst.package ? packageNameOn(node.os, postinst.package) : (node.offered.security.find((p) => p !== node.os.kernelPackage && node.installed.has(p)) ?? null);
    const patching = !spec.downloadOnly && !spec.reportOnly;
    const crash = patching ? this.fault(node, 'agent-crash') : undefined;
    if (crash) {
      faults.agentCrash = true;
      (node.spent ??= new Set()).add(crash);
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
      for (const [hit, kind] of flags) if (hit) this.struck(node, kind);
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
      random: this.#random.of(node.spec.name, spec.reportOnly ? 'scan' : spec.downloadOnly ? 'prefetch' : 'patch'),
    });
  }

  /** How long the package manager's lock is still held when an agent starts on the node. */
  #lockHeldMs(node: SimNode, now: number, downloadOnly: boolean): number {
    const lock = node.faults.find((f) => f.kind === 'apt-lock' && node.spent?.has(f) !== true) as Extract<Fault, { kind: 'apt-lock' }> | undefined;
    if (!lock || downloadOnly) return 0;
    if (lock.at === undefined) {
      // Held by unattended-upgrades at the moment the agent starts, once.
      (node.spent ??= new Set()).add(lock);
      return lock.holdSeconds * 1000;
    }
    const from = this.#epoch + lock.at;
    const until = from + lock.holdSeconds * 1000;
    return now >= from && now < until ? until - now : 0;
  }

  rebootPlan(node: SimNode, now: number): RebootPlan {
    const random = this.#random.of(node.spec.name, 'reboot');
    const shutdownMs = random.int(8_000, 20_000);
    let bootMs: number | null = random.int(45_000, 90_000);
    const fails = node.faults.find((f) => f.kind === 'rejoin-fails' && node.spent?.has(f) !== true && this.#active(f, now));
    const slow = node.faults.find((f) => f.kind === 'rejoin-slow' && node.spent?.has(f) !== true && this.#active(f, now)) as Extract<Fault, { kind: 'rejoin-slow' }> | undefined;
    if (fails) {
      (node.spent ??= new Set()).add(fails);
      bootMs = null;
      this.struck(node, 'rejoin-fails');
    } else if (slow) {
      (node.spent ??= new Set()).add(slow);
      bootMs = slow.delaySeconds * 1000;
      this.struck(node, 'rejoin-slow');
    }
    return { shutdownMs, bootMs };
  }

  /** What a finished agent changed on the node. */
  applyAgentRun(node: SimNode, run: AgentRun, holds: readonly string[]): void {
    node.prefetched = false;
    if (run.diesWithoutReport && node.os.family === 'apt' && !node.faults.some((f) => f.kind === 'dpkg-interrupted' && node.spent?.has(f) !== true)) {
      // The killed agent's dpkg run never finished: the next agent on this node finds it interrupted and repairs it.
      node.faults = [...node.faults, { kind: 'dpkg-interrupted', recoverable: true }];
    }
    for (const change of run.report.upgraded) {
      node.installed.set(change.name, change.to);
      this.invariants.upgraded(node.spec.name, change.name, {
        held: holds.some((hold) => holdMatches(hold, change.name)),
        kubernetes: (KUBERNETES_PACKAGES as readonly string[]).includes(change.name),
      });
      node.offered = sharedOffer(
        node.offered.security.filter((p) => p !== change.name),
        node.offered.other.filter((p) => p !== change.name),
      );
    }
    if (run.report.rebootRequired) node.rebootRequired = true;
  }

  /** A fault took effect on the node (a marker on the timeline). */
  struck(node: SimNode, kind: Fault['kind']): void {
    this.#observe({ type: 'fault', at: this.virtual(this.clock.now()), node: node.spec.name, kind });
  }

  /** A fault with a span: from `at` (default 0) for `forSeconds` (default: for ever). */
  activeFor(fault: { at?: number | undefined; forSeconds?: number | undefined }): boolean {
    const now = this.virtual(this.clock.now());
    const from = fault.at ?? 0;
    return now >= from && (fault.forSeconds === undefined || now < from + fault.forSeconds * 1000);
  }

  #firstNode(): string {
    return this.#nodes.keys().next().value ?? '';
  }

  #scheduleTimedFaults(faults: readonly Fault[]): void {
    const clock = this.clock;
    // A blocking pod appears and goes: its node's pods change (the sandbox renders them); an alert leaves a marker.
    this.#blockingFaults.forEach((fault) => {
      const from = fault.at ?? 0;
      const node = fault.node ?? this.#firstNode();
      const change = (what: 'start' | 'end') => () => {
        if (what === 'start') this.#observe({ type: 'fault', at: this.virtual(clock.now()), node, kind: 'blocking-pod' });
        if (this.#nodes.has(node)) this.#onNodeChange(node);
      };
      clock.setTimeout(change('start'), Math.max(0, this.#epoch + from - clock.now()));
      if (fault.forSeconds !== undefined) clock.setTimeout(change('end'), Math.max(0, this.#epoch + from + fault.forSeconds * 1000 - clock.now()));
    });
    for (const fault of this.#alertFaults) {
      clock.setTimeout(
        () => this.#observe({ type: 'fault', at: this.virtual(clock.now()), node: fault.node ?? null, kind: 'alert-firing' }),
        Math.max(0, this.#epoch + (fault.at ?? 0) - clock.now()),
      );
    }
    for (const fault of faults) {
      if (fault.kind !== 'node-not-ready' || fault.at === undefined || fault.node === undefined) continue;
      const name = fault.node;
      const forSeconds = fault.forSeconds;
      clock.setTimeout(() => {
        const node = this.#nodes.get(name);
        if (node) this.#setReady(node, false, forSeconds);
      }, Math.max(0, this.#epoch + fault.at - clock.now()));
    }
  }

  #setReady(node: SimNode, ready: boolean, forSeconds?: number): void {
    node.ready = ready;
    if (!ready) this.#troubled.add(node);
    if (!ready) this.struck(node, 'node-not-ready');
    this.#observe({ type: 'node-state', at: this.virtual(this.clock.now()), node: node.spec.name, ready });
    this.#onNodeChange(node.spec.name);
    if (!ready && forSeconds !== undefined) {
      this.clock.setTimeout(() => this.#setReady(node, true), forSeconds * 1000);
    }
  }

  /** A boot completes by itself once its time has come. */
  settleBoot(node: SimNode): void {
    if (node.backAt === undefined || node.backAt === null || this.clock.now() < node.backAt) return;
    node.backAt = undefined;
    node.ready = true;
    node.bootCount += 1;
    node.rebootRequired = false;
    this.#onNodeChange(node.spec.name);
  }

  /** The node as the API reports it (a copy: callers may keep or change it). */
  view(node: SimNode): ClusterNode {
    this.settleBoot(node);
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

/** The pods on a node now. */
export function podsNow(node: SimNode): SimPod[] {
  return node.pods ?? podsOf(node.spec);
}

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
