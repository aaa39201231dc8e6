/**
 * API chaos on the sandbox API server: transient failures on any resource endpoint (Events, Leases, logs and evictions
 * included) with the answers a busy real server gives, never the same request twice in a row, and watches dropped.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../../src/engine/clock.ts';
import { ApiChaos, startKubeApiServer, type KubeApiServer } from '../../src/sim/kube-api/index.ts';
import { clusterStore, node } from './fixtures.ts';

let server: KubeApiServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('API chaos', () => {
  it('fails a share of requests on every endpoint with 429 + Retry-After or 500, and lets a retry of the same request through', async () => {
    const store = clusterStore(new VirtualClock());
    store.create('nodes', node('n1'), { internal: true });
    const chaos = new ApiChaos({ rate: 0.5, seed: 7 });
    server = await startKubeApiServer({ store, chaos });
    const paths = ['/api/v1/namespaces/default/events', '/apis/coordination.k8s.io/v1/namespaces/default/leases', '/api/v1/nodes/n1'];
    const codes = new Map<number, number>();
    for (const path of paths) {
      let previousFailed = false;
      for (let i = 0; i < 40; i++) {
        const response = await fetch(`${server.url}${path}`);
        const body = (await response.json()) as { reason?: string; details?: { retryAfterSeconds?: number } };
        codes.set(response.status, (codes.get(response.status) ?? 0) + 1);
        if (response.status === 429) {
          expect(body.reason).toBe('TooManyRequests');
          expect(response.headers.get('retry-after')).toBe('1');
        }
        if (response.status === 500) expect(body.reason).toBe('InternalError');
        const failed = response.status !== 200;
        expect(previousFailed && failed).toBe(false);
        previousFailed = failed;
      }
    }
    expect(codes.get(200)).toBeGreaterThan(40);
    expect((codes.get(429) ?? 0) + (codes.get(500) ?? 0)).toBeGreaterThan(15);
    expect(chaos.injected.tooManyRequests).toBe(codes.get(429) ?? 0);
  });

  it('answers a Node patch with 409 Conflict now and then, as a racing kubelet would cause', async () => {
    const store = clusterStore(new VirtualClock());
    store.create('nodes', node('n1'), { internal: true });
    const chaos = new ApiChaos({ rate: 0.6, seed: 3 });
    server = await startKubeApiServer({ store, chaos });
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const response = await fetch(`${server.url}/api/v1/nodes/n1`, { method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json' }, body: JSON.stringify({ metadata: { labels: { i: String(i) } } }) });
      statuses.push(response.status);
      await response.arrayBuffer();
    }
    expect(statuses).toContain(409);
    expect(chaos.injected.conflict).toBe(statuses.filter((s) => s === 409).length);
  });

  it('drops a watch mid-stream on the clock, without a last event', async () => {
    const clock = new VirtualClock();
    const store = clusterStore(clock);
    store.create('nodes', node('n1'), { internal: true });
    const chaos = new ApiChaos({ rate: 0.99, seed: 1, maxWatchMs: 1000 });
    server = await startKubeApiServer({ store, chaos });
    const response = await fetch(`${server.url}/api/v1/nodes?watch=1&resourceVersion=${store.resourceVersion}`);
    const reader = response.body!.getReader();
    clock.increment(1000);
    const outcome = await reader.read().then(
      (r) => (r.done ? 'ended' : 'data'),
      () => 'dropped',
    );
    expect(outcome).toBe('dropped');
    expect(chaos.injected.watchDropped).toBe(1);
  });
});
