/**
 * What the sandbox API server does beyond storing objects, as a real one does: PodDisruptionBudget status computed
 * from the pods and evictions that meet it (upstream's 429 and 500), server-side dry run for every verb, and the
 * watch parameter read as apimachinery reads it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startKubeApiServer, StatusError, type KubeApiServer, type KubeStore } from '../../src/sim/kube-api/index.ts';
import { budgetStatus, evictionVerdict } from '../../src/sim/kube-api/disruption.ts';
import { clusterStore, node, runningPod, wallClock } from './fixtures.ts';

let server: KubeApiServer | undefined;
let store: KubeStore;
let url: string;

async function serve(): Promise<void> {
  store = clusterStore(wallClock);
  store.create('nodes', node('n1'), { internal: true });
  for (const name of ['web-1', 'web-2']) store.create('pods', runningPod(name, 'default', 'n1', { labels: { app: 'web' } }), { internal: true });
  server = await startKubeApiServer({ store });
  url = server.url;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

type Answer = { code: number; body: Record<string, any> };

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Answer> {
  const response = await fetch(`${url}${path}`, { method, headers: { 'Content-Type': contentType }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { code: response.status, body: (await response.json()) as Record<string, any> };
}

const pdb = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name }, spec: { selector: { matchLabels: { app: 'web' } }, ...spec } });
const eviction = (name: string, deleteOptions?: Record<string, unknown>) => ({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: 'default' }, ...(deleteOptions ? { deleteOptions } : {}) });
const PDBS = '/apis/policy/v1/namespaces/default/poddisruptionbudgets';
const EVICT = (pod: string) => `/api/v1/namespaces/default/pods/${pod}/eviction`;

describe('PodDisruptionBudgets and evictions', () => {
  it('computes a budget status from the pods, and refuses an eviction it does not allow with upstream\'s 429', async () => {
    await serve();
    expect((await call('POST', PDBS, pdb('web', { maxUnavailable: 0 }))).code).toBe(201);
    expect(store.get('poddisruptionbudgets', { namespace: 'default', name: 'web' }).status).toMatchObject({
      expectedPods: 2, currentHealthy: 2, desiredHealthy: 2, disruptionsAllowed: 0, observedGeneration: 1,
    });
    const refused = await call('POST', EVICT('web-1'), eviction('web-1'));
    expect(refused).toMatchObject({
      code: 429,
      body: {
        reason: 'TooManyRequests',
        message: "Cannot evict pod as it would violate the pod's disruption budget.",
        details: { causes: [{ type: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }] },
      },
    });
    expect(store.get('pods', { namespace: 'default', name: 'web-1' }).metadata.deletionTimestamp).toBeUndefined();
  });

  it('allows one disruption with minAvailable 1, then none once the evicted pod is gone', async () => {
    await serve();
    await call('POST', PDBS, pdb('web', { minAvailable: 1 }));
    expect(store.get('poddisruptionbudgets', { namespace: 'default', name: 'web' }).status).toMatchObject({ disruptionsAllowed: 1, desiredHealthy: 1, currentHealthy: 2 });
    expect((await call('POST', EVICT('web-1'), eviction('web-1'))).code).toBe(201);
    expect(store.find('pods', { namespace: 'default', name: 'web-1' })).toBeUndefined();
    expect(store.get('poddisruptionbudgets', { namespace: 'default', name: 'web' }).status).toMatchObject({ expectedPods: 1, currentHealthy: 1, disruptionsAllowed: 0 });
    expect((await call('POST', EVICT('web-2'), eviction('web-2'))).code).toBe(429);
  });

  it('counts a percentage as upstream rounds it (up), and a pod that is not Ready as unhealthy', () => {
    const pods = [1, 2, 3].map((i) => runningPod(`web-${i}`, 'default', 'n1', { labels: { app: 'web' } }));
    (pods[2]!.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: 'False' }];
    const budget = { ...pdb('web', { minAvailable: '50%' }), metadata: { name: 'web', generation: 3 } };
    expect(budgetStatus(budget, pods)).toMatchObject({
      expectedPods: 3, currentHealthy: 2, desiredHealthy: 2, disruptionsAllowed: 0, observedGeneration: 3,
    });
  });

  it('answers 500 when two budgets select the pod', async () => {
    await serve();
    await call('POST', PDBS, pdb('a', { maxUnavailable: 1 }));
    await call('POST', PDBS, pdb('b', { maxUnavailable: 1 }));
    const answer = await call('POST', EVICT('web-1'), eviction('web-1'));
    expect(answer).toMatchObject({ code: 500, body: { reason: 'InternalError', message: 'Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.' } });
  });

  it('refuses with 429 while the budget status has not caught up with its generation', () => {
    // The sandbox's controller catches up within the write that changed the budget; on a cluster it lags, and the
    // eviction subresource refuses meanwhile.
    const pod = runningPod('web-1', 'default', 'n1', { labels: { app: 'web' } });
    const budget = { ...pdb('web', { maxUnavailable: 1 }), metadata: { name: 'web', generation: 2 }, status: { observedGeneration: 1, disruptionsAllowed: 1 } };
    const verdict = evictionVerdict(pod, [budget]);
    expect(verdict).toBeInstanceOf(StatusError);
    expect((verdict as StatusError).status).toMatchObject({ code: 429, details: { causes: [{ message: 'The disruption budget web is still being processed by the server.' }] } });
    // Caught up and allowing one: the verdict is the budget the eviction is charged to.
    expect(evictionVerdict(pod, [{ ...budget, status: { observedGeneration: 2, disruptionsAllowed: 1 } }])).toMatchObject({ metadata: { name: 'web' } });
    // A pod already going, finished or not yet running costs no disruption.
    expect(evictionVerdict({ ...pod, status: { phase: 'Pending' } }, [budget])).toBeUndefined();
  });
});

describe('server-side dry run', () => {
  it('checks an eviction (budget included) but evicts nothing, from the query or from deleteOptions', async () => {
    await serve();
    expect((await call('POST', `${EVICT('web-1')}?dryRun=All`, eviction('web-1'))).code).toBe(201);
    expect((await call('POST', EVICT('web-1'), eviction('web-1', { dryRun: ['All'] }))).code).toBe(201);
    expect(store.get('pods', { namespace: 'default', name: 'web-1' }).metadata.deletionTimestamp).toBeUndefined();
    await call('POST', PDBS, pdb('web', { maxUnavailable: 0 }));
    expect((await call('POST', EVICT('web-1'), eviction('web-1', { dryRun: ['All'] }))).code).toBe(429);
  });

  it('answers create, patch and delete as for real and stores nothing', async () => {
    await serve();
    const rv = store.resourceVersion;
    const created = await call('POST', '/api/v1/namespaces/default/configmaps?dryRun=All', { metadata: { name: 'c' }, data: { a: 'b' } });
    expect(created).toMatchObject({ code: 201, body: { metadata: { name: 'c', uid: expect.any(String) } } });
    const patched = await call('PATCH', '/api/v1/nodes/n1?dryRun=All', { spec: { unschedulable: true } }, 'application/merge-patch+json');
    expect(patched).toMatchObject({ code: 200, body: { spec: { unschedulable: true } } });
    const deleted = await call('DELETE', '/api/v1/nodes/n1?dryRun=All');
    expect(deleted.code).toBe(200);
    const viaBody = await call('DELETE', '/api/v1/namespaces/default/pods/web-1', { dryRun: ['All'] });
    expect(viaBody.code).toBe(200);
    expect(store.resourceVersion).toBe(rv);
    expect(store.find('configmaps', { namespace: 'default', name: 'c' })).toBeUndefined();
    expect((store.get('nodes', { name: 'n1' }).spec as Record<string, unknown>).unschedulable).toBeUndefined();
    expect(store.find('pods', { namespace: 'default', name: 'web-1' })?.metadata.deletionTimestamp).toBeUndefined();
    // Validation still answers: a dry run of an invalid write is refused like the write.
    expect((await call('PATCH', '/api/v1/nodes/n1?dryRun=All', { spec: { unschedulable: 'yes' } }, 'application/merge-patch+json')).code).toBe(422);
    expect((await call('DELETE', '/api/v1/nodes/n1?dryRun=Some')).code).toBe(400);
  });
});

describe('the watch parameter', () => {
  it.each([
    ['True', true],
    ['1', true],
    ['', true],
    ['false', false],
    ['FALSE', false],
    ['0', false],
  ])('watch=%s is a watch: %s', async (value, isWatch) => {
    await serve();
    const controller = new AbortController();
    const response = await fetch(`${url}/api/v1/nodes?watch=${value}`, { signal: controller.signal });
    const reader = response.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    controller.abort();
    if (isWatch) expect(JSON.parse(first.split('\n')[0]!)).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'n1' } } });
    else expect(first).toMatch(/^\{"kind":"NodeList"/);
  });
});
