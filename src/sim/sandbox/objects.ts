/**
 * The Kubernetes objects a simulated cluster shows through the sandbox: Nodes rendered from the simulator's node state,
 * the workload pods on them with owners that exist (so `kubectl drain` can check a DaemonSet), and the
 * PodDisruptionBudget a pdb-blocks-drain fault stands for. Pure: the binding decides when to write them.
 */
import { createHash } from 'node:crypto';
import { OS_PROFILES, type OsId } from '../os.ts';
import { PDB_POD, STUCK_FINALIZER, STUCK_POD, type SimPod } from '../cluster-state.ts';

export type Json = Record<string, unknown>;

/** Deterministic uids, so that two sandboxes of one scenario show the same objects. */
export function uidOf(...parts: string[]): string {
  const hex = createHash('sha256').update(parts.join('/')).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export interface NodeFacts {
  name: string;
  os: OsId;
  role: 'control-plane' | 'worker';
  ready: boolean;
  unschedulable: boolean;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  bootId: string;
  kubeletVersion: string;
  /** When Ready last changed (ISO), for the condition's lastTransitionTime. */
  readySince: string;
  /** The kubelet's last status report (ISO), for the conditions' lastHeartbeatTime. */
  heartbeatAt: string;
  createdAt: string;
  index: number;
}

const KERNELS: Record<OsId, string> = {
  'ubuntu-22.04': '5.15.0-124-generic',
  'ubuntu-24.04': '6.8.0-48-generic',
  'debian-12': '6.1.0-26-amd64',
  'rocky-9': '5.14.0-427.37.1.el9_4.x86_64',
  'rhel-9': '5.14.0-427.37.1.el9_4.x86_64',
  'windows-2022': '10.0.20348.2762',
};

export function nodeObject(facts: NodeFacts, now: string): Json {
  const os = OS_PROFILES[facts.os];
  const spec: Json = { podCIDR: `10.244.${facts.index % 256}.0/24`, providerID: `sandbox://${facts.name}` };
  if (facts.unschedulable) {
    spec.unschedulable = true;
    spec.taints = [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule', timeAdded: now }];
  }
  const condition = (type: string, healthy: boolean): Json => ({
    type,
    status: healthy ? 'False' : 'True',
    reason: `KubeletHas${healthy ? 'No' : ''}${type}`,
    message: `kubelet has ${healthy ? 'no ' : ''}${type.replace(/Pressure/, ' pressure').toLowerCase()}`,
    lastHeartbeatTime: facts.heartbeatAt,
    lastTransitionTime: facts.createdAt,
  });
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: facts.name,
      uid: uidOf('node', facts.name),
      creationTimestamp: facts.createdAt,
      labels: { ...facts.labels, 'kubernetes.io/arch': 'amd64', 'beta.kubernetes.io/os': os.kubernetesOs, 'beta.kubernetes.io/arch': 'amd64' },
      annotations: { ...facts.annotations },
    },
    spec,
    status: {
      conditions: [
        condition('MemoryPressure', true),
        condition('DiskPressure', true),
        condition('PIDPressure', true),
        {
          type: 'Ready',
          status: facts.ready ? 'True' : 'Unknown',
          reason: facts.ready ? 'KubeletReady' : 'NodeStatusUnknown',
          message: facts.ready ? 'kubelet is posting ready status' : 'Kubelet stopped posting node status.',
          lastHeartbeatTime: facts.heartbeatAt,
          lastTransitionTime: facts.readySince,
        },
      ],
      addresses: [
        { type: 'InternalIP', address: `10.0.${Math.floor(facts.index / 250) % 256}.${(facts.index % 250) + 2}` },
        { type: 'Hostname', address: facts.name },
      ],
      capacity: { cpu: '4', memory: '16389436Ki', pods: '110', 'ephemeral-storage': '102350Mi' },
      allocatable: { cpu: '3800m', memory: '15774012Ki', pods: '110', 'ephemeral-storage': '94327Mi' },
      nodeInfo: {
        machineID: uidOf('machine', facts.name).replace(/-/g, ''),
        systemUUID: uidOf('system', facts.name),
        bootID: facts.bootId,
        kernelVersion: KERNELS[facts.os],
        osImage: os.osImage,
        containerRuntimeVersion: 'containerd://1.7.22',
        kubeletVersion: facts.kubeletVersion,
        kubeProxyVersion: facts.kubeletVersion,
        operatingSystem: os.kubernetesOs,
        architecture: 'amd64',
      },
    },
  };
}

/** metav1.MicroTime: RFC 3339 with exactly six fractional digits. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The kubelet's node Lease in kube-node-lease, as `kubectl describe node` reads it (Lease: HolderIdentity, RenewTime). */
export function nodeLeaseObject(node: string, nodeUid: string, renewedAt: number): Json {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: node, namespace: 'kube-node-lease', ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid: nodeUid }] },
    spec: { holderIdentity: node, leaseDurationSeconds: 40, renewTime: microTime(renewedAt) },
  };
}

/** The controller objects the pods point at: ReplicaSets and DaemonSets exist, as kubectl drain checks. */
export interface Owner {
  apiVersion: string;
  /** 'None': a bare pod, with no ownerReference. */
  kind: 'ReplicaSet' | 'DaemonSet' | 'Node' | 'None';
  namespace: string;
  name: string;
}

export function ownerOf(pod: SimPod, node: string): Owner {
  if (pod.owner === 'static') return { apiVersion: 'v1', kind: 'Node', namespace: pod.namespace, name: node };
  if (pod.owner === 'none') return { apiVersion: 'v1', kind: 'None', namespace: pod.namespace, name: '' };
  if (pod.emptyDir) return { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: pod.namespace, name: 'cache-5b6f7d8c9' };
  if (pod.owner === 'DaemonSet') return { apiVersion: 'apps/v1', kind: 'DaemonSet', namespace: pod.namespace, name: pod.name.replace(`-${node}`, '') };
  if (pod.name === PDB_POD(node)) return { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: pod.namespace, name: 'web-6c8b9d7f5' };
  if (pod.name === STUCK_POD(node)) return { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: pod.namespace, name: 'worker-queue-5f7d4c9b8' };
  return { apiVersion: 'apps/v1', kind: 'ReplicaSet', namespace: pod.namespace, name: 'app-7d9f8b6c5' };
}

export function podObject(pod: SimPod, node: string, createdAt: string): Json {
  const owner = ownerOf(pod, node);
  const app =
    owner.kind === 'Node' ? pod.name.replace(`-${node}`, '') : owner.kind === 'None' ? 'debug' : owner.kind === 'DaemonSet' ? owner.name : owner.name.replace(/-[a-z0-9]+$/, '');
  const metadata: Json = {
    name: pod.name,
    namespace: pod.namespace,
    uid: uidOf('pod', pod.namespace, pod.name, createdAt),
    creationTimestamp: createdAt,
    labels: { ...(pod.name === PDB_POD(node) ? { app, [BUDGET_LABEL]: budgetKey(node) } : { app }), ...pod.labels },
  };
  if (owner.kind !== 'None') {
    metadata.ownerReferences = [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name, uid: uidOf(owner.kind, owner.namespace, owner.name), controller: true, blockOwnerDeletion: true }];
  }
  if (pod.owner === 'static') {
    // A mirror pod: the kubelet runs it from a manifest; the API object only reflects it, and drains skip it.
    metadata.annotations = { 'kubernetes.io/config.mirror': uidOf('mirror', pod.name).replace(/-/g, '').slice(0, 32), 'kubernetes.io/config.source': 'file' };
  }
  if (pod.name === STUCK_POD(node)) metadata.finalizers = [STUCK_FINALIZER];
  const volumes = pod.emptyDir ? [{ name: 'cache', emptyDir: {} }] : [];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata,
    spec: {
      nodeName: node,
      containers: [{ name: app, image: `registry.example.com/${app}:1.0`, volumeMounts: volumes.map((v) => ({ name: v.name, mountPath: '/cache' })) }],
      volumes,
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
    },
    status: runningStatus(app, createdAt),
  };
}

export function runningStatus(container: string, since: string): Json {
  return {
    phase: 'Running',
    conditions: [
      { type: 'PodScheduled', status: 'True', lastTransitionTime: since },
      { type: 'Initialized', status: 'True', lastTransitionTime: since },
      { type: 'ContainersReady', status: 'True', lastTransitionTime: since },
      { type: 'Ready', status: 'True', lastTransitionTime: since },
    ],
    startTime: since,
    containerStatuses: [{ name: container, ready: true, started: true, restartCount: 0, image: `registry.example.com/${container}:1.0`, imageID: '', state: { running: { startedAt: since } } }],
  };
}

export function controllerObjects(owners: Iterable<Owner>, createdAt: string): Array<{ resource: 'replicasets' | 'daemonsets'; object: Json }> {
  const seen = new Set<string>();
  const out: Array<{ resource: 'replicasets' | 'daemonsets'; object: Json }> = [];
  for (const owner of owners) {
    if (owner.kind === 'Node' || owner.kind === 'None') continue;
    const key = `${owner.kind}/${owner.namespace}/${owner.name}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const app = owner.kind === 'DaemonSet' ? owner.name : owner.name.replace(/-[a-z0-9]+$/, '');
    const template = { metadata: { labels: { app } }, spec: { containers: [{ name: app, image: `registry.example.com/${app}:1.0` }] } };
    out.push({
      resource: owner.kind === 'DaemonSet' ? 'daemonsets' : 'replicasets',
      object: {
        apiVersion: 'apps/v1',
        kind: owner.kind,
        metadata: { name: owner.name, namespace: owner.namespace, uid: uidOf(owner.kind, owner.namespace, owner.name), creationTimestamp: createdAt, labels: { app } },
        spec: { selector: { matchLabels: { app } }, template, ...(owner.kind === 'ReplicaSet' ? { replicas: 1 } : {}) },
        status: {},
      },
    });
  }
  return out;
}

/** Tells apart the `web` pods of different nodes, each under its own budget (label values are at most 63 characters). */
export const BUDGET_LABEL = 'sandbox.patchpilot.io/budget';

export function budgetKey(node: string): string {
  return createHash('sha256').update(node).digest('hex').slice(0, 12);
}

export function budgetName(node: string): string {
  return `web-${budgetKey(node)}`;
}

/**
 * The budget a pdb-blocks-drain fault stands for: the node's `web` pod must stay up (minAvailable 1) while the fault
 * protects it; the binding relaxes it to maxUnavailable 1 when the protection ends (another replica became healthy).
 * Its status is the disruption controller's (src/sim/kube-api/disruption.ts), as on a cluster.
 */
export function pdbObject(node: string, createdAt: string): Json {
  const name = budgetName(node);
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace: 'shop', uid: uidOf('pdb', 'shop', name), creationTimestamp: createdAt },
    spec: { minAvailable: 1, selector: { matchLabels: { app: 'web', [BUDGET_LABEL]: budgetKey(node) } } },
  };
}
