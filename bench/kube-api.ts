/**
 * The sandbox API server under load: `list nodes` requests per second over HTTP (keep-alive, concurrent clients) and
 * the latency from an in-process node patch to the watch event reaching an HTTP watch client.
 * `node bench/kube-api.ts [NODES]` seeds NODES realistic nodes (1,000 by default) and prints the figures as JSON.
 * Clients and server share one process (and one event loop), so the figures are what a laptop sandbox gives a
 * kubectl or an adapter, not what the server alone could do.
 */
import { Agent, request } from 'node:http';
import type { Clock } from '../src/engine/clock.ts';
import { KubeStore, startKubeApiServer, type KubeObject } from '../src/sim/kube-api/index.ts';

export interface KubeApiBenchOptions {
  /** Concurrent list clients. */
  clients?: number;
  /** How long the list clients run. */
  listMs?: number;
  /** Patches whose watch latency is measured, one at a time. */
  patches?: number;
}

export interface KubeApiBenchFigures {
  nodes: number;
  listClients: number;
  listRequests: number;
  listRequestsPerSecond: number;
  listResponseBytes: number;
  listLatencyP50Ms: number;
  listLatencyP99Ms: number;
  watchPatches: number;
  watchLatencyP50Ms: number;
  watchLatencyP99Ms: number;
  watchLatencyMaxMs: number;
}

const wallClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms) as unknown as number,
  clearTimeout: (id) => clearTimeout(id as unknown as NodeJS.Timeout),
};

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export function benchNode(i: number): KubeObject {
  const name = `node-${String(i).padStart(5, '0')}`;
  return {
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'topology.kubernetes.io/zone': `zone-${i % 3}`,
        ...(i < 3 ? { 'node-role.kubernetes.io/control-plane': '' } : {}),
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
    },
    spec: { podCIDR: `10.${(i >> 8) & 255}.${i & 255}.0/24`, providerID: `sandbox://${name}` },
    status: {
      conditions: ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready'].map((type) => ({
        type,
        status: type === 'Ready' ? 'True' : 'False',
        reason: type === 'Ready' ? 'KubeletReady' : `KubeletHasNo${type}`,
        message: type === 'Ready' ? 'kubelet is posting ready status' : `kubelet has no ${type}`,
        lastHeartbeatTime: '2026-11-22T08:00:00Z',
        lastTransitionTime: '2026-11-22T08:00:00Z',
      })),
      addresses: [
        { type: 'InternalIP', address: `10.0.${(i >> 8) & 255}.${i & 255}` },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        machineID: `${i}`.padStart(32, '0'),
        systemUUID: `${i}`.padStart(32, 'a'),
        bootID: `boot-${i}`,
        kernelVersion: '5.15.0-105-generic',
        osImage: 'Ubuntu 22.04.4 LTS',
        containerRuntimeVersion: 'containerd://1.7.12',
        kubeletVersion: 'v1.30.2',
        kubeProxyVersion: 'v1.30.2',
        operatingSystem: 'linux',
        architecture: 'amd64',
      },
      capacity: { cpu: '8', memory: '32863476Ki', pods: '110', 'ephemeral-storage': '101430960Ki' },
      allocatable: { cpu: '8', memory: '32761076Ki', pods: '110', 'ephemeral-storage': '93478772582' },
    },
  };
}

function get(agent: Agent, url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { Accept: 'application/json' } }, (res) => {
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export async function benchKubeApi(seedNodes: (store: KubeStore) => void | Promise<void>, options: KubeApiBenchOptions = {}): Promise<KubeApiBenchFigures> {
  const clients = options.clients ?? 8;
  const listMs = options.listMs ?? 3_000;
  const patches = options.patches ?? 500;
  const store = new KubeStore({ clock: wallClock });
  await seedNodes(store);
  const nodes = store.list('nodes').items;
  const server = await startKubeApiServer({ store });
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  try {
    const listUrl = `${server.url}/api/v1/nodes`;
    const listLatencies: number[] = [];
    let responseBytes = 0;
    await get(agent, listUrl);
    const deadline = performance.now() + listMs;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < deadline) {
          const t0 = performance.now();
          responseBytes = await get(agent, listUrl);
          listLatencies.push(performance.now() - t0);
        }
      }),
    );
    const listSeconds = (performance.now() - started) / 1000;
    listLatencies.sort((a, b) => a - b);

    const watchLatencies = await measureWatch(server.url, store, nodes, patches);
    watchLatencies.sort((a, b) => a - b);
    return {
      nodes: nodes.length,
      listClients: clients,
      listRequests: listLatencies.length,
      listRequestsPerSecond: Math.round(listLatencies.length / listSeconds),
      listResponseBytes: responseBytes,
      listLatencyP50Ms: round(percentile(listLatencies, 50)),
      listLatencyP99Ms: round(percentile(listLatencies, 99)),
      watchPatches: watchLatencies.length,
      watchLatencyP50Ms: round(percentile(watchLatencies, 50)),
      watchLatencyP99Ms: round(percentile(watchLatencies, 99)),
      watchLatencyMaxMs: round(watchLatencies[watchLatencies.length - 1] ?? 0),
    };
  } finally {
    agent.destroy();
    await server.close();
  }
}

/** Patches nodes one at a time and times each patch until its MODIFIED event is parsed by an HTTP watch client. */
function measureWatch(url: string, store: KubeStore, nodes: KubeObject[], patches: number): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    let sequence = 0;
    let patchedAt = 0;
    let buffer = '';
    const patchNext = () => {
      if (sequence === patches) {
        req.destroy();
        resolve(latencies);
        return;
      }
      const target = nodes[sequence % nodes.length]!;
      sequence++;
      patchedAt = performance.now();
      store.patch('nodes', { name: target.metadata.name! }, 'merge', { metadata: { labels: { 'bench/sequence': String(sequence) } } });
    };
    const req = request(`${url}/api/v1/nodes?watch=1&resourceVersion=${store.resourceVersion}`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const event = JSON.parse(buffer.slice(0, newline)) as { type: string; object: KubeObject };
          buffer = buffer.slice(newline + 1);
          if (event.type === 'MODIFIED' && event.object.metadata.labels?.['bench/sequence'] === String(sequence)) {
            latencies.push(performance.now() - patchedAt);
            patchNext();
          }
        }
      });
      res.on('error', reject);
      patchNext();
    });
    req.on('error', (error) => (sequence === patches ? undefined : reject(error)));
    req.end();
  });
}

if (import.meta.main) {
  const count = Number(process.argv[2] ?? 1000);
  const figures = await benchKubeApi((store) => {
    for (let i = 0; i < count; i++) store.create('nodes', benchNode(i), { internal: true });
  });
  console.log(JSON.stringify(figures));
}
