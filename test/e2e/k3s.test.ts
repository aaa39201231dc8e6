/**
 * patchpilot's Kubernetes side against a real API server, kubelet and Job controller: k3s in one container
 * (testcontainers' K3sContainer). The deploy manifests are applied and their RBAC checked by the API server's own
 * authorizer, the agent's patch Job runs on the k3s node (by the harness and by the Kubernetes adapter), and the node
 * is cordoned and uncordoned through client-node and through the adapter.
 *
 * The k3s node is no OS patchpilot supports: its image is built from scratch with busybox and no package manager, so
 * the agent must fail cleanly and change nothing.
 *
 * Needs a container runtime that can run privileged containers. Without one the suite is skipped, with the reason
 * printed, before testcontainers is even imported.
 */
import { fileURLToPath } from 'node:url';
import { AuthorizationV1Api, CoreV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Node } from '@kubernetes/client-node';
import type { StartedK3sContainer } from '@testcontainers/k3s';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_NAMESPACE } from '../../src/cluster/kube/job-manifest.ts';
import { patchJobName } from '../../src/cluster/jobs.ts';
import { KubeCluster, REQUIRED_PERMISSIONS, describePermission } from '../../src/cluster/kube/index.ts';
import { ANNOTATIONS } from '../../src/engine/metadata.ts';
import { AGENT_ERROR_CODES } from '../../src/engine/report.ts';
import { probeContainerRuntime } from '../../src/harness/container-runtime.ts';
import { ensureNamespace, runAgentJob } from '../../src/harness/agent-job.ts';
import { applyManifests, readManifests, type AppliedObject } from '../../src/harness/manifests.ts';
import { parsePlan } from '../../src/engine/plan.ts';
import { SystemClock } from '../../src/service/system-clock.ts';

const runtime = await probeContainerRuntime();
if (!runtime.ok) console.warn(`[test/e2e/k3s] skipped: ${runtime.reason}`);

const K3S_IMAGE = 'rancher/k3s:v1.31.2-k3s1';
const DEPLOY_DIR = fileURLToPath(new URL('../../deploy/', import.meta.url));
/** Not the orchestrator's own Deployment: it would compete with these tests for the node (and its image is not there). */
const MANIFEST_OPTIONS = { excludeKinds: ['Deployment'] };
const START_TIMEOUT = 5 * 60_000;
const AGENT_TIMEOUT = 6 * 60_000;

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function waitFor<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 120_000): Promise<T> {
  const giveUpAt = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > giveUpAt) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 500)}`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

const isReady = (node: V1Node) => node.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';

describe.skipIf(!runtime.ok)('on k3s (testcontainers)', () => {
  let k3s: StartedK3sContainer | undefined;
  let kubeConfig: KubeConfig;
  let core: CoreV1Api;
  let nodeName: string;
  let applied: AppliedObject[] = [];

  beforeAll(async () => {
    const { K3sContainer } = await import('@testcontainers/k3s');
    k3s = await new K3sContainer(K3S_IMAGE).start();
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromString(k3s.getKubeConfig());
    core = kubeConfig.makeApiClient(CoreV1Api);
    const nodes = await waitFor('a Ready node', () => core.listNode(), (list) => list.items.some(isReady));
    nodeName = nodes.items.find(isReady)!.metadata!.name!;
    applied = await applyManifests(kubeConfig, DEPLOY_DIR, MANIFEST_OPTIONS);
    // Without deploy/ the agent's namespace is all the Jobs need.
    await ensureNamespace(kubeConfig, DEFAULT_NAMESPACE);
  }, START_TIMEOUT);

  afterAll(async () => {
    await k3s?.stop();
  }, 60_000);

  it('the deploy manifests apply, and the API server grants their service account what patching needs', async () => {
    expect(applied.map((a) => `${a.kind}/${a.name}`)).toEqual(readManifests(DEPLOY_DIR, MANIFEST_OPTIONS).map((m) => `${m.object.kind}/${m.object.metadata?.name}`));
    expect((await core.readNamespace({ name: DEFAULT_NAMESPACE })).metadata?.name).toBe(DEFAULT_NAMESPACE);
    const account = applied.find((a) => a.kind === 'ServiceAccount');
    if (!account) {
      console.warn('[test/e2e/k3s] deploy/ has no ServiceAccount: its RBAC is not checked');
      return;
    }
    const user = `system:serviceaccount:${account.namespace ?? 'default'}:${account.name}`;
    const authz = kubeConfig.makeApiClient(AuthorizationV1Api);
    // Everything the adapter sends, as it lists it itself (and checks up front with SelfSubjectAccessReviews).
    const denied: string[] = [];
    for (const permission of REQUIRED_PERMISSIONS) {
      const [resource = '', subresource] = permission.resource.split('/');
      const namespace = permission.namespaced ? DEFAULT_NAMESPACE : null;
      for (const verb of permission.verbs) {
        const review = await authz.createSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SubjectAccessReview',
            spec: {
              user,
              groups: ['system:serviceaccounts', `system:serviceaccounts:${account.namespace ?? 'default'}`, 'system:authenticated'],
              resourceAttributes: {
                verb,
                group: permission.group,
                resource,
                ...(subresource ? { subresource } : {}),
                ...(namespace ? { namespace } : {}),
              },
            },
          },
        });
        if (!review.status?.allowed) denied.push(describePermission({ verb, group: permission.group, resource: permission.resource, namespace }));
      }
    }
    expect(denied, `${user} is denied`).toEqual([]);
  });

  it(
    'the agent Job on the k3s node fails with a clear code and changes nothing',
    async () => {
      const node = k3s!;
      // Anything the agent might write outside the kubelet's and k3s's own state (pod volumes, logs) would be newer.
      await node.exec(['touch', '/tmp/patchpilot-before']);
      const result = await runAgentJob(kubeConfig, { node: nodeName, timeoutMs: AGENT_TIMEOUT - 30_000 });
      const context = `agent log (exit ${result.exitCode}):\n${result.log}`;

      expect(result.phase, context).toBe('Failed');
      if (result.report) {
        // A node with bash but neither apt nor dnf: the agent itself refuses it.
        expect(result.report, context).toMatchObject({ result: 'failed', upgraded: [], held: [], error: { code: 'UNSUPPORTED_OS' } });
        expect(AGENT_ERROR_CODES as readonly string[]).toContain(result.report.error?.code);
      } else {
        // k3s's image has busybox's sh and no bash, so nsenter cannot start the agent at all (exit 127); the engine
        // records that as JOB_FAILED with the pod's last line.
        expect(result.exitCode, context).toBe(127);
        expect(result.failure?.code).toBe('JOB_FAILED');
        expect(result.failure?.message).toMatch(/bash/);
      }

      const changed = await node.exec([
        'sh',
        '-c',
        'find /etc /bin /sbin /usr /lib -xdev -type f -newer /tmp/patchpilot-before 2>/dev/null; true',
      ]);
      expect(changed.stdout.trim(), 'files changed on the node').toBe('');
      const after = await core.readNode({ name: nodeName });
      expect(after.spec?.unschedulable ?? false).toBe(false);
      expect(Object.keys(after.metadata?.annotations ?? {}).filter((k) => k.startsWith('patchpilot.io/'))).toEqual([]);
    },
    AGENT_TIMEOUT,
  );

  it('cordons and uncordons the node through client-node, the ownership annotation in the same patch', async () => {
    const owner = 'run-k3s-e2e';
    await core.patchNode(
      { name: nodeName, body: { spec: { unschedulable: true }, metadata: { annotations: { [ANNOTATIONS.cordonedBy]: owner } } } },
      mergePatch,
    );
    const cordoned = await waitFor(
      'the unschedulable taint',
      () => core.readNode({ name: nodeName }),
      (n) => (n.spec?.taints ?? []).some((t) => t.key === 'node.kubernetes.io/unschedulable'),
    );
    expect(cordoned.spec?.unschedulable).toBe(true);
    expect(cordoned.metadata?.annotations?.[ANNOTATIONS.cordonedBy]).toBe(owner);

    await core.patchNode(
      { name: nodeName, body: { spec: { unschedulable: null }, metadata: { annotations: { [ANNOTATIONS.cordonedBy]: null } } } },
      mergePatch,
    );
    const uncordoned = await waitFor(
      'the unschedulable taint to go',
      () => core.readNode({ name: nodeName }),
      (n) => !(n.spec?.taints ?? []).some((t) => t.key === 'node.kubernetes.io/unschedulable'),
    );
    expect(uncordoned.spec?.unschedulable ?? false).toBe(false);
    expect(uncordoned.metadata?.annotations?.[ANNOTATIONS.cordonedBy]).toBeUndefined();
  });

  it(
    'the Kubernetes adapter reports the same failure for its own patch Job',
    async () => {
      const cluster = new KubeCluster({ kubeConfig, clock: new SystemClock() });
      await cluster.ensureAgentConfigMap();
      const plan = parsePlan({});
      const hash = 'k3sadapter1';
      const jobName = patchJobName('native', nodeName, hash);
      const started = await cluster.startPatchJob({
        jobName,
        runId: 'run-k3s-adapter',
        node: nodeName,
        hash,
        mode: 'native',
        agent: 'modern',
        securityOnly: plan.securityOnly,
        holdPackages: plan.holdPackages,
        lockTimeoutSeconds: 60,
        rebootIfRequired: false,
        downloadOnly: false,
      });
      expect(started).toEqual({ jobName, created: true });
      const outcome = await cluster.awaitAgentReport(jobName, AbortSignal.timeout(AGENT_TIMEOUT - 30_000)).then(
        (report) => ({ report, error: null }),
        (error: unknown) => ({ report: null, error: error as { code?: string; message: string } }),
      );
      if (outcome.report) expect(outcome.report).toMatchObject({ result: 'failed', error: { code: 'UNSUPPORTED_OS' } });
      else expect(outcome.error, String(outcome.error?.message)).toMatchObject({ code: 'JOB_FAILED' });
    },
    AGENT_TIMEOUT,
  );

  it('the Kubernetes adapter cordons once and never lifts a cordon that is not its own', async () => {
    const cluster = new KubeCluster({ kubeConfig, clock: new SystemClock() });
    expect(await cluster.cordon(nodeName, 'run-a')).toBe('cordoned');
    expect(await cluster.cordon(nodeName, 'run-a')).toBe('already-ours');
    expect(await cluster.cordon(nodeName, 'run-b')).toBe('foreign');
    expect(await cluster.uncordon(nodeName, 'run-b')).toBe('not-ours');
    expect((await cluster.getNode(nodeName))?.unschedulable).toBe(true);
    expect(await cluster.uncordon(nodeName, 'run-a')).toBe('uncordoned');
    expect(await cluster.uncordon(nodeName, 'run-a')).toBe('not-cordoned');
    expect((await cluster.getNode(nodeName))?.unschedulable).toBe(false);
  });
});
