/**
 * The patch Job and the node agent on a real multi-node cluster: kind, whose nodes are Debian containers with apt,
 * systemd, containerd and a kubelet. The agent enters the node's namespaces with nsenter and patches it for real from
 * Debian's security suite: whether it then reports `patched` or `no-updates` depends on the day; what must hold either
 * way is that kubelet, containerd and runc are never moved and that the node's holds are as they were.
 *
 * Needs the kind binary and a Docker engine (CI's `kind` job installs kind); without them the suite is skipped and says
 * why. Then a whole Orchestrator run, through the Kubernetes adapter, patches every node of the cluster.
 */
import { CoreV1Api } from '@kubernetes/client-node';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_AGENT_IMAGE } from '../../src/cluster/kube/job-manifest.ts';
import { ANNOTATIONS } from '../../src/engine/metadata.ts';
import { versionHash } from '../../src/engine/hash.ts';
import { DEFAULT_HOLD_PACKAGES, parsePlan } from '../../src/engine/plan.ts';
import { KubeCluster } from '../../src/cluster/kube/index.ts';
import { ensureNamespace } from '../../src/harness/agent-job.ts';
import { createKindCluster, kindAvailable, loadImage, nodeNames, runAgentJob, type KindCluster } from '../../src/harness/kind.ts';
import { Orchestrator } from '../../src/service/orchestrator.ts';
import { SystemClock } from '../../src/service/system-clock.ts';

// CI runs this suite in a job of its own; its other jobs may well have kind installed too.
const kind = process.env.PATCHPILOT_SKIP_KIND
  ? ({ ok: false, reason: 'PATCHPILOT_SKIP_KIND is set' } as const)
  : await kindAvailable();
if (!kind.ok) console.warn(`[test/e2e/kind] skipped: ${kind.reason}`);

/** Unique per process: two runs on one Docker engine (CI's jobs, a developer's second terminal) must not meet. */
const CLUSTER_NAME = `patchpilot-e2e-${process.pid}`;
const SETUP_TIMEOUT = 15 * 60_000;
const AGENT_TIMEOUT = 15 * 60_000;
const RUN_TIMEOUT = 30 * 60_000;

/** Packages an OS patch must never move on a Kubernetes node, whatever their Debian names. */
const KUBERNETES_PACKAGES = /^(kube|containerd|runc|cri-tools|kubernetes-cni)/;

async function onNode(node: string, command: string[]): Promise<string> {
  // kind names each node's container after the node.
  return (await execa('docker', ['exec', node, ...command])).stdout.trim();
}

async function hasLocalImage(image: string): Promise<boolean> {
  return !(await execa('docker', ['image', 'inspect', image], { reject: false })).failed;
}

describe.skipIf(!kind.ok)('on a kind cluster', () => {
  let cluster: KindCluster | undefined;
  let workers: string[] = [];

  beforeAll(async () => {
    cluster = await createKindCluster({ name: CLUSTER_NAME, workers: 1 });
    // CI pulls the agent's image once on the host; loading it spares every node a registry pull (and rate limits).
    if (await hasLocalImage(DEFAULT_AGENT_IMAGE)) await loadImage(cluster, DEFAULT_AGENT_IMAGE);
    workers = (await nodeNames(cluster)).filter((name) => !name.endsWith('-control-plane'));
  }, SETUP_TIMEOUT);

  afterAll(async () => {
    await cluster?.delete();
  }, 5 * 60_000);

  it(
    'runs the agent Job on a worker: a valid report, and kubelet, containerd and the holds untouched',
    async () => {
      const node = workers[0];
      expect(node, 'the cluster has a worker node').toBeDefined();
      if (!cluster || !node) return;
      const versions = async () => ({
        kubelet: await onNode(node, ['kubelet', '--version']),
        containerd: await onNode(node, ['containerd', '--version']),
        runc: await onNode(node, ['runc', '--version']),
        holds: await onNode(node, ['apt-mark', 'showhold']),
      });
      const before = await versions();

      const result = await runAgentJob(cluster.kubeConfig, { node, timeoutMs: AGENT_TIMEOUT - 60_000 });
      const context = `agent log (exit ${result.exitCode}):\n${result.log}`;
      expect(result.report, context).not.toBeNull();
      const report = result.report!;
      expect(['patched', 'no-updates'], context).toContain(report.result);
      expect(result.phase).toBe('Succeeded');
      expect(report.upgraded.map((u) => u.name).filter((name) => KUBERNETES_PACKAGES.test(name)), context).toEqual([]);
      // Only installed packages of the hold list are held (kind installs the Kubernetes binaries without dpkg).
      for (const held of report.held) expect(DEFAULT_HOLD_PACKAGES as readonly string[]).toContain(held);

      expect(await versions()).toEqual(before);
      // An upgrade may restart a service the kubelet depends on (systemd, libc users): the node must come back Ready.
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      const ready = async () => (await core.readNode({ name: node })).status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
      const giveUpAt = Date.now() + 120_000;
      while (!(await ready()) && Date.now() < giveUpAt) await new Promise((resolve) => setTimeout(resolve, 2000));
      expect(await ready(), `${node} is Ready after the patch`).toBe(true);
    },
    AGENT_TIMEOUT,
  );

  it(
    'an Orchestrator run through the Kubernetes adapter patches every node, marks it with the hash and leaves none cordoned',
    async () => {
      if (!cluster) return;
      const clock = new SystemClock();
      const kubeCluster = new KubeCluster({ kubeConfig: cluster.kubeConfig, clock });
      // What deploy/ and `patchpilot` set up before a first run: the namespace, then this build's agent script.
      await ensureNamespace(cluster.kubeConfig);
      await kubeCluster.ensureAgentConfigMap();
      expect(await kubeCluster.missingPermissions()).toEqual([]);

      const events: string[] = [];
      const orchestrator = new Orchestrator({ cluster: kubeCluster, clock, holder: `e2e-${process.pid}`, onEvent: (e) => events.push(JSON.stringify(e)) });
      const plan = parsePlan({
        cluster: kubeCluster.name,
        rebootIfRequired: false,
        drainTimeoutSeconds: 300,
        patchTimeoutSeconds: 900,
        lockTimeoutSeconds: 120,
      });
      const triggerId = `kind-e2e-${Date.now()}`;
      const handle = await orchestrator.start({ plan, requestedBy: 'e2e', triggerId, notBefore: null });
      const output = await handle.result;
      const context = `run ${handle.runId}: ${JSON.stringify(output)}\n${events.slice(-40).join('\n')}`;

      const names = await nodeNames(cluster);
      expect(output.outcome, context).toBe('succeeded');
      expect([...output.selected].sort(), context).toEqual(names);
      expect(output.failedNodes).toEqual([]);

      const hash = versionHash(plan, triggerId);
      const core = cluster.kubeConfig.makeApiClient(CoreV1Api);
      for (const node of (await core.listNode()).items) {
        const name = node.metadata?.name ?? '?';
        expect(node.metadata?.labels?.[plan.labelKey], `${name} carries the hash`).toBe(hash);
        expect(node.spec?.unschedulable ?? false, `${name} is schedulable`).toBe(false);
        expect(node.metadata?.annotations?.[ANNOTATIONS.cordonedBy], `${name} has no cordon of ours`).toBeUndefined();
        expect(node.metadata?.annotations?.[ANNOTATIONS.run]).toBe(handle.runId);
        expect(['patched', 'no-updates']).toContain(node.metadata?.annotations?.[ANNOTATIONS.status]);
      }
    },
    RUN_TIMEOUT,
  );
});
