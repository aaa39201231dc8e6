/**
 * The list benchmark's clients, in a worker thread of their own so that, as with kubectl or client-go in another
 * process, the clients' parsing and decompression do not take turns with the server on one event loop.
 */
import { Agent, request } from 'node:http';
import { parentPort, workerData } from 'node:worker_threads';
import { createGunzip } from 'node:zlib';

export interface ListClientsInput {
  url: string;
  clients: number;
  durationMs: number;
  /** Gunzip each response as client-go does (its cost is then the client's and counted); false measures the server. */
  decompress: boolean;
}

/** GETs `url` and counts the (decompressed) bytes, as client-go asks: gzip accepted. */
export function get(agent: Agent, url: string, decompress = true): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, headers: { Accept: 'application/json', 'Accept-Encoding': 'gzip' } }, (res) => {
      const stream = decompress && res.headers['content-encoding'] === 'gzip' ? res.pipe(createGunzip()) : res;
      let bytes = 0;
      stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
      stream.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`GET ${url}: ${res.statusCode}`))));
      stream.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function listLoop({ url, clients, durationMs, decompress }: ListClientsInput): Promise<{ latencies: number[]; seconds: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: clients });
  const latencies: number[] = [];
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await get(agent, url, decompress);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  agent.destroy();
  return { latencies, seconds: (performance.now() - started) / 1000 };
}

if (parentPort) parentPort.postMessage(await listLoop(workerData as ListClientsInput));
