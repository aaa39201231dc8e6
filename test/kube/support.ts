/**
 * The Kubernetes adapter's test bench: the sandbox API server (src/sim/kube-api) on 127.0.0.1 with a store seeded
 * per test, a virtual clock shared by server and adapter, and small stand-ins for what a real cluster runs: a kubelet
 * that runs Jobs and keeps their logs. Time advances only when no request is in flight (the adapter's activity
 * counter), so every wait and backoff is virtual and the tests take milliseconds of it.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { KubeCluster, type KubeClusterOptions } from '../../src/cluster/kube/index.ts';
import { VirtualClock } from '../../src/engine/clock.ts';
import {
  KubeStore,
  kubeconfig,
  type ApiChaos,
  startKubeApiServer,
  type KubeApiServer,
  type KubeObject,
  type LogLine,
  type RequestInfo,
  type ResourceType,
  type TokenGrant,
} from '../../src/sim/kube-api/index.ts';

export const START = Date.parse('2026-11-22T08:00:00Z');
export const ADMIN_TOKEN = 'admin-token';
export const NAMESPACE = 'os-patch';

/** Drives an operation in virtual time: while it runs, the clock jumps to the next timer whenever nothing is on the wire. */
export class VirtualTime {
  readonly clock = new VirtualClock(START);
  #inFlight = 0;
  readonly activity = {
    begin: () => {
      this.#inFlight += 1;
    },
    end: () => {
      this.#inFlight -= 1;
    },
  };

  async run<T>(operation: Promise<T>): Promise<T> {
    let settled = false;
    const watched = operation.finally(() => {
      settled = true;
    });
    watched.catch(() => {});
    let idle = 0;
    while (!settled) {
      await new Promise((resolve) => setImmediate(resolve));
      if (settled || this.#inFlight > 0) continue;
      if (this.clock.advanceToNext()) idle = 0;
      else if (++idle > 10_000) throw new Error('the operation waits for something that never comes: no request in flight, no timer pending');
    }
    return watched;
  }
}

export interface Bench {
  time: VirtualTime;
  clock: VirtualClock;
  store: KubeStore;
  server: KubeApiServer;
  /** Every request the server authorized, in order. */
  requests: RequestInfo[];
  /** The server's bearer tokens (the admin's among them). */
  tokens: Record<string, TokenGrant>;
  kubeConfig(token?: string): KubeConfig;
  cluster(options?: Partial<KubeClusterOptions>, token?: string): KubeCluster;
  close(): Promise<void>;
}

export async function startBench(
  options: { tokens?: Record<string, TokenGrant>; namespaces?: string[]; watchHistory?: number; minRequestTimeoutSeconds?: number; chaos?: ApiChaos; resources?: readonly ResourceType[] } = {},
): Promise<Bench> {
  const time = new VirtualTime();
  const store = new KubeStore({
    clock: time.clock,
    seed: 7,
    ...(options.watchHistory ? { watchHistory: options.watchHistory } : {}),
    ...(options.minRequestTimeoutSeconds ? { minRequestTimeoutSeconds: options.minRequestTimeoutSeconds } : {}),
    ...(options.resources ? { resources: options.resources } : {}),
  });
  for (const name of [NAMESPACE, 'default', 'kube-system', 'shop', ...(options.namespaces ?? [])]) {
    if (!store.find('namespaces', { name })) store.create('namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, { internal: true });
  }
  const tokens: Record<string, TokenGrant> = { [ADMIN_TOKEN]: { user: 'admin' }, ...options.tokens };
  const server = await startKubeApiServer({ store, tokens, ...(options.chaos ? { chaos: options.chaos } : {}) });
  const requests: RequestInfo[] = [];
  store.hooks.onRequest((request) => {
    requests.push(request);
  });
  const kubeConfig = (token = ADMIN_TOKEN) => {
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfig(server.url, token));
    return kc;
  };
  return {
    time,
    clock: time.clock,
    store,
    server,
    requests,
    tokens,
    kubeConfig,
    cluster: (overrides = {}, token = ADMIN_TOKEN) =>
      new KubeCluster({
        kubeConfig: kubeConfig(token),
        clock: time.clock,
        activity: time.activity,
        agentScript: '#!/bin/bash\necho agent\n',
        pollMs: { node: 1000, job: 1000, pod: 1000 },
        retry: { attempts: 4, baseMs: 100, maxMs: 2000 },
        ...overrides,
      }),
    close: () => server.close(),
  };
}

// --- objects ---

export interface NodeSeed {
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  unschedulable?: boolean;
  ready?: boolean;
  bootId?: string;
}

export function nodeObject(name: string, seed: NodeSeed = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: { 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name, ...seed.labels },
      ...(seed.annotations ? { annotations: seed.annotations } : {}),
    },
    spec: seed.unschedulable ? { unschedulable: true } : {},
    status: {
      conditions: [{ type: 'Ready', status: seed.ready === false ? 'False' : 'True' }],
      nodeInfo: { bootID: seed.bootId ?? `${name}-boot-1`, kubeletVersion: 'v1.30.4', osImage: 'Ubuntu 22.04.4 LTS' },
    },
  };
}

export function seedNode(store: KubeStore, name: string, seed: NodeSeed = {}): KubeObject {
  return store.create('nodes', nodeObject(name, seed), { internal: true });
}

export interface PodSeed {
  node: string;
  namespace?: string;
  owner?: { kind: string; name: string; uid?: string };
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  phase?: string;
}

export function seedPod(store: KubeStore, name: string, seed: PodSeed): KubeObject {
  const namespace = seed.namespace ?? 'shop';
  return store.create(
    'pods',
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace,
        labels: { app: name.replace(/-\w+$/, ''), ...seed.labels },
        ...(seed.annotations ? { annotations: seed.annotations } : {}),
        ...(seed.finalizers ? { finalizers: seed.finalizers } : {}),
        ...(seed.owner
          ? { ownerReferences: [{ apiVersion: seed.owner.kind === 'DaemonSet' ? 'apps/v1' : 'apps/v1', kind: seed.owner.kind, name: seed.owner.name, uid: seed.owner.uid ?? `${seed.owner.name}-uid`, controller: true }] }
          : {}),
      },
      spec: { nodeName: seed.node, containers: [{ name: 'main', image: 'registry.local/app:1' }] },
      status: { phase: seed.phase ?? 'Running' },
    },
    { internal: true },
  );
}

// --- a kubelet for Jobs ---

export interface JobRun {
  /** Log lines the container prints. */
  log: string[];
  exitCode: number;
  /** Container termination reason; default Completed (exit 0) or Error. */
  reason?: string;
  /** Virtual ms from the pod's start to its end (default 30 s). */
  runMs?: number;
  /** The Job's Failed condition reason (DeadlineExceeded, BackoffLimitExceeded); default BackoffLimitExceeded on failure. */
  jobFailureReason?: string;
}

/**
 * Runs every Job created through the API: a pod bound to the Job (owner reference, job-name label) appears at once,
 * and after `runMs` it terminates with the exit code and log `decide` gives; the Job gets its Complete or Failed
 * condition. Returns the Jobs seen, by name.
 */
export function fakeKubelet(store: KubeStore, decide: (job: KubeObject) => JobRun): { jobs: Map<string, KubeObject>; logs: Map<string, LogLine[]> } {
  const jobs = new Map<string, KubeObject>();
  const logs = new Map<string, LogLine[]>();
  store.hooks.onPodLog(({ namespace, name }) => logs.get(`${namespace}/${name}`) ?? []);
  store.hooks.onChange('jobs', (event) => {
    if (event.type !== 'ADDED') return;
    const job = event.object;
    const name = job.metadata.name!;
    const namespace = job.metadata.namespace!;
    jobs.set(name, job);
    const run = decide(job);
    const template = (job.spec as { template: { spec: Record<string, unknown> } }).template;
    store.clock.setTimeout(() => {
      const pod = store.create(
        'pods',
        {
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: {
            name: `${name.slice(0, 56)}-${String(jobs.size).padStart(5, '0')}`,
            namespace,
            labels: { 'batch.kubernetes.io/job-name': name, 'batch.kubernetes.io/controller-uid': job.metadata.uid! },
            ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name, uid: job.metadata.uid!, controller: true }],
          },
          spec: structuredClone(template.spec),
          status: { phase: 'Running' },
        },
        { internal: true },
      );
      const podName = pod.metadata.name!;
      store.clock.setTimeout(() => {
        if (!store.find('pods', { namespace, name: podName })) return;
        const at = store.clock.now();
        logs.set(`${namespace}/${podName}`, run.log.map((text) => ({ time: at, text })));
        const container = (template.spec.containers as { name: string }[])[0]!.name;
        store.modify(
          'pods',
          { namespace, name: podName },
          (draft) => {
            draft.status = {
              phase: run.exitCode === 0 ? 'Succeeded' : 'Failed',
              containerStatuses: [{ name: container, state: { terminated: { exitCode: run.exitCode, reason: run.reason ?? (run.exitCode === 0 ? 'Completed' : 'Error') } } }],
            };
          },
          { internal: true },
        );
        if (!store.find('jobs', { namespace, name })) return;
        store.modify(
          'jobs',
          { namespace, name },
          (draft) => {
            const failed = run.exitCode !== 0;
            draft.status = {
              ...(failed ? { failed: 1 } : { succeeded: 1 }),
              conditions: [
                failed
                  ? { type: 'Failed', status: 'True', reason: run.jobFailureReason ?? 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }
                  : { type: 'Complete', status: 'True' },
              ],
            };
          },
          { internal: true },
        );
      }, run.runMs ?? 30_000);
    }, 0);
  });
  return { jobs, logs };
}

export function agentReportLine(overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    result: 'patched',
    upgraded: [{ name: 'openssl', from: '3.0.2-0ubuntu1.15', to: '3.0.2-0ubuntu1.18' }],
    held: ['kubelet'],
    rebootRequired: false,
    rebootPackages: [],
    error: null,
    durationSeconds: 30,
    ...overrides,
  });
}

/** Events written through the API, oldest first, for one node. */
export function eventsFor(store: KubeStore, node: string): { reason: string; type: string; message: string }[] {
  return store
    .list('events', { namespace: 'default' })
    .items.filter((e) => (e.involvedObject as { name?: string } | undefined)?.name === node)
    .map((e) => ({ reason: String(e.reason), type: String(e.type), message: String(e.message) }));
}
