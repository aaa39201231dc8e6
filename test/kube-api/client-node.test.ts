import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, KubeConfig, PatchStrategy, Watch, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import { kubeconfig, startKubeApiServer, type KubeApiServer, type KubeStore } from '../../src/sim/kube-api/index.ts';
import { clusterStore, node, runningPod, wallClock } from './fixtures.ts';

const ADMIN_TOKEN = 'admin-token';
const PATCHPILOT_TOKEN = 'patchpilot-token';

let store: KubeStore;
let server: KubeApiServer;
let core: CoreV1Api;
let kc: KubeConfig;

function client(token: string): { kc: KubeConfig; core: CoreV1Api } {
  const config = new KubeConfig();
  config.loadFromString(kubeconfig(server.url, token));
  return { kc: config, core: config.makeApiClient(CoreV1Api) };
}

/** The Status the server sent with an ApiException (client-node leaves the body as a JSON string). */
async function rejection(call: Promise<unknown>): Promise<{ code: number; status: Record<string, unknown> }> {
  try {
    await call;
  } catch (error) {
    if (error instanceof ApiException) return { code: error.code, status: JSON.parse(error.body as string) };
    throw error;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  store = clusterStore(wallClock);
  store.create('nodes', node('n1', { labels: { pool: 'a' } }), { internal: true });
  store.create('nodes', node('n2', { labels: { pool: 'b' } }), { internal: true });
  store.create('nodes', node('n3', { labels: { pool: 'a' } }), { internal: true });
  store.create('pods', runningPod('web-1', 'default', 'n1'), { internal: true });
  server = await startKubeApiServer({
    store,
    tokens: {
      [ADMIN_TOKEN]: { user: 'kubernetes-admin', groups: ['system:masters'] },
      [PATCHPILOT_TOKEN]: {
        user: 'system:serviceaccount:patchpilot:patchpilot',
        rules: [
          { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
        ],
      },
    },
  });
  ({ kc, core } = client(ADMIN_TOKEN));
});

afterAll(async () => {
  await server?.close();
});

describe('the sandbox API server through @kubernetes/client-node 2.0.1', () => {
  it('lists nodes with a label selector', async () => {
    const list = await core.listNode({ labelSelector: 'pool=a' });
    expect(list.items.map((n) => n.metadata?.name)).toEqual(['n1', 'n3']);
    expect(list.items[0]?.status?.nodeInfo?.kubeletVersion).toBe('v1.30.2');
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThan(0);
  });

  it('cordons with a merge patch', async () => {
    const patched = await core.patchNode({ name: 'n2', body: { spec: { unschedulable: true } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect(patched.spec?.unschedulable).toBe(true);
    expect(store.get('nodes', { name: 'n2' }).spec).toMatchObject({ unschedulable: true });
  });

  it('routes an eviction to the eviction hook', async () => {
    const evictions: string[] = [];
    const off = store.hooks.onEviction(({ namespace, name, user, store: s }) => {
      evictions.push(`${namespace}/${name} by ${user.name}`);
      s.delete('pods', { namespace, name });
    });
    try {
      await core.createNamespacedPodEviction({
        name: 'web-1',
        namespace: 'default',
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'web-1', namespace: 'default' } },
      });
    } finally {
      off();
    }
    expect(evictions).toEqual(['default/web-1 by kubernetes-admin']);
    expect(store.find('pods', { namespace: 'default', name: 'web-1' })).toBeUndefined();
  });

  it('passes a refused eviction (429) through with its Retry-After', async () => {
    store.create('pods', runningPod('db-0', 'default', 'n1'), { internal: true });
    const { tooManyRequests } = await import('../../src/sim/kube-api/index.ts');
    const off = store.hooks.onEviction(() => {
      throw tooManyRequests('Cannot evict pod as it would violate the pod\'s disruption budget.', 10, [{ reason: 'DisruptionBudget', message: 'The disruption budget db needs 1 healthy pods and has 1 currently' }]);
    });
    try {
      const { code, status } = await rejection(core.createNamespacedPodEviction({ name: 'db-0', namespace: 'default', body: { metadata: { name: 'db-0', namespace: 'default' } } }));
      expect(code).toBe(429);
      expect(status).toMatchObject({ reason: 'TooManyRequests', details: { retryAfterSeconds: 10, causes: [{ reason: 'DisruptionBudget' }] } });
    } finally {
      off();
    }
  });

  it('delivers a MODIFIED event to a Watch', async () => {
    const events: string[] = [];
    const modified = new Promise<V1Node>((resolve, reject) => {
      void new Watch(kc)
        .watch('/api/v1/nodes', { resourceVersion: store.resourceVersion }, (phase, obj: V1Node) => {
          events.push(`${phase} ${obj.metadata?.name}`);
          if (phase === 'MODIFIED') resolve(obj);
        }, (err) => (err ? reject(err) : undefined))
        .then((controller) => modified.finally(() => controller.abort()));
    });
    // The watch resumes from the resourceVersion read above, so the patch reaches it even if it lands first.
    store.patch('nodes', { name: 'n3' }, 'merge', { metadata: { labels: { poked: 'yes' } } });
    const obj = await modified;
    expect(obj.metadata?.labels?.poked).toBe('yes');
    expect(events[0]).toBe('MODIFIED n3');
  });

  it('answers a PUT with a stale resourceVersion with 409 Conflict', async () => {
    const current = await core.readNode({ name: 'n1' });
    await core.patchNode({ name: 'n1', body: { metadata: { labels: { touched: 'yes' } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    const { code, status } = await rejection(core.replaceNode({ name: 'n1', body: current }));
    expect(code).toBe(409);
    expect(status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Operation cannot be fulfilled on nodes "n1": the object has been modified; please apply your changes to the latest version and try again',
      reason: 'Conflict',
      details: { name: 'n1', kind: 'nodes' },
      code: 409,
    });
  });

  it('answers what the rules do not allow with the RBAC 403 message', async () => {
    const limited = client(PATCHPILOT_TOKEN).core;
    expect((await limited.listNode()).items).toHaveLength(3);
    const patch = await rejection(limited.patchNode({ name: 'n1', body: { spec: { unschedulable: true } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)));
    expect(patch.code).toBe(403);
    expect(patch.status).toMatchObject({
      reason: 'Forbidden',
      message: 'nodes "n1" is forbidden: User "system:serviceaccount:patchpilot:patchpilot" cannot patch resource "nodes" in API group "" at the cluster scope',
      details: { name: 'n1', kind: 'nodes' },
    });
    const evict = await rejection(limited.createNamespacedPodEviction({ name: 'db-0', namespace: 'os-patch', body: { metadata: { name: 'db-0' } } }));
    expect(evict.status.message).toBe(
      'pods "db-0" is forbidden: User "system:serviceaccount:patchpilot:patchpilot" cannot create resource "pods/eviction" in API group "" in the namespace "os-patch"',
    );
    // client-node drops the body of a 401, so the Status is read with fetch.
    await expect(client('wrong-token').core.listNode()).rejects.toMatchObject({ code: 401 });
    const raw = await fetch(`${server.url}/api/v1/nodes`, { headers: { Authorization: 'Bearer wrong-token' } });
    expect(raw.status).toBe(401);
    expect(await raw.json()).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });
  });

  it('answers an injected fault from the request hook', async () => {
    const { tooManyRequests } = await import('../../src/sim/kube-api/index.ts');
    const off = store.hooks.onRequest((request) => (request.verb === 'list' && request.resource === 'nodes' ? tooManyRequests('injected', 2) : undefined));
    try {
      const { code, status } = await rejection(core.listNode());
      expect(code).toBe(429);
      expect(status.message).toBe('injected');
    } finally {
      off();
    }
    expect((await core.listNode()).items).toHaveLength(3);
  });
});
