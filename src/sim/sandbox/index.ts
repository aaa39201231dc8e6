/**
 * The sandbox: a simulated cluster (SimCluster) bound to an in-memory Kubernetes API (src/sim/kube-api), so that real
 * clients (kubectl, the Kubernetes adapter, client-node) see Nodes, Pods, Jobs, Events and Leases behave as in a
 * cluster. SimCluster stays the one source of truth for what nodes do; this module keeps the API objects in step
 * with it both ways:
 * - the simulator → the API: every node change re-renders the Node object (Ready, bootID, labels, the cordon) and the
 *   workload pods on it;
 * - the API → the simulator: a client's patch of a Node (label, cordon) is written into the SimCluster; an eviction
 *   or a pod delete terminates the pod after the time the simulator draws, refused while a PodDisruptionBudget fault
 *   protects it, or stuck while a finalizer fault holds it; a Job runs the simulated agent (kubelet.ts).
 * api-errors faults fail HTTP requests with the same rates as they fail the simulator's own calls.
 */
import type { Clock } from '../../engine/clock.ts';
import { SimCluster } from '../cluster.ts';
import { PDB_POD, type SimClusterState, type SimPod } from '../cluster-state.ts';
import type { Scenario } from '../scenario.ts';
import type { KubeObject } from '../kube-api/objects.ts';
import { rfc3339 } from '../kube-api/objects.ts';
import { deepEqual } from '../kube-api/patch.ts';
import { StatusError, internalError, tooManyRequests } from '../kube-api/status.ts';
import { KubeStore } from '../kube-api/store.ts';
import { Kubelets } from './kubelet.ts';
import { budgetName, controllerObjects, microTime, nodeLeaseObject, nodeObject, ownerOf, pdbObject, podObject, type Json } from './objects.ts';
import { playedByPalette, playPalette, sandboxResources } from './palette.ts';

/** Namespaces every sandbox has: the system ones, Palette's os-patch, and those of the simulated workloads. */
export const SANDBOX_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'os-patch', 'apps', 'shop', 'jobs'] as const;

interface DrainSession {
  startedAt: number;
  plan: ReturnType<SimClusterState['evictionPlan']>;
  /** When the node's budget is relaxed (a pdb-blocks-drain fault with forSeconds). */
  relaxTimer: number | undefined;
}

interface Terminating {
  node: string;
  timer: number | undefined;
}

export interface SandboxBindingOptions {
  sim: SimCluster;
  clock: Clock;
  agent: 'modern' | 'legacy';
  /** An existing store (with its server's hooks); a new one otherwise. */
  store?: KubeStore;
  seed?: number;
  /**
   * The kubelets' heartbeats at their real cadence on the clock: each Ready node renews its Lease in kube-node-lease
   * every 10 s and reports its status (the conditions' lastHeartbeatTime) every 5 minutes, so resourceVersions churn
   * as on a cluster. Off by default: a scenario run through the sandbox in virtual time would spend its writes on them.
   */
  heartbeats?: boolean;
}

/** kubelet defaults: a node Lease renewed every 10 s (a quarter of its 40 s), the status reported every 5 minutes. */
export const LEASE_RENEW_MS = 10_000;
export const NODE_STATUS_REPORT_MS = 5 * 60_000;

/**
 * Binds a SimCluster to a KubeStore. Create the SimCluster with `onNodeChange` calling `nodeChanged` (and
 * `apiErrorsAt: 'external'`), or use `createSandbox`, which does both.
 */
export class SandboxBinding {
  readonly store: KubeStore;
  readonly sim: SimCluster;
  readonly #clock: Clock;
  readonly #kubelets: Kubelets;
  readonly #createdAt: string;
  readonly #readySince = new Map<string, { ready: boolean; since: string }>();
  readonly #index = new Map<string, number>();
  readonly #sessions = new Map<string, DrainSession>();
  readonly #terminating = new Map<string, Terminating>();
  /** resourceVersions of the Node writes this binding made (its renders), so that their events are not taken for a client's. */
  readonly #rendered = new Set<string>();
  /** Each node's last status report (ISO). */
  readonly #heartbeatAt = new Map<string, string>();
  #heartbeatTimer: number | undefined;

  constructor(options: SandboxBindingOptions) {
    this.sim = options.sim;
    this.#clock = options.clock;
    this.store = options.store ?? new KubeStore({ clock: options.clock, seed: options.seed ?? 1 });
    this.#createdAt = rfc3339(options.clock.now() - 86_400_000);
    for (const name of SANDBOX_NAMESPACES) {
      if (!this.store.find('namespaces', { name })) this.store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, { internal: true });
    }
    this.#kubelets = new Kubelets({ store: this.store, sim: this.sim, clock: this.#clock, agent: options.agent });
    this.store.hooks.onChange('nodes', (event) => {
      const rv = event.object.metadata.resourceVersion ?? '';
      // Our own renders come back as events too, later in the same dispatch: they are the simulator's state already.
      if (this.#rendered.delete(rv)) return;
      const name = event.object.metadata.name!;
      if (event.type === 'DELETED') {
        this.sim.state.removeNode(name);
        return;
      }
      // Only the newest version of a Node speaks for the client: applying an older one (two writes dispatched in one
      // go) would set the simulator back, re-render, and the two versions would take turns for ever.
      if (event.type === 'MODIFIED' && this.store.find('nodes', { name })?.metadata.resourceVersion === rv) this.#nodeWrittenByClient(event.object);
    });
    this.store.hooks.onEviction((request) => this.#evict(request.pod, request.dryRun));
    this.store.hooks.admit('pods', (request) => {
      if (request.operation !== 'DELETE') return undefined;
      const pod = request.oldObject;
      // Job pods go with their Job at once; workload pods terminate gracefully, as the kubelet would take them down.
      if (pod.metadata.ownerReferences?.some((o) => o.kind === 'Job')) return undefined;
      const node = (pod.spec as Json | undefined)?.nodeName;
      if (typeof node !== 'string') return undefined;
      if (request.dryRun) return 'deferred';
      this.#terminate(pod, node, this.#sessions.get(node)?.plan.terminationMs.get(pod.metadata.name!) ?? 5_000, null);
      return 'deferred';
    });
    this.store.hooks.onRequest((request) => {
      // An eviction starts the node's drain session before the API server weighs the pod's budget: the fault's
      // protection runs from the first eviction, as in the simulator.
      if (request.resource === 'pods' && request.subresource === 'eviction' && request.namespace !== undefined && request.name !== undefined) {
        const pod = this.store.find('pods', { namespace: request.namespace, name: request.name });
        const node = (pod?.spec as Json | undefined)?.nodeName;
        if (typeof node === 'string' && this.sim.state.nodeView(node) !== null && pod?.metadata.deletionTimestamp === undefined) this.#session(node);
      }
      let call: string | undefined;
      let node: string | null = null;
      if (request.resource === 'nodes' && request.subresource === undefined) {
        if (request.verb === 'list') call = 'list';
        else if (request.verb === 'get') [call, node] = ['get', request.name ?? null];
        else if (request.verb === 'patch' || request.verb === 'update') [call, node] = ['patch', request.name ?? null];
      } else if (request.resource === 'jobs' && request.verb === 'create') call = 'create-job';
      if (call === undefined) return undefined;
      const status = this.sim.state.apiFault(node, call);
      if (status === undefined) return undefined;
      if (status === 429) return tooManyRequests('the server has received too many requests and has asked us to try again later', 1);
      if (status === 409) return new StatusError(409, 'Conflict', `Operation cannot be fulfilled on nodes "${node ?? ''}": the object has been modified; please apply your changes to the latest version and try again`, { name: node ?? '', kind: 'nodes' });
      return internalError('etcdserver: request timed out');
    });
    const owners = new Map<string, ReturnType<typeof ownerOf>>();
    for (const name of this.sim.state.nodeNames()) {
      for (const pod of this.sim.state.podsOn(name)) {
        const owner = ownerOf(pod, name);
        owners.set(`${owner.kind}/${owner.namespace}/${owner.name}`, owner);
      }
    }
    for (const { resource, object } of controllerObjects(owners.values(), this.#createdAt)) this.store.create(resource, object as KubeObject, { internal: true });
    for (const name of this.sim.state.nodeNames()) {
      if (this.sim.state.podsOn(name).some((p) => p.name === PDB_POD(name))) this.store.create('poddisruptionbudgets', pdbObject(name, this.#createdAt) as KubeObject, { internal: true });
    }
    for (const name of this.sim.state.nodeNames()) this.nodeChanged(name);
    if (options.heartbeats) this.#startHeartbeats();
  }

  #startHeartbeats(): void {
    let lastReport = this.#clock.now();
    const beat = () => {
      const now = this.#clock.now();
      const report = now - lastReport >= NODE_STATUS_REPORT_MS;
      if (report) lastReport = now;
      for (const name of this.sim.state.nodeNames()) {
        const view = this.sim.state.nodeView(name);
        // A node that is down renews nothing: its Lease runs out and its heartbeats stop, as with a dead kubelet.
        if (!view?.ready) continue;
        this.#renewLease(name, now);
        if (report) {
          this.#heartbeatAt.set(name, rfc3339(now));
          this.nodeChanged(name);
        }
      }
      this.#heartbeatTimer = this.#clock.setTimeout(beat, LEASE_RENEW_MS);
    };
    for (const name of this.sim.state.nodeNames()) if (this.sim.state.nodeView(name)?.ready) this.#renewLease(name, lastReport);
    this.#heartbeatTimer = this.#clock.setTimeout(beat, LEASE_RENEW_MS);
  }

  #renewLease(name: string, at: number): void {
    const ref = { namespace: 'kube-node-lease', name };
    const uid = this.store.find('nodes', { name })?.metadata.uid ?? '';
    if (!this.store.find('leases', ref)) {
      this.store.create('leases', nodeLeaseObject(name, uid, at) as KubeObject, { internal: true });
      return;
    }
    this.store.modify('leases', ref, (draft) => void ((draft.spec as Json).renewTime = microTime(at)), { internal: true });
  }

  /** SimCluster's onNodeChange: bring the Node object and its pods in line with the simulator. */
  nodeChanged(name: string): void {
    const view = this.sim.state.nodeView(name);
    const facts = this.sim.state.nodeFacts(name);
    if (!view || !facts) return;
    if (!this.#index.has(name)) this.#index.set(name, this.#index.size);
    const now = rfc3339(this.#clock.now());
    // The kubelet reports at once when something changed (Ready, the cordon), so a change is a heartbeat too.
    if (!this.#heartbeatAt.has(name)) this.#heartbeatAt.set(name, now);
    const previous = this.#readySince.get(name);
    if (!previous || previous.ready !== view.ready) this.#readySince.set(name, { ready: view.ready, since: previous ? now : this.#createdAt });
    if (!view.unschedulable) this.#endSession(name);
    const rendered = nodeObject(
      {
        name,
        os: facts.os,
        role: facts.role,
        ready: view.ready,
        unschedulable: view.unschedulable,
        labels: view.labels,
        annotations: view.annotations,
        bootId: view.bootId,
        kubeletVersion: view.kubeletVersion,
        readySince: this.#readySince.get(name)!.since,
        heartbeatAt: this.#heartbeatAt.get(name) ?? now,
        createdAt: this.#createdAt,
        index: this.#index.get(name)!,
      },
      this.#createdAt,
    ) as KubeObject;
    const stored = this.store.find('nodes', { name });
    let written: KubeObject | null = null;
    if (!stored) written = this.store.create('nodes', rendered, { internal: true });
    else if (!sameNode(stored, rendered)) {
      written = this.store.modify('nodes', { name }, (draft) => {
        draft.metadata.labels = rendered.metadata.labels!;
        draft.metadata.annotations = rendered.metadata.annotations!;
        draft.spec = rendered.spec;
        draft.status = rendered.status;
      }, { internal: true });
    }
    if (written?.metadata.resourceVersion) this.#rendered.add(written.metadata.resourceVersion);
    this.#syncPods(name);
  }

  /**
   * The node's drain session, started at its first eviction: the simulator's eviction plan (termination times, which
   * pods a fault protects and how long). A budget the plan does not protect this time is relaxed at once; one it
   * protects for a while, when that while is over; one it protects for good, never.
   */
  #session(node: string): DrainSession {
    let session = this.#sessions.get(node);
    if (session) return session;
    session = { startedAt: this.#clock.now(), plan: this.sim.state.evictionPlan(node), relaxTimer: undefined };
    this.#sessions.set(node, session);
    const protection = session.plan.protectedPods.get(PDB_POD(node));
    if (protection?.kind !== 'pdb') this.#setBudget(node, false);
    else if (protection.forMs !== null) session.relaxTimer = this.#clock.setTimeout(() => this.#setBudget(node, false), protection.forMs);
    return session;
  }

  #endSession(node: string): void {
    const session = this.#sessions.get(node);
    if (!session) return;
    if (session.relaxTimer !== undefined) this.#clock.clearTimeout(session.relaxTimer);
    this.#sessions.delete(node);
    this.#setBudget(node, true);
  }

  /** The node's budget: minAvailable 1 while protecting its pod, maxUnavailable 1 once it no longer does. */
  #setBudget(node: string, protecting: boolean): void {
    const ref = { namespace: 'shop', name: budgetName(node) };
    if (!this.store.find('poddisruptionbudgets', ref)) return;
    this.store.modify('poddisruptionbudgets', ref, (draft) => {
      const spec = draft.spec as Json;
      if (protecting) {
        delete spec.maxUnavailable;
        spec.minAvailable = 1;
      } else {
        delete spec.minAvailable;
        spec.maxUnavailable = 1;
      }
    }, { internal: true });
  }

  /** Stops the simulated containers and pending terminations. */
  close(): void {
    if (this.#heartbeatTimer !== undefined) this.#clock.clearTimeout(this.#heartbeatTimer);
    for (const session of this.#sessions.values()) if (session.relaxTimer !== undefined) this.#clock.clearTimeout(session.relaxTimer);
    this.#kubelets.stopAll();
    for (const t of this.#terminating.values()) if (t.timer !== undefined) this.#clock.clearTimeout(t.timer);
    this.#terminating.clear();
  }

  #nodeWrittenByClient(node: KubeObject): void {
    const name = node.metadata.name!;
    const view = this.sim.state.nodeView(name);
    if (!view) return;
    const labels = { ...(node.metadata.labels ?? {}) };
    const annotations = { ...(node.metadata.annotations ?? {}) };
    const unschedulable = (node.spec as Json | undefined)?.unschedulable === true;
    if (deepEqual(labels, view.labels) && deepEqual(annotations, view.annotations) && unschedulable === view.unschedulable) return;
    this.sim.state.setNodeMetadata(name, { labels, annotations, unschedulable });
  }

  /** The workload pods the simulator has on the node, created where missing (the scheduler's doing after a drain). */
  #syncPods(name: string): void {
    const want = this.sim.state.podsOn(name);
    for (const pod of want) {
      if (this.store.find('pods', { namespace: pod.namespace, name: pod.name })) continue;
      this.store.create('pods', podObject(pod, name, rfc3339(this.#clock.now())) as KubeObject, { internal: true });
    }
    const wanted = new Set(want.map((p: SimPod) => `${p.namespace}/${p.name}`));
    for (const pod of this.store.list('pods', { fieldSelector: `spec.nodeName=${name}` }).items) {
      if (pod.metadata.ownerReferences?.some((o) => o.kind === 'Job')) continue;
      if (pod.metadata.deletionTimestamp !== undefined || playedByPalette(pod)) continue;
      if (!wanted.has(`${pod.metadata.namespace}/${pod.metadata.name}`)) this.store.delete('pods', { namespace: pod.metadata.namespace!, name: pod.metadata.name! }, { internal: true });
    }
  }

  /** The Eviction API: refused while a PodDisruptionBudget fault protects the pod, else a graceful termination. */
  #evict(pod: KubeObject, dryRun: boolean): void {
    const node = (pod.spec as Json | undefined)?.nodeName;
    const ref = { namespace: pod.metadata.namespace!, name: pod.metadata.name! };
    if (typeof node !== 'string' || pod.metadata.ownerReferences?.some((o) => o.kind === 'Job') || this.sim.state.nodeView(node) === null) {
      this.store.delete('pods', ref, { internal: true, dryRun });
      return;
    }
    // The API server has already weighed the pod's budget; a dry run stops here, having started nothing.
    if (pod.metadata.deletionTimestamp !== undefined || dryRun) return;
    const session = this.#session(node);
    const protection = session.plan.protectedPods.get(ref.name);
    const protectedUntil = protection?.forMs === null ? Infinity : session.startedAt + (protection?.forMs ?? 0);
    const terminationMs = session.plan.terminationMs.get(ref.name) ?? 5_000;
    this.#terminate(pod, node, terminationMs, protection?.kind === 'finalizer' ? protectedUntil : null);
  }

  /**
   * Marks the pod for deletion and removes it when it has terminated: after its termination time, or (a finalizer
   * fault) not before the finalizer is released, never if it never is.
   */
  #terminate(pod: KubeObject, node: string, terminationMs: number, heldUntil: number | null): void {
    const ref = { namespace: pod.metadata.namespace!, name: pod.metadata.name! };
    const key = `${ref.namespace}/${ref.name}`;
    if (this.#terminating.has(key)) return;
    const now = this.#clock.now();
    this.store.modify('pods', ref, (draft) => {
      draft.metadata.deletionTimestamp = rfc3339(now + terminationMs);
      draft.metadata.deletionGracePeriodSeconds = Math.ceil(terminationMs / 1000);
    }, { internal: true });
    const goneAt = Math.max(now + terminationMs, heldUntil ?? 0);
    const entry: Terminating = { node, timer: undefined };
    this.#terminating.set(key, entry);
    if (goneAt === Infinity) return;
    entry.timer = this.#clock.setTimeout(() => {
      this.#terminating.delete(key);
      const current = this.store.find('pods', ref);
      if (!current || current.metadata.uid !== pod.metadata.uid) return;
      if ((current.metadata.finalizers ?? []).length > 0) this.store.modify('pods', ref, (draft) => void (draft.metadata.finalizers = []), { internal: true });
      if (this.store.find('pods', ref)) this.store.delete('pods', ref, { internal: true });
      if (this.sim.state.nodeView(node)) this.sim.state.podGone(node, ref.name);
    }, goneAt - now);
  }
}

function sameNode(stored: KubeObject, rendered: KubeObject): boolean {
  return (
    deepEqual(stored.metadata.labels ?? {}, rendered.metadata.labels ?? {}) &&
    deepEqual(stored.metadata.annotations ?? {}, rendered.metadata.annotations ?? {}) &&
    deepEqual(stored.spec, rendered.spec) &&
    deepEqual(stored.status, rendered.status)
  );
}

export interface Sandbox {
  binding: SandboxBinding;
  sim: SimCluster;
  store: KubeStore;
}

/** A sandbox for a scenario on a clock: its nodes, faults and updates, served through a KubeStore. */
export function createSandbox(scenario: Scenario, clock: Clock, options: { heartbeats?: boolean } = {}): Sandbox {
  let binding: SandboxBinding | null = null;
  const sim = new SimCluster(scenario.nodes, {
    name: scenario.clusterName,
    clock,
    seed: scenario.seed,
    epoch: clock.now(),
    updates: scenario.updates,
    faults: scenario.faults,
    apiErrorsAt: 'external',
    onNodeChange: (name) => binding?.nodeChanged(name),
  });
  const store = new KubeStore({ clock, seed: scenario.seed, resources: sandboxResources(scenario) });
  binding = new SandboxBinding({ sim, clock, agent: scenario.plan.agent, store, seed: scenario.seed, heartbeats: options.heartbeats ?? false });
  const stopPalette = playPalette({ store, sim, clock, scenario });
  // Closing the sandbox also detaches Palette's play (its log source and agent-pod replacement).
  const close = binding.close.bind(binding);
  binding.close = () => {
    stopPalette();
    close();
  };
  return { binding, sim, store: binding.store };
}
