/**
 * The sandbox as kubectl and the Kubernetes adapter meet it, with 1,000 simulated nodes: `list nodes` requests per
 * second over HTTP (keep-alive, 8 concurrent clients), `get node` latency, and the latency from a change in the
 * simulator (a node relabelled, as a scenario event or a reboot would change it) to the MODIFIED event reaching an
 * HTTP watch client. `node bench/sandbox.ts [NODES]` prints one JSON line; bench/run.ts prints it as a table.
 * Clients, server and simulator share one process and event loop: these are the figures a laptop sandbox gives.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { Worker } from 'node:worker_threads';
import { get } from './list-clients.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer } from '../src/sim/kube-api/index.ts';
import { createSandbox } from '../src/sim/sandbox/index.ts';
import { ScaledClock } from '../src/sim/scaled-clock.ts';
import { loadScenario } from '../src/sim/scenario.ts';

const CLIENTS = 8;
const LIST_MS = 3_000;
const GETS = 2_000;
const CHANGES = 500;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

const ms = (value: number) => Math.round(value * 100) / 100;

export async function benchSandbox(nodes: number) {
  const dir = mkdtempSync(join(tmpdir(), 'patchpilot-bench-sandbox-'));
  const file = join(dir, 'bench.yaml');
  writeFileSync(file, `name: bench-${nodes}\nseed: 1\ncluster:\n  nodes:\n    - { name: cp, os: ubuntu-22.04, role: control-plane, count: 3 }\n    - { name: w, os: ubuntu-22.04, count: ${nodes - 3} }\nupdates: { security: [openssl] }\n`);
  const scenario = loadScenario(file);
  rmSync(dir, { recursive: true, force: true });
  const clock = new ScaledClock(1);
  const setupStarted = performance.now();
  const { binding, sim, store } = createSandbox(scenario, clock);
  const server = await startKubeApiServer({ store });
  const setupMs = performance.now() - setupStarted;
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  try {
    const listUrl = `${server.url}/api/v1/nodes`;
    const listBytes = await get(agent, listUrl);
    // The clients run in a worker thread, as they would in another process (kubectl, client-go): once taking the
    // gzipped bytes as sent (what the server sustains), once also gunzipping them (what a client sees end to end).
    const listPhase = async (decompress: boolean) => {
      const worker = new Worker(new URL('./list-clients.ts', import.meta.url), { workerData: { url: listUrl, clients: CLIENTS, durationMs: LIST_MS, decompress } });
      const result = await new Promise<{ latencies: number[]; seconds: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      await worker.terminate();
      result.latencies.sort((a, b) => a - b);
      return result;
    };
    const { latencies: lists, seconds: listSeconds } = await listPhase(false);
    const { latencies: decompressed, seconds: decompressedSeconds } = await listPhase(true);

    const names = sim.state.nodeNames();
    const gets: number[] = [];
    for (let i = 0; i < GETS; i++) {
      const t0 = performance.now();
      await get(agent, `${server.url}/api/v1/nodes/${names[i % names.length]}`);
      gets.push(performance.now() - t0);
    }
    gets.sort((a, b) => a - b);

    const watches = await measureWatch(server.url, store.resourceVersion, names, (name, sequence) => sim.state.setLabel(name, 'bench/sequence', String(sequence)));
    watches.sort((a, b) => a - b);
    return {
      nodes: names.length,
      pods: store.list('pods').items.length,
      setupMs: Math.round(setupMs),
      listClients: CLIENTS,
      listResponseBytes: listBytes,
      listRequestsPerSecond: Math.round(lists.length / listSeconds),
      listP50Ms: ms(percentile(lists, 50)),
      listP99Ms: ms(percentile(lists, 99)),
      listGunzippedRequestsPerSecond: Math.round(decompressed.length / decompressedSeconds),
      listGunzippedP50Ms: ms(percentile(decompressed, 50)),
      listGunzippedP99Ms: ms(percentile(decompressed, 99)),
      getP50Ms: ms(percentile(gets, 50)),
      getP99Ms: ms(percentile(gets, 99)),
      watchChanges: watches.length,
      watchP50Ms: ms(percentile(watches, 50)),
      watchP99Ms: ms(percentile(watches, 99)),
      watchMaxMs: ms(watches.at(-1) ?? 0),
    };
  } finally {
    agent.destroy();
    binding.close();
    clock.clearAll();
    await server.close();
  }
}

/** Changes nodes one at a time through the simulator and times each until its MODIFIED event is parsed by a watcher. */
function measureWatch(url: string, fromRv: string, names: string[], change: (name: string, sequence: number) => void): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    let sequence = 0;
    let changedAt = 0;
    let buffer = '';
    const next = () => {
      if (sequence === CHANGES) {
        req.destroy();
        resolve(latencies);
        return;
      }
      sequence += 1;
      changedAt = performance.now();
      change(names[sequence % names.length]!, sequence);
    };
    const req = request(`${url}/api/v1/nodes?watch=1&resourceVersion=${fromRv}`, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const event = JSON.parse(buffer.slice(0, newline)) as { type: string; object: { metadata: { labels?: Record<string, string> } } };
          buffer = buffer.slice(newline + 1);
          if (event.type === 'MODIFIED' && event.object.metadata.labels?.['bench/sequence'] === String(sequence)) {
            latencies.push(performance.now() - changedAt);
            next();
          }
        }
      });
      res.on('error', reject);
      next();
    });
    req.on('error', (error) => (sequence === CHANGES ? undefined : reject(error)));
    req.end();
  });
}

if (import.meta.main) {
  console.log(JSON.stringify(await benchSandbox(Number(process.argv[2] ?? 1000))));
}
