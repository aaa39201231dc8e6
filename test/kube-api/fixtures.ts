/** Realistic objects for the sandbox API server's tests, seeded through the in-process store. */
import type { Clock } from '../../src/engine/clock.ts';
import { SystemClock } from '../../src/service/system-clock.ts';
import { KubeStore, type KubeObject } from '../../src/sim/kube-api/index.ts';

/**
 * Wall time through the Clock interface, for tests that talk to real clients over HTTP: the SystemClock of real runs,
 * whose timers never fire before now() reaches their time (a bare setTimeout can, by up to a millisecond).
 */
export const wallClock: Clock = new SystemClock();

export function node(name: string, options: { labels?: Record<string, string>; unschedulable?: boolean; ready?: boolean; ip?: string } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        ...options.labels,
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: { podCIDR: '10.244.1.0/24', ...(options.unschedulable ? { unschedulable: true } : {}) },
    status: {
      conditions: [
        { type: 'MemoryPressure', status: 'False', reason: 'KubeletHasSufficientMemory', lastHeartbeatTime: '2026-11-22T08:00:00Z', lastTransitionTime: '2026-11-22T08:00:00Z' },
        { type: 'DiskPressure', status: 'False', reason: 'KubeletHasNoDiskPressure', lastHeartbeatTime: '2026-11-22T08:00:00Z', lastTransitionTime: '2026-11-22T08:00:00Z' },
        {
          type: 'Ready',
          status: options.ready === false ? 'False' : 'True',
          reason: options.ready === false ? 'KubeletNotReady' : 'KubeletReady',
          message: options.ready === false ? 'container runtime is down' : 'kubelet is posting ready status',
          lastHeartbeatTime: '2026-11-22T08:00:00Z',
          lastTransitionTime: '2026-11-22T08:00:00Z',
        },
      ],
      addresses: [
        { type: 'InternalIP', address: options.ip ?? '10.0.0.11' },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        machineID: `${name}-machine`,
        systemUUID: `${name}-uuid`,
        bootID: `${name}-boot-1`,
        kernelVersion: '5.15.0-105-generic',
        osImage: 'Ubuntu 22.04.4 LTS',
        containerRuntimeVersion: 'containerd://1.7.12',
        kubeletVersion: 'v1.30.2',
        kubeProxyVersion: 'v1.30.2',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
      capacity: { cpu: '4', memory: '16363476Ki', pods: '110' },
      allocatable: { cpu: '4', memory: '16261076Ki', pods: '110' },
    },
  };
}

export function runningPod(
  name: string,
  namespace: string,
  nodeName: string,
  options: { owner?: { apiVersion: string; kind: string; name: string; uid: string }; annotations?: Record<string, string>; emptyDir?: boolean; labels?: Record<string, string> } = {},
): KubeObject {
  return {
    metadata: {
      name,
      namespace,
      labels: options.labels ?? { app: name },
      ...(options.annotations ? { annotations: options.annotations } : {}),
      ...(options.owner ? { ownerReferences: [{ ...options.owner, controller: true, blockOwnerDeletion: true }] } : {}),
    },
    spec: {
      nodeName,
      containers: [{ name: 'main', image: 'registry.k8s.io/pause:3.9', volumeMounts: options.emptyDir ? [{ name: 'scratch', mountPath: '/scratch' }] : [] }],
      volumes: options.emptyDir ? [{ name: 'scratch', emptyDir: {} }] : [],
      terminationGracePeriodSeconds: 30,
    },
    status: {
      phase: 'Running',
      podIP: '10.244.1.7',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: [{ name: 'main', ready: true, restartCount: 0, image: 'registry.k8s.io/pause:3.9', state: { running: { startedAt: '2026-11-22T08:00:00Z' } } }],
    },
  };
}

export function patchJob(name: string, nodeName: string): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'os-patch', labels: { 'app.kubernetes.io/name': 'patchpilot-agent' } },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          nodeName,
          restartPolicy: 'Never',
          hostPID: true,
          containers: [{ name: 'agent', image: 'ghcr.io/patchpilot/agent:0.1.0', command: ['/bin/patchpilot-agent.sh'] }],
        },
      },
    },
  };
}

/** A store with the namespaces a cluster has (default, kube-system, os-patch). */
export function clusterStore(clock: Clock): KubeStore {
  const store = new KubeStore({ clock });
  for (const name of ['default', 'kube-system', 'os-patch']) store.create('namespaces', { metadata: { name } }, { internal: true });
  return store;
}
