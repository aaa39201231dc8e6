import { afterEach, describe, expect, it } from 'vitest';
import { startKubeApiServer, type KubeApiServer, type KubeStore } from '../../src/sim/kube-api/index.ts';
import { clusterStore, node, runningPod, wallClock } from './fixtures.ts';

let server: KubeApiServer | undefined;

async function serve(): Promise<{ store: KubeStore; url: string }> {
  const store = clusterStore(wallClock);
  store.create('nodes', node('n1'), { internal: true });
  store.create('nodes', node('n2'), { internal: true });
  server = await startKubeApiServer({ store });
  return { store, url: server.url };
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Reads newline-delimited watch events from a streaming response until `enough` says stop, or the stream ends. */
async function readEvents(response: Response, enough: (events: { type: string; object: Record<string, unknown> }[]) => boolean) {
  const events: { type: string; object: Record<string, unknown> }[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = response.body!.getReader();
  for (;;) {
    if (enough(events)) {
      await reader.cancel();
      return { events, ended: false };
    }
    const { value, done } = await reader.read();
    if (done) return { events, ended: true };
    buffer += decoder.decode(value, { stream: true });
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      events.push(JSON.parse(buffer.slice(0, newline)));
      buffer = buffer.slice(newline + 1);
    }
  }
}

describe('the sandbox API server over HTTP', () => {
  it('serves legacy discovery, with pods/eviction in policy/v1, even when aggregated discovery is asked for', async () => {
    const { url } = await serve();
    const response = await fetch(`${url}/api/v1`, {
      headers: { Accept: 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json' },
    });
    expect(response.headers.get('content-type')).toBe('application/json');
    const list = (await response.json()) as { groupVersion: string; resources: Record<string, unknown>[] };
    expect(list.groupVersion).toBe('v1');
    expect(list.resources.find((r) => r.name === 'pods/eviction')).toEqual({
      name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'],
    });
    expect(list.resources.map((r) => r.name)).toEqual(expect.arrayContaining(['nodes', 'nodes/status', 'pods', 'pods/log', 'events']));
    const groups = (await (await fetch(`${url}/apis`)).json()) as { groups: { name: string }[] };
    expect(groups.groups.map((g) => g.name)).toEqual(['batch', 'apps', 'coordination.k8s.io', 'policy', 'authorization.k8s.io']);
    const batch = (await (await fetch(`${url}/apis/batch/v1`)).json()) as { resources: { name: string }[] };
    expect(batch.resources.map((r) => r.name)).toEqual(['jobs', 'jobs/status']);
    expect((await fetch(`${url}/openapi/v2`)).status).toBe(404);
  });

  it('answers unknown resources, unsupported patch types and bad JSON with Status objects', async () => {
    const { url } = await serve();
    const missing = await fetch(`${url}/api/v1/widgets`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });
    const apply = await fetch(`${url}/api/v1/nodes/n1`, { method: 'PATCH', headers: { 'Content-Type': 'application/apply-patch+yaml' }, body: 'spec: {}' });
    expect(apply.status).toBe(415);
    expect(await apply.json()).toMatchObject({ reason: 'UnsupportedMediaType', code: 415 });
    const protobuf = await fetch(`${url}/api/v1/namespaces`, { method: 'POST', headers: { 'Content-Type': 'application/vnd.kubernetes.protobuf' }, body: 'k8s\u0000' });
    expect(protobuf.status).toBe(415);
    const bad = await fetch(`${url}/api/v1/namespaces/default/configmaps`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{nope' });
    expect(bad.status).toBe(400);
    const notFound = await fetch(`${url}/apis/batch/v1/namespaces/os-patch/jobs/nope`);
    expect(await notFound.json()).toEqual({
      kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'jobs.batch "nope" not found', reason: 'NotFound', details: { name: 'nope', group: 'batch', kind: 'jobs' }, code: 404,
    });
  });

  it('answers a delete with a success Status, or with the object for pods and for what stays', async () => {
    const { store, url } = await serve();
    const gone = await fetch(`${url}/api/v1/nodes/n2`, { method: 'DELETE' });
    expect(await gone.json()).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'n2', kind: 'nodes' } });
    store.create('pods', runningPod('p', 'default', 'n1'), { internal: true });
    store.hooks.admit('pods', (r) => (r.operation === 'DELETE' ? 'deferred' : undefined));
    const terminating = await fetch(`${url}/api/v1/namespaces/default/pods/p`, {
      method: 'DELETE',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 5 }),
    });
    const pod = (await terminating.json()) as { kind: string; metadata: { deletionGracePeriodSeconds: number } };
    expect(pod.kind).toBe('Pod');
    expect(pod.metadata.deletionGracePeriodSeconds).toBe(5);
  });

  it('sets Retry-After on a 429', async () => {
    const { store, url } = await serve();
    const { tooManyRequests } = await import('../../src/sim/kube-api/index.ts');
    store.hooks.onRequest(() => tooManyRequests('slow down', 3));
    const response = await fetch(`${url}/api/v1/nodes`);
    expect(response.status).toBe(429);
    expect(response.headers.get('retry-after')).toBe('3');
  });

  it('returns Tables with metadata rows, or full objects with includeObject=Object', async () => {
    const { url } = await serve();
    const accept = { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' };
    const table = (await (await fetch(`${url}/api/v1/nodes`, { headers: accept })).json()) as Record<string, any>;
    expect(table.kind).toBe('Table');
    expect(table.columnDefinitions.filter((c: { priority: number }) => c.priority === 0).map((c: { name: string }) => c.name)).toEqual(['Name', 'Status', 'Roles', 'Age', 'Version']);
    expect(table.rows[0].object).toMatchObject({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'n1' } });
    const full = (await (await fetch(`${url}/api/v1/nodes?includeObject=Object`, { headers: accept })).json()) as Record<string, any>;
    expect(full.rows[1].object).toMatchObject({ kind: 'Node', status: { nodeInfo: { kubeletVersion: 'v1.30.2' } } });
  });

  it('streams watch events as Tables with the columns only in the first', async () => {
    const { store, url } = await serve();
    const response = await fetch(`${url}/api/v1/nodes?watch=true&resourceVersion=${store.resourceVersion}`, {
      headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' },
    });
    store.patch('nodes', { name: 'n1' }, 'strategic', { spec: { unschedulable: true } });
    store.patch('nodes', { name: 'n2' }, 'strategic', { spec: { unschedulable: true } });
    const { events } = await readEvents(response, (e) => e.length >= 2);
    expect(events.map((e) => [e.type, (e.object as { rows: { cells: unknown[] }[] }).rows[0]!.cells.slice(0, 2)])).toEqual([
      ['MODIFIED', ['n1', 'Ready,SchedulingDisabled']],
      ['MODIFIED', ['n2', 'Ready,SchedulingDisabled']],
    ]);
    expect((events[0]!.object.columnDefinitions as unknown[]).length).toBeGreaterThan(0);
    expect(events[1]!.object.columnDefinitions).toEqual([]);
  });

  it('ends a watch with the 410 ERROR for a resourceVersion it no longer has', async () => {
    const { KubeStore } = await import('../../src/sim/kube-api/index.ts');
    const small = new KubeStore({ clock: wallClock, watchHistory: 2 });
    for (let i = 0; i < 4; i++) small.create('nodes', node(`n${i}`));
    server = await startKubeApiServer({ store: small });
    const response = await fetch(`${server.url}/api/v1/nodes?watch=1&resourceVersion=1`);
    expect(response.status).toBe(200);
    const { events, ended } = await readEvents(response, () => false);
    expect(ended).toBe(true);
    expect(events).toEqual([{ type: 'ERROR', object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'too old resource version: 1 (3)', reason: 'Expired', code: 410 } }]);
  });

  it('ends open watches cleanly when it closes', async () => {
    const { url } = await serve();
    const response = await fetch(`${url}/api/v1/nodes?watch=1`);
    const reader = response.body!.getReader();
    let text = '';
    while ((text.match(/\n/g) ?? []).length < 2) text += new TextDecoder().decode((await reader.read()).value);
    expect(text.split('\n').filter(Boolean).map((line) => JSON.parse(line).type)).toEqual(['ADDED', 'ADDED']);
    const closing = server!.close();
    server = undefined;
    const rest = await reader.read();
    await closing;
    expect(rest.done).toBe(true);
  });
});
