/**
 * SelfSubjectAccessReviews: the answer comes from the asking token's rules, matched exactly as the server authorizes
 * the request itself, so `kubectl auth can-i` and KubeCluster.missingPermissions() predict what a request meets.
 * Also the protobuf bodies kubectl sends for them (and for `kubectl create namespace|configmap|serviceaccount`).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startKubeApiServer, type KubeApiServer, type KubeStore, type TokenGrant } from '../../src/sim/kube-api/index.ts';
import { clusterStore, node, wallClock } from './fixtures.ts';

const REVIEWS = '/apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

let server: KubeApiServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const TOKENS: Record<string, TokenGrant> = {
  admin: { user: 'admin' },
  operator: {
    user: 'system:serviceaccount:os-patch:operator',
    rules: [
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['nodes'], verbs: ['patch'], resourceNames: ['n1'] },
      { apiGroups: [''], resources: ['*/status'], verbs: ['patch'] },
      { apiGroups: ['batch'], resources: ['jobs'], verbs: ['*'] },
    ],
  },
};

/** null: a server without tokens. */
async function serve(tokens: Record<string, TokenGrant> | null = TOKENS): Promise<{ store: KubeStore; url: string }> {
  const store = clusterStore(wallClock);
  for (const name of ['n1', 'n2']) store.create('nodes', node(name), { internal: true });
  server = await startKubeApiServer({ store, ...(tokens === null ? {} : { tokens }) });
  return { store, url: server.url };
}

interface Attributes {
  verb: string;
  group?: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

async function review(url: string, token: string | undefined, spec: Record<string, unknown>) {
  const response = await fetch(`${url}${REVIEWS}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec }),
  });
  return { code: response.status, body: (await response.json()) as { status?: { allowed: boolean; denied?: boolean; reason?: string }; message?: string } };
}

const can = async (url: string, token: string | undefined, a: Attributes) => (await review(url, token, { resourceAttributes: a })).body.status;

/** The request the attributes describe, sent for real; its status code. */
async function attempt(url: string, token: string, a: Attributes): Promise<number> {
  const path = `${a.group ? `/apis/${a.group}/v1` : '/api/v1'}${a.namespace ? `/namespaces/${a.namespace}` : ''}/${a.resource}${a.name ? `/${a.name}` : ''}${a.subresource ? `/${a.subresource}` : ''}`;
  const method = { get: 'GET', list: 'GET', patch: 'PATCH', delete: 'DELETE' }[a.verb]!;
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/merge-patch+json' },
    ...(method === 'PATCH' ? { body: '{"metadata":{"labels":{"reviewed":"yes"}}}' } : {}),
  });
  await response.arrayBuffer();
  return response.status;
}

// --- a protobuf encoder, as kubectl's typed clients write bodies ---

function varint(value: number): Buffer {
  const bytes: number[] = [];
  while (value >= 0x80) {
    bytes.push((value & 0x7f) | 0x80);
    value >>>= 7;
  }
  bytes.push(value);
  return Buffer.from(bytes);
}

const field = (number: number, value: string | Buffer) => {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value;
  return Buffer.concat([varint((number << 3) | 2), varint(bytes.length), bytes]);
};
const boolField = (number: number, value: boolean) => Buffer.concat([varint(number << 3), varint(value ? 1 : 0)]);
const entry = (number: number, key: string, value: string | Buffer) => field(number, Buffer.concat([field(1, key), field(2, value)]));

/** The k8s magic and runtime.Unknown around an object's message. */
function protobuf(apiVersion: string, kind: string, raw: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x6b, 0x38, 0x73, 0x00]), field(1, Buffer.concat([field(1, apiVersion), field(2, kind)])), field(2, raw), field(3, ''), field(4, '')]);
}

const postProtobuf = (url: string, path: string, body: Buffer) =>
  fetch(`${url}${path}`, { method: 'POST', headers: { 'Content-Type': 'application/vnd.kubernetes.protobuf', Accept: 'application/vnd.kubernetes.protobuf,application/json' }, body });

describe('SelfSubjectAccessReviews', () => {
  it('are in discovery, as kubectl auth can-i looks for them', async () => {
    const { url } = await serve();
    const auth = { headers: { Authorization: 'Bearer operator' } };
    const groups = (await (await fetch(`${url}/apis`, auth)).json()) as { groups: { name: string; preferredVersion: { groupVersion: string } }[] };
    expect(groups.groups.find((g) => g.name === 'authorization.k8s.io')?.preferredVersion.groupVersion).toBe('authorization.k8s.io/v1');
    const resources = (await (await fetch(`${url}/apis/authorization.k8s.io/v1`, auth)).json()) as { resources: unknown[] };
    expect(resources.resources).toEqual([{ name: 'selfsubjectaccessreviews', singularName: 'selfsubjectaccessreview', namespaced: false, kind: 'SelfSubjectAccessReview', verbs: ['create'] }]);
  });

  it('answer from the asking token\'s rules, with a reason either way', async () => {
    const { url } = await serve();
    const { code, body } = await review(url, 'operator', { resourceAttributes: { verb: 'patch', resource: 'nodes', name: 'n1' } });
    expect(code).toBe(201);
    expect(body).toMatchObject({ kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', spec: { resourceAttributes: { verb: 'patch', resource: 'nodes', name: 'n1' } } });
    expect(body.status).toEqual({ allowed: true, reason: expect.stringContaining('"resourceNames":["n1"]') });
    expect(await can(url, 'operator', { verb: 'create', resource: 'pods', subresource: 'eviction', namespace: 'shop' })).toEqual({
      allowed: false,
      denied: true,
      reason: 'User "system:serviceaccount:os-patch:operator" cannot create resource "pods/eviction" in API group "" in the namespace "shop"',
    });
    expect(await can(url, 'admin', { verb: 'create', resource: 'pods', subresource: 'eviction' })).toMatchObject({ allowed: true });
    // Wildcards in the question match only wildcards in a rule, as RBAC reads them.
    expect(await can(url, 'operator', { verb: '*', group: 'batch', resource: 'jobs' })).toMatchObject({ allowed: true });
    expect(await can(url, 'operator', { verb: '*', resource: 'nodes' })).toMatchObject({ allowed: false });
  });

  it('say what the request itself would meet', async () => {
    const { url } = await serve();
    const cases: Attributes[] = [
      { verb: 'get', resource: 'nodes', name: 'n2' },
      { verb: 'list', resource: 'nodes' },
      { verb: 'patch', resource: 'nodes', name: 'n1' },
      { verb: 'patch', resource: 'nodes', name: 'n2' },
      { verb: 'patch', resource: 'nodes', name: 'n2', subresource: 'status' },
      { verb: 'get', resource: 'nodes', name: 'n2', subresource: 'status' },
      { verb: 'list', resource: 'pods', namespace: 'os-patch' },
      { verb: 'list', group: 'batch', resource: 'jobs', namespace: 'os-patch' },
      { verb: 'delete', group: 'batch', resource: 'jobs', namespace: 'os-patch', name: 'gone' },
    ];
    for (const a of cases) {
      const answer = await can(url, 'operator', a);
      const status = await attempt(url, 'operator', a);
      expect({ ...a, allowed: answer?.allowed }).toEqual({ ...a, allowed: status !== 403 });
    }
  });

  it('allow everything on a server without tokens, where every request has full access', async () => {
    const { url } = await serve(null);
    for (const a of [{ verb: 'patch', resource: 'nodes' }, { verb: 'create', resource: 'pods', subresource: 'eviction' }, { verb: 'escalate', group: 'rbac.authorization.k8s.io', resource: 'clusterroles' }]) {
      expect(await can(url, undefined, a)).toMatchObject({ allowed: true });
    }
    expect((await review(url, undefined, { nonResourceAttributes: { path: '/healthz', verb: 'get' } })).body.status).toMatchObject({ allowed: true });
  });

  it('need a known token, a POST and exactly one kind of attributes', async () => {
    const { url } = await serve();
    expect((await review(url, undefined, { resourceAttributes: { verb: 'get', resource: 'nodes' } })).code).toBe(401);
    expect((await review(url, 'stolen', { resourceAttributes: { verb: 'get', resource: 'nodes' } })).code).toBe(401);
    expect((await fetch(`${url}${REVIEWS}`, { headers: { Authorization: 'Bearer operator' } })).status).toBe(405);
    const neither = await review(url, 'operator', {});
    expect(neither.code).toBe(422);
    expect(neither.body.message).toContain('exactly one of nonResourceAttributes or resourceAttributes must be specified');
    expect((await review(url, 'operator', { resourceAttributes: { verb: 'get', resource: 'nodes' }, nonResourceAttributes: { path: '/', verb: 'get' } })).code).toBe(422);
  });

  it('pass through the request hook, so an injected outage fails them too', async () => {
    const { store, url } = await serve();
    const seen: string[] = [];
    store.hooks.onRequest((request) => {
      seen.push(`${request.verb} ${request.group}/${request.resource} by ${request.user.name}`);
    });
    await can(url, 'operator', { verb: 'get', resource: 'nodes' });
    expect(seen).toEqual(['create authorization.k8s.io/selfsubjectaccessreviews by system:serviceaccount:os-patch:operator']);
  });

  it('are read from protobuf, as kubectl sends them', async () => {
    const { url } = await serve(null);
    const attributes = Buffer.concat([field(1, 'default'), field(2, 'create'), field(3, ''), field(4, ''), field(5, 'pods'), field(6, 'eviction'), field(7, '')]);
    const body = protobuf('authorization.k8s.io/v1', 'SelfSubjectAccessReview', Buffer.concat([field(1, ''), field(2, field(1, attributes)), field(3, '')]));
    const response = await postProtobuf(url, REVIEWS, body);
    expect(response.status).toBe(201);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toMatchObject({
      spec: { resourceAttributes: { namespace: 'default', verb: 'create', resource: 'pods', subresource: 'eviction' } },
      status: { allowed: true },
    });
  });
});

describe('protobuf bodies of kubectl create', () => {
  it('create a Namespace, a ConfigMap (binary data as base64) and a ServiceAccount; other kinds are a 415', async () => {
    const { store, url } = await serve(null);
    const meta = (name: string, namespace = '') => field(1, Buffer.concat([field(1, name), field(2, ''), field(3, namespace), entry(11, 'team', 'os')]));
    expect((await postProtobuf(url, '/api/v1/namespaces', protobuf('v1', 'Namespace', Buffer.concat([meta('x'), field(2, ''), field(3, '')])))).status).toBe(201);
    expect(store.get('namespaces', { name: 'x' }).metadata.labels).toMatchObject({ team: 'os' });

    const configMap = protobuf('v1', 'ConfigMap', Buffer.concat([meta('settings', 'x'), entry(2, 'a', 'b'), entry(3, 'bin', Buffer.from([0, 1, 255])), boolField(4, true)]));
    expect((await postProtobuf(url, '/api/v1/namespaces/x/configmaps', configMap)).status).toBe(201);
    expect(store.get('configmaps', { namespace: 'x', name: 'settings' })).toMatchObject({ data: { a: 'b' }, binaryData: { bin: 'AAH/' }, immutable: true });

    expect((await postProtobuf(url, '/api/v1/namespaces/x/serviceaccounts', protobuf('v1', 'ServiceAccount', meta('robot', 'x')))).status).toBe(201);

    const pod = await postProtobuf(url, '/api/v1/namespaces/x/pods', protobuf('v1', 'Pod', meta('p', 'x')));
    expect(pod.status).toBe(415);
    expect(await pod.json()).toMatchObject({ reason: 'UnsupportedMediaType' });
  });
});
