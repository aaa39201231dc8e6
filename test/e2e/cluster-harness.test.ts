/**
 * The harnesses of the container suites (kind, the agent Job, deploy manifests) against stand-ins, so their plumbing is
 * checked on every machine (the suites that use them for real need Docker): a fake `kind` on PATH that records its
 * arguments, a fake Docker socket, and loopback Kubernetes APIs that play the Job controller and the kubelet.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import { AGENT_CONFIGMAP_NAME, AGENT_SCRIPT_KEY } from '../../src/cluster/kube/job-manifest.ts';
import { runAgentJob } from '../../src/harness/agent-job.ts';
import { createKindCluster, kindAvailable, loadImage, nodeNames } from '../../src/harness/kind.ts';
import { applyManifests, readManifests } from '../../src/harness/manifests.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('cluster-harness');
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

const KUBECONFIG = (server: string) => `apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: { server: "${server}", insecure-skip-tls-verify: true }
users:
- name: fake
  user: { token: fake }
contexts:
- name: fake
  context: { cluster: fake, user: fake }
current-context: fake
`;

/** A `kind` that logs each call's arguments (one line each) and answers like kind 0.27. */
function fakeKind(dir: string): { path: string; calls: () => string[][] } {
  const log = join(dir, 'calls.log');
  const path = join(dir, 'kind');
  writeFileSync(
    path,
    `#!/usr/bin/env bash
printf '%s\\x1f' "$@" >>'${log}'; echo >>'${log}'
case "$1 $2" in
  "version "*) echo "kind v0.27.0 go1.23.6 linux/amd64" ;;
  "create cluster")
    while [ $# -gt 0 ]; do [ "$1" = --config ] && cfg=$2; shift; done
    grep -q 'role: worker' "$cfg" || { echo 'ERROR: failed to create cluster: node did not become ready' >&2; exit 1; } ;;
  "get kubeconfig") cat <<'EOF'
${KUBECONFIG('https://127.0.0.1:6443')}EOF
  ;;
  "get nodes") printf '%s\\n' e2e-worker e2e-control-plane ;;
esac
`,
  );
  chmodSync(path, 0o755);
  return {
    path,
    calls: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\x1f').filter(Boolean)),
  };
}

async function fakeDockerSocket(dir: string): Promise<string> {
  const path = join(dir, 'docker.sock');
  const server: Server = createServer((socket) => {
    socket.on('data', () => socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK'));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `unix://${path}`;
}

describe('kindAvailable', () => {
  it('says kind is missing when it is not on PATH', async () => {
    const probe = await kindAvailable({ env: { PATH: scratch() } });
    expect(probe).toEqual({ ok: false, reason: 'kind is not installed (kind: ENOENT, not on PATH)' });
  });

  it('names the version and why Docker is unusable when kind exists but no engine answers', async () => {
    const dir = scratch();
    const kind = fakeKind(dir);
    const probe = await kindAvailable({ kindPath: kind.path, env: { PATH: process.env.PATH, DOCKER_HOST: `unix://${join(dir, 'none.sock')}` } });
    expect(probe.ok).toBe(false);
    if (!probe.ok) expect(probe.reason).toMatch(/^kind v0\.27\.0 is installed, but DOCKER_HOST=unix:\/\/.*none\.sock: ENOENT$/);
  });

  it('is ok with kind and an engine that answers', async () => {
    const dir = scratch();
    const kind = fakeKind(dir);
    const probe = await kindAvailable({ kindPath: kind.path, env: { PATH: process.env.PATH, DOCKER_HOST: await fakeDockerSocket(dir) } });
    expect(probe).toEqual({ ok: true, version: 'v0.27.0' });
  });
});

describe('createKindCluster', () => {
  it('creates a control plane and a worker into a kubeconfig of its own, and deletes once', async () => {
    const dir = scratch();
    const kind = fakeKind(dir);
    const env = { PATH: process.env.PATH };
    const cluster = await createKindCluster({ name: 'e2e', kindPath: kind.path, env, image: 'kindest/node:v1.31.2', waitSeconds: 90, verbose: false });
    expect(cluster.kubeConfig.getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    expect(cluster.kubeconfig).toContain('current-context: fake');
    expect(await nodeNames(cluster)).toEqual(['e2e-control-plane', 'e2e-worker']);
    await loadImage(cluster, 'debian:bookworm-slim');
    await cluster.delete();
    await cluster.delete();

    const calls = kind.calls();
    const create = calls.find((c) => c[0] === 'create')!;
    expect(create).toEqual(expect.arrayContaining(['--name', 'e2e', '--wait', '90s', '--image', 'kindest/node:v1.31.2', '--kubeconfig']));
    // Never the user's ~/.kube/config.
    expect(create[create.indexOf('--kubeconfig') + 1]).toMatch(/patchpilot-kind-e2e-.*\/kubeconfig$/);
    expect(calls.filter((c) => c[0] === 'delete')).toHaveLength(1);
    expect(calls).toContainEqual(['load', 'docker-image', 'debian:bookworm-slim', '--name', 'e2e']);
  });

  it('deletes a half-made cluster when creation fails', async () => {
    const dir = scratch();
    const kind = fakeKind(dir);
    // workers: 0 makes the fake refuse, as kind does when a node does not come up.
    await expect(createKindCluster({ name: 'bad', kindPath: kind.path, env: { PATH: process.env.PATH }, workers: 0, verbose: false })).rejects.toThrow();
    expect(kind.calls().map((c) => c.slice(0, 2).join(' '))).toEqual(['create cluster', 'delete cluster']);
  });
});

interface FakeApi {
  kubeConfig: KubeConfig;
  requests: { method: string; path: string; body: unknown }[];
}

/** Just enough of the API server for runAgentJob: the pod ends after `pollsToFinish` polls and leaves `log` behind. */
async function fakeApi(log: string, exitCode: number, pollsToFinish = 3): Promise<FakeApi> {
  const requests: FakeApi['requests'] = [];
  let polls = 0;
  let configMapExists = false;
  const readBody = async (req: IncomingMessage) => {
    let text = '';
    for await (const chunk of req) text += String(chunk);
    return text ? (JSON.parse(text) as unknown) : null;
  };
  const server: HttpServer = createHttpServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const body = await readBody(req);
    requests.push({ method: req.method ?? '', path: url.pathname + url.search, body });
    const json = (status: number, value: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value));
    };
    const route = `${req.method} ${url.pathname}`;
    if (route === 'POST /api/v1/namespaces') return json(409, { kind: 'Status', code: 409, reason: 'AlreadyExists' });
    if (route === 'POST /api/v1/namespaces/os-patch/configmaps') {
      if (configMapExists) return json(409, { kind: 'Status', code: 409, reason: 'AlreadyExists' });
      configMapExists = true;
      return json(201, body);
    }
    if (route === `PUT /api/v1/namespaces/os-patch/configmaps/${AGENT_CONFIGMAP_NAME}`) return json(200, body);
    if (route === 'POST /apis/batch/v1/namespaces/os-patch/jobs') return json(201, body);
    if (route === 'GET /api/v1/namespaces/os-patch/pods') {
      polls += 1;
      const done = polls >= pollsToFinish;
      const pod = {
        metadata: { name: 'agent-pod-1', namespace: 'os-patch' },
        status: {
          phase: done ? (exitCode === 0 ? 'Succeeded' : 'Failed') : 'Pending',
          containerStatuses: [
            { name: 'agent', state: done ? { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' } } : { waiting: { reason: 'ContainerCreating' } } },
          ],
        },
      };
      return json(200, { kind: 'PodList', apiVersion: 'v1', metadata: {}, items: polls > 1 ? [pod] : [] });
    }
    if (route === 'GET /api/v1/namespaces/os-patch/pods/agent-pod-1/log') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      return res.end(log);
    }
    json(404, { kind: 'Status', code: 404, message: `fake has no ${route}` });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(KUBECONFIG(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));
  return { kubeConfig, requests };
}

const REPORT = {
  result: 'patched',
  upgraded: [{ name: 'libssl3', from: '3.0.15-1~deb12u1', to: '3.0.17-1~deb12u1' }],
  held: [],
  rebootRequired: false,
  rebootPackages: [],
  error: null,
  durationSeconds: 41,
};

describe('runAgentJob', () => {
  it('installs the script, creates the pinned Job, waits for its pod and parses the last log line', async () => {
    const api = await fakeApi(`[10:00:00] patchpilot-agent: apt: 1 upgrade\n${JSON.stringify(REPORT)}\n`, 0);
    // Twice: the second run finds the ConfigMap and replaces it (a newer script must win).
    for (const hash of ['h1', 'h2']) {
      const result = await runAgentJob(api.kubeConfig, { node: 'e2e-worker', hash, pollMs: 5 });
      expect(result).toMatchObject({ phase: 'Succeeded', exitCode: 0, report: REPORT, failure: null, podName: 'agent-pod-1' });
      expect(result.jobName).toBe(`apply-os-patch-on-e2e-worker-with-${hash}`);
    }
    const job = api.requests.find((r) => r.method === 'POST' && r.path.endsWith('/jobs'))?.body as {
      spec: { template: { spec: { nodeName: string; hostPID: boolean; containers: { args: string[] }[] } } };
    };
    expect(job.spec.template.spec).toMatchObject({ nodeName: 'e2e-worker', hostPID: true });
    expect(job.spec.template.spec.containers[0]?.args).toEqual(expect.arrayContaining(['--security-only', '--hold']));
    const configMap = api.requests.find((r) => r.path.endsWith('/configmaps'))?.body as { data: Record<string, string> };
    expect(configMap.data[AGENT_SCRIPT_KEY]).toMatch(/^#!\/usr\/bin\/env bash/);
    expect(api.requests.map((r) => `${r.method} ${r.path.split('?')[0]}`)).toContain(`PUT /api/v1/namespaces/os-patch/configmaps/${AGENT_CONFIGMAP_NAME}`);
    expect(api.requests.find((r) => r.path.includes('/pods?'))?.path).toContain('labelSelector=job-name%3Dapply-os-patch-on-e2e-worker-with-h1');
  });

  it('reports a pod that died without a report as JOB_FAILED, with its last words', async () => {
    // What a node without bash gives (k3s's image): nsenter cannot start the agent at all.
    const api = await fakeApi('nsenter: failed to execute bash: No such file or directory\n', 127);
    const result = await runAgentJob(api.kubeConfig, { node: 'k3s-node', pollMs: 5 });
    expect(result).toMatchObject({ phase: 'Failed', exitCode: 127, report: null });
    expect(result.reportError).toMatch(/not JSON/);
    expect(result.failure).toEqual({
      code: 'JOB_FAILED',
      message: 'the agent pod ended Failed (exit 127) without a report: nsenter: failed to execute bash: No such file or directory',
    });
  });

  it('gives up after its timeout and says what the pod was doing', async () => {
    const api = await fakeApi('', 0, Infinity);
    await expect(runAgentJob(api.kubeConfig, { node: 'slow', pollMs: 20, timeoutMs: 100 })).rejects.toThrow(
      /did not finish within 0\.1 s: pod agent-pod-1 Pending; agent waiting \(ContainerCreating\)$/,
    );
  });
});

describe('applyManifests', () => {
  const MANIFESTS = {
    '20-rbac.yaml': `apiVersion: v1
kind: ServiceAccount
metadata: { name: patchpilot, namespace: os-patch }
---
# a comment-only document is skipped
`,
    '10-namespace.yaml': `apiVersion: v1
kind: ServiceAccount
metadata: { name: early, namespace: os-patch }
---
apiVersion: v1
kind: Namespace
metadata: { name: os-patch }
`,
  };

  it('reads every document, Namespaces first, files in name order; nothing when the folder is missing', () => {
    const dir = scratch();
    for (const [file, text] of Object.entries(MANIFESTS)) writeFileSync(join(dir, file), text);
    writeFileSync(join(dir, 'README.md'), '# not a manifest');
    expect(readManifests(dir).map((m) => `${m.file}:${m.object.kind}/${m.object.metadata?.name}`)).toEqual([
      '10-namespace.yaml:Namespace/os-patch',
      '10-namespace.yaml:ServiceAccount/early',
      '20-rbac.yaml:ServiceAccount/patchpilot',
    ]);
    expect(readManifests(join(dir, 'missing'))).toEqual([]);
  });

  it("follows a kustomization's resources, and leaves out the kinds it is told to", () => {
    const dir = scratch();
    for (const [file, text] of Object.entries(MANIFESTS)) writeFileSync(join(dir, file), text);
    writeFileSync(join(dir, 'unlisted.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: unlisted }\n');
    writeFileSync(join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [20-rbac.yaml, 10-namespace.yaml]\n');
    expect(readManifests(dir).map((m) => `${m.file}:${m.object.kind}/${m.object.metadata?.name}`)).toEqual([
      '10-namespace.yaml:Namespace/os-patch',
      '20-rbac.yaml:ServiceAccount/patchpilot',
      '10-namespace.yaml:ServiceAccount/early',
    ]);
    expect(readManifests(dir, { excludeKinds: ['ServiceAccount'] }).map((m) => m.object.kind)).toEqual(['Namespace']);
    writeFileSync(join(dir, 'kustomization.yaml'), 'resources: [gone.yaml]\n');
    expect(() => readManifests(dir)).toThrow('kustomization.yaml lists gone.yaml, which this harness cannot find as local files');
  });

  it('reads the project\'s own deploy/ (what the k3s suite applies)', () => {
    const objects = readManifests(fileURLToPath(new URL('../../deploy/', import.meta.url)), { excludeKinds: ['Deployment'] });
    const kinds = objects.map((m) => m.object.kind);
    expect(kinds[0]).toBe('Namespace');
    expect(kinds).toEqual(expect.arrayContaining(['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding']));
    expect(kinds).not.toContain('Deployment');
    expect(kinds).not.toContain('Kustomization');
  });

  it('creates each object through discovery, and keeps one that exists', async () => {
    const dir = scratch();
    for (const [file, text] of Object.entries(MANIFESTS)) writeFileSync(join(dir, file), text);
    const posts: string[] = [];
    const server: HttpServer = createHttpServer(async (req, res) => {
      for await (const chunk of req) void chunk;
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      if (req.method === 'GET' && path === '/api/v1') {
        return json(200, {
          kind: 'APIResourceList',
          groupVersion: 'v1',
          resources: [
            { name: 'namespaces', singularName: 'namespace', kind: 'Namespace', namespaced: false, verbs: ['create'] },
            { name: 'serviceaccounts', singularName: 'serviceaccount', kind: 'ServiceAccount', namespaced: true, verbs: ['create'] },
          ],
        });
      }
      posts.push(`${req.method} ${path}`);
      if (path === '/api/v1/namespaces') return json(409, { kind: 'Status', code: 409, reason: 'AlreadyExists' });
      return json(201, {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(() => resolve())));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(KUBECONFIG(`http://127.0.0.1:${(server.address() as AddressInfo).port}`));

    const applied = await applyManifests(kubeConfig, dir);
    expect(applied).toEqual([
      { file: '10-namespace.yaml', kind: 'Namespace', name: 'os-patch', created: false },
      { file: '10-namespace.yaml', kind: 'ServiceAccount', name: 'early', namespace: 'os-patch', created: true },
      { file: '20-rbac.yaml', kind: 'ServiceAccount', name: 'patchpilot', namespace: 'os-patch', created: true },
    ]);
    expect(posts).toEqual([
      'POST /api/v1/namespaces',
      'POST /api/v1/namespaces/os-patch/serviceaccounts',
      'POST /api/v1/namespaces/os-patch/serviceaccounts',
    ]);
  });
});
