/**
 * KubeCluster against the sandbox API server over HTTP: every ClusterPort promise, and what a real cluster does to
 * them (a human cordoning at the same moment, a PodDisruptionBudget, a finalizer, a throttled or failing API server,
 * RBAC, a node deleted mid-step), in virtual time.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeApiError, KubeForbiddenError, KubeNamespaceMissingError, type KubeCluster } from '../../src/cluster/kube/index.ts';
import { EffectError } from '../../src/engine/effects.ts';
import { ApiChaos, internalError, StatusError, tooManyRequests, type KubeObject } from '../../src/sim/kube-api/index.ts';
import type { PatchJobSpec } from '../../src/cluster/port.ts';
import { agentReportLine, eventsFor, fakeKubelet, NAMESPACE, seedNode, seedPod, startBench, START, type Bench } from './support.ts';

let bench: Bench;
let kube: KubeCluster;

beforeEach(async () => {
  bench = await startBench({ tokens: { 'no-patch': { user: 'limited', rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] }] } } });
  kube = bench.cluster();
});

afterEach(async () => {
  await bench.close();
});

const run = <T>(operation: Promise<T>) => bench.time.run(operation);
const node = (name: string) => bench.store.get('nodes', { name });
const signal = () => new AbortController().signal;
const CORDONED_BY = 'patchpilot.io/cordoned-by';

/** Changes the node just before the adapter's next PATCH of it reaches the store (a human with kubectl, a controller). */
function beforeNextPatch(name: string, change: (draft: KubeObject) => void): void {
  let done = false;
  bench.store.hooks.onRequest((request) => {
    if (done || request.verb !== 'patch' || request.resource !== 'nodes' || request.name !== name) return;
    done = true;
    bench.store.modify('nodes', { name }, change, { internal: true });
  });
}

describe('nodes', () => {
  it('lists and reads nodes as the engine sees them; a missing node is null', async () => {
    seedNode(bench.store, 'w1', { labels: { 'topology.kubernetes.io/zone': 'a' }, bootId: 'b-1' });
    seedNode(bench.store, 'w2', { ready: false, unschedulable: true });
    const nodes = await run(kube.listNodes());
    expect(nodes.map((n) => [n.name, n.ready, n.unschedulable])).toEqual([
      ['w1', true, false],
      ['w2', false, true],
    ]);
    expect(nodes[0]).toMatchObject({ bootId: 'b-1', kubeletVersion: 'v1.30.4', osImage: 'Ubuntu 22.04.4 LTS', labels: { 'topology.kubernetes.io/zone': 'a' } });
    expect(await run(kube.getNode('nope'))).toBeNull();
  });

  it('follows nodes with a watch: the full list first, then each change', async () => {
    seedNode(bench.store, 'w1');
    const controller = new AbortController();
    const seen: string[] = [];
    let resolveChange!: () => void;
    const changed = new Promise<void>((resolve) => (resolveChange = resolve));
    const watching = kube.watchNodes((event) => {
      if (event.type === 'synced') {
        seen.push(`synced ${event.nodes.map((n) => n.name).join(',')}`);
        bench.store.modify('nodes', { name: 'w1' }, (n) => (n.metadata.labels = { ...n.metadata.labels, touched: 'yes' }), { internal: true });
      } else {
        seen.push(`${event.type} ${event.node.name} ${event.node.labels.touched ?? ''}`);
        resolveChange();
      }
    }, controller.signal);
    await changed;
    controller.abort();
    await watching;
    expect(seen).toEqual(['synced w1', 'modified w1 yes']);
  });
});

describe('watching nodes after the server forgot our version', () => {
  it('lists again on 410 Gone and goes on watching', async () => {
    await bench.close();
    bench = await startBench({ watchHistory: 2 });
    const watcher = bench.cluster();
    seedNode(bench.store, 'w1');
    const controller = new AbortController();
    const seen: string[] = [];
    let resolveDone!: () => void;
    const done = new Promise<void>((resolve) => (resolveDone = resolve));
    const watching = watcher.watchNodes((event) => {
      if (event.type !== 'synced') return;
      seen.push(event.nodes.map((n) => `${n.name}:${n.labels.round ?? '-'}`).join(','));
      if (seen.length === 2) return resolveDone();
      // The server ends the watch; more changes happen than it keeps, so resuming from our version is 410 Gone.
      bench.store.closeWatches();
      for (let round = 1; round <= 5; round++) {
        bench.store.modify('nodes', { name: 'w1' }, (n) => (n.metadata.labels = { ...n.metadata.labels, round: String(round) }), { internal: true });
      }
    }, controller.signal);
    await done;
    controller.abort();
    await watching;
    expect(seen).toEqual(['w1:-', 'w1:5']);
  });
});

describe('watching nodes through server-side timeouts and dropped connections', () => {
  /**
   * Lets the adapter's requests and callbacks run until `done`, moving the clock a second at a time whenever nothing
   * is on the wire (the adapter waits a moment on its clock before watching again after a dropped connection).
   */
  async function turnUntil(what: string, done: () => boolean): Promise<void> {
    for (let i = 0; i < 20_000 && !done(); i++) {
      await new Promise((resolve) => setImmediate(resolve));
      if (i % 50 === 49 && bench.requests.length === requestsSeen) bench.clock.increment(1_000);
      requestsSeen = bench.requests.length;
    }
    if (!done()) throw new Error(`never happened: ${what}`);
  }
  let requestsSeen = 0;

  it('watches again when the server ends the watch (1-2x --min-request-timeout) or chaos drops it, missing no change', async () => {
    await bench.close();
    bench = await startBench({ minRequestTimeoutSeconds: 60, chaos: new ApiChaos({ rate: 0.5, seed: 11, maxWatchMs: 30_000 }) });
    const watcher = bench.cluster();
    seedNode(bench.store, 'w1');
    const controller = new AbortController();
    const changes: string[] = [];
    let synced = 0;
    const watching = watcher.watchNodes((event) => {
      if (event.type === 'synced') synced += 1;
      else changes.push(`${event.type} ${event.node.labels.round ?? '-'}`);
    }, controller.signal);
    const watches = () => bench.requests.filter((r) => r.resource === 'nodes' && r.verb === 'watch').length;
    await turnUntil('the first watch', () => synced === 1 && watches() >= 1);
    for (let round = 1; round <= 6; round++) {
      const before = watches();
      // Two minutes of clock: past any server-side timeout (60-120 s) and any chaos drop (up to 30 s).
      bench.clock.increment(120_000);
      await turnUntil(`a new watch in round ${round}`, () => watches() > before);
      bench.store.modify('nodes', { name: 'w1' }, (n) => (n.metadata.labels = { ...n.metadata.labels, round: String(round) }), { internal: true });
      await turnUntil(`the change of round ${round}`, () => changes.includes(`modified ${round}`));
    }
    controller.abort();
    await watching;
    expect(changes.filter((c) => c.startsWith('modified'))).toEqual(['modified 1', 'modified 2', 'modified 3', 'modified 4', 'modified 5', 'modified 6']);
    expect(watches()).toBeGreaterThanOrEqual(7);
  });
});

describe('cordon and uncordon', () => {
  it('cordons with the cordoned-by annotation in one patch, and knows its own cordon again', async () => {
    seedNode(bench.store, 'w1');
    expect(await run(kube.cordon('w1', 'run-1'))).toBe('cordoned');
    expect(node('w1')).toMatchObject({ spec: { unschedulable: true }, metadata: { annotations: { [CORDONED_BY]: 'run-1' } } });
    expect(bench.requests.filter((r) => r.verb === 'patch')).toHaveLength(1);
    expect(await run(kube.cordon('w1', 'run-1'))).toBe('already-ours');
    expect(await run(kube.cordon('w1', 'run-2'))).toBe('foreign');
  });

  it("never claims a cordon someone made between its read and its write (the patch's test fails, it reads again)", async () => {
    seedNode(bench.store, 'w1');
    beforeNextPatch('w1', (n) => {
      n.spec = { unschedulable: true };
    });
    expect(await run(kube.cordon('w1', 'run-1'))).toBe('foreign');
    expect(node('w1').metadata.annotations?.[CORDONED_BY]).toBeUndefined();
  });

  it("lifts only its own cordon; someone else's stays", async () => {
    seedNode(bench.store, 'ours', { unschedulable: true, annotations: { [CORDONED_BY]: 'run-1' } });
    seedNode(bench.store, 'theirs', { unschedulable: true, annotations: { 'ops/reason': 'disk' } });
    seedNode(bench.store, 'free');
    expect(await run(kube.uncordon('ours', 'run-1'))).toBe('uncordoned');
    expect(node('ours').spec).toEqual({});
    expect(node('ours').metadata.annotations?.[CORDONED_BY]).toBeUndefined();
    expect(await run(kube.uncordon('theirs', 'run-1'))).toBe('not-ours');
    expect(node('theirs').spec).toEqual({ unschedulable: true });
    expect(await run(kube.uncordon('free', 'run-1'))).toBe('not-cordoned');
  });

  it('does not lift a cordon that someone re-made as theirs while it was deciding', async () => {
    seedNode(bench.store, 'w1', { unschedulable: true, annotations: { [CORDONED_BY]: 'run-1' } });
    beforeNextPatch('w1', (n) => {
      n.metadata.annotations = { [CORDONED_BY]: 'run-9' };
    });
    expect(await run(kube.uncordon('w1', 'run-1'))).toBe('not-ours');
    expect(node('w1')).toMatchObject({ spec: { unschedulable: true }, metadata: { annotations: { [CORDONED_BY]: 'run-9' } } });
  });

  it('a node that no longer exists is NODE_GONE', async () => {
    await expect(run(kube.cordon('gone', 'run-1'))).rejects.toMatchObject({ code: 'NODE_GONE', retryable: false });
  });
});

describe('drain', () => {
  beforeEach(() => {
    seedNode(bench.store, 'w1');
    seedNode(bench.store, 'w2');
    seedPod(bench.store, 'web-1', { node: 'w1', owner: { kind: 'ReplicaSet', name: 'web-7d9' } });
    seedPod(bench.store, 'api-1', { node: 'w1', owner: { kind: 'ReplicaSet', name: 'api-5c4' } });
    seedPod(bench.store, 'fluentd-x1', { node: 'w1', namespace: 'kube-system', owner: { kind: 'DaemonSet', name: 'fluentd' } });
    seedPod(bench.store, 'etcd-w1', { node: 'w1', namespace: 'kube-system', annotations: { 'kubernetes.io/config.mirror': 'abc' } });
    seedPod(bench.store, 'batch-done', { node: 'w1', phase: 'Succeeded' });
    seedPod(bench.store, 'web-2', { node: 'w2', owner: { kind: 'ReplicaSet', name: 'web-7d9' } });
  });

  const remaining = () => bench.store.list('pods').items.map((p) => p.metadata.name).sort();

  it('evicts what must go and leaves DaemonSet, mirror, finished pods and other nodes alone', async () => {
    const result = await run(kube.drain('w1', { gracePeriodSeconds: 30, podSelector: '', giveUpAt: START + 60_000, signal: signal() }));
    expect(result).toEqual({ evicted: 2, blocked: [] });
    expect(remaining()).toEqual(['batch-done', 'etcd-w1', 'fluentd-x1', 'web-2']);
    const evictions = bench.requests.filter((r) => r.subresource === 'eviction').map((r) => r.name);
    expect(evictions.sort()).toEqual(['api-1', 'web-1']);
    expect(eventsFor(bench.store, 'w1')).toContainEqual({ reason: 'PatchpilotDrain', type: 'Normal', message: 'drained: 2 pod(s) evicted' });
  });

  it('refuses, as kubectl drain does, a pod with no controller or with emptyDir data, evicting nothing, unless the plan allows', async () => {
    seedPod(bench.store, 'debug', { node: 'w1' });
    bench.store.modify('pods', { namespace: 'shop', name: 'api-1' }, (p) => void ((p.spec as Record<string, unknown>).volumes = [{ name: 'scratch', emptyDir: {} }]), { internal: true });
    const refused = await run(kube.drain('w1', { gracePeriodSeconds: 30, podSelector: '', giveUpAt: START + 60_000, signal: signal() }));
    expect(refused).toEqual({
      evicted: 0,
      refused: true,
      blocked: [
        { pod: 'api-1', namespace: 'shop', reason: 'cannot delete Pods with local storage (set drain.deleteEmptyDirData in the plan to override)' },
        { pod: 'debug', namespace: 'shop', reason: 'cannot delete Pods that declare no controller (set drain.force in the plan to override)' },
      ],
    });
    expect(bench.requests.filter((r) => r.subresource === 'eviction')).toEqual([]);
    expect(eventsFor(bench.store, 'w1').at(-1)).toMatchObject({ reason: 'PatchpilotDrain', type: 'Warning', message: expect.stringContaining('shop/debug: cannot delete Pods that declare no controller') });
    const allowed = await run(kube.drain('w1', { gracePeriodSeconds: 30, podSelector: '', force: true, deleteEmptyDirData: true, giveUpAt: START + 60_000, signal: signal() }));
    expect(allowed).toEqual({ evicted: 3, blocked: [] });
    expect(remaining()).toEqual(['batch-done', 'etcd-w1', 'fluentd-x1', 'web-2']);
  });

  it("evicts only the plan's pod selector", async () => {
    const result = await run(kube.drain('w1', { gracePeriodSeconds: -1, podSelector: 'app=web', giveUpAt: START + 60_000, signal: signal() }));
    expect(result.evicted).toBe(1);
    expect(remaining()).toContain('api-1');
  });

  it('asks again while a PodDisruptionBudget refuses, and succeeds once it allows', async () => {
    const allowedAt = START + 20_000;
    bench.store.hooks.onEviction(({ store, namespace, name }) => {
      if (name === 'web-1' && store.clock.now() < allowedAt) {
        throw tooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0, [
          { reason: 'DisruptionBudget', message: 'The disruption budget web-pdb needs 2 healthy pods and has 2 currently' },
        ]);
      }
      store.delete('pods', { namespace, name });
    });
    const result = await run(kube.drain('w1', { gracePeriodSeconds: 30, podSelector: '', giveUpAt: START + 60_000, signal: signal() }));
    expect(result).toEqual({ evicted: 2, blocked: [] });
    expect(bench.clock.now()).toBeGreaterThanOrEqual(allowedAt);
    expect(bench.requests.filter((r) => r.subresource === 'eviction' && r.name === 'web-1').length).toBeGreaterThan(2);
  });

  it('gives up at giveUpAt and names the PodDisruptionBudget that still refuses', async () => {
    bench.store.hooks.onEviction(({ store, namespace, name }) => {
      if (name === 'web-1') {
        throw tooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.", 0, [
          { reason: 'DisruptionBudget', message: 'The disruption budget web-pdb needs 2 healthy pods and has 2 currently' },
        ]);
      }
      store.delete('pods', { namespace, name });
    });
    const result = await run(kube.drain('w1', { gracePeriodSeconds: 30, podSelector: '', giveUpAt: START + 30_000, signal: signal() }));
    expect(result.evicted).toBe(1);
    expect(result.blocked).toEqual([
      {
        pod: 'web-1',
        namespace: 'shop',
        reason: "Cannot evict pod as it would violate the pod's disruption budget. The disruption budget web-pdb needs 2 healthy pods and has 2 currently",
      },
    ]);
    expect(bench.clock.now()).toBe(START + 30_000);
    expect(eventsFor(bench.store, 'w1').at(-1)).toMatchObject({ reason: 'PatchpilotDrain', type: 'Warning' });
  });

  it('reports a pod that was evicted but never goes away, with its finalizers', async () => {
    seedPod(bench.store, 'stuck-1', { node: 'w1', owner: { kind: 'StatefulSet', name: 'stuck' }, finalizers: ['example.com/protect'] });
    const result = await run(kube.drain('w1', { gracePeriodSeconds: 30, podSelector: '', giveUpAt: START + 30_000, signal: signal() }));
    expect(result).toEqual({
      evicted: 3,
      blocked: [{ pod: 'stuck-1', namespace: 'shop', reason: 'pod stuck Terminating: finalizers example.com/protect not removed' }],
    });
  });
});

function patchSpec(overrides: Partial<PatchJobSpec> = {}): PatchJobSpec {
  return {
    runId: 'run-1',
    node: 'w1',
    hash: '0a436363a5cd9980e2cc',
    mode: 'native',
    agent: 'modern',
    securityOnly: true,
    holdPackages: ['kubelet'],
    lockTimeoutSeconds: 600,
    rebootIfRequired: true,
    jobName: 'apply-os-patch-on-w1-with-0a436363a5cd9980e2cc',
    downloadOnly: false,
    ...overrides,
  };
}

describe('patch Jobs and the agent report', () => {
  beforeEach(() => {
    seedNode(bench.store, 'w1');
  });

  it('ships the agent script, creates the Job once per run, and reads the report from the log', async () => {
    const kubelet = fakeKubelet(bench.store, () => ({ log: ['Reading package lists...', agentReportLine(), 'done'], exitCode: 0 }));
    expect(await run(kube.startPatchJob(patchSpec()))).toEqual({ jobName: patchSpec().jobName, created: true });
    const configMap = bench.store.get('configmaps', { namespace: NAMESPACE, name: 'patchpilot-agent' });
    expect(configMap.data).toEqual({ 'patchpilot-agent.sh': '#!/bin/bash\necho agent\n' });
    expect(await run(kube.startPatchJob(patchSpec()))).toEqual({ jobName: patchSpec().jobName, created: false });
    expect(kubelet.jobs.size).toBe(1);
    const report = await run(kube.awaitAgentReport(patchSpec().jobName, signal()));
    expect(report).toMatchObject({ result: 'patched', upgraded: [{ name: 'openssl' }] });
    expect(eventsFor(bench.store, 'w1').map((e) => e.message)).toEqual([
      `patch job ${patchSpec().jobName} started`,
      `patch job ${patchSpec().jobName} of this run already exists`,
      `job ${patchSpec().jobName}: 1 package(s) upgraded, held kubelet`,
    ]);
  });

  it('updates the agent ConfigMap when it holds another script', async () => {
    bench.store.create(
      'configmaps',
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'patchpilot-agent', namespace: NAMESPACE, annotations: { 'patchpilot.io/script-sha256': 'old' } }, data: { 'patchpilot-agent.sh': 'old' } },
      { internal: true },
    );
    fakeKubelet(bench.store, () => ({ log: [agentReportLine()], exitCode: 0 }));
    await run(kube.startPatchJob(patchSpec()));
    expect(bench.store.get('configmaps', { namespace: NAMESPACE, name: 'patchpilot-agent' }).data).toEqual({ 'patchpilot-agent.sh': '#!/bin/bash\necho agent\n' });
  });

  it("waits for and reuses another run's Job of the same patch (a fenced-off holder's) instead of patching the node twice", async () => {
    const kubelet = fakeKubelet(bench.store, () => ({ log: [agentReportLine()], exitCode: 0, runMs: 30_000 }));
    await run(kube.startPatchJob(patchSpec({ runId: 'run-0', generation: 3 })));
    const first = bench.store.get('jobs', { namespace: NAMESPACE, name: patchSpec().jobName });
    expect(first.metadata.labels?.['patchpilot.io/lease-generation']).toBe('3');
    // Still running: the new holder's run takes it as its own Job and waits for its report.
    expect(await run(kube.startPatchJob(patchSpec({ runId: 'run-1', generation: 4 })))).toEqual({ jobName: patchSpec().jobName, created: false });
    expect(await run(kube.awaitAgentReport(patchSpec().jobName, signal()))).toMatchObject({ result: 'patched' });
    // Finished: its report is still the result of this patch.
    expect(await run(kube.startPatchJob(patchSpec({ runId: 'run-2', generation: 5 })))).toMatchObject({ created: false });
    expect(bench.store.get('jobs', { namespace: NAMESPACE, name: patchSpec().jobName }).metadata.uid).toBe(first.metadata.uid);
    expect(kubelet.jobs.size).toBe(1);
  });

  it("replaces an earlier trigger's finished Job of the same name (Palette's names carry no hash), and refuses to touch one still running", async () => {
    const kubelet = fakeKubelet(bench.store, () => ({ log: [agentReportLine()], exitCode: 0, runMs: 30_000 }));
    await run(kube.startPatchJob(patchSpec({ runId: 'run-0', hash: 'e4rlier0trigger00000' })));
    const first = bench.store.get('jobs', { namespace: NAMESPACE, name: patchSpec().jobName }).metadata.uid;
    await expect(run(kube.startPatchJob(patchSpec({ runId: 'run-1' })))).rejects.toMatchObject({ code: 'API_ERROR', retryable: true, message: expect.stringContaining('still running') });
    await run(kube.awaitAgentReport(patchSpec().jobName, signal()));
    expect(await run(kube.startPatchJob(patchSpec({ runId: 'run-1' })))).toMatchObject({ created: true });
    const second = bench.store.get('jobs', { namespace: NAMESPACE, name: patchSpec().jobName });
    expect(second.metadata.uid).not.toBe(first);
    expect(second.metadata.annotations?.['patchpilot.io/run']).toBe('run-1');
    expect(kubelet.jobs.size).toBe(1);
    // The new Job's report, not the old pod's (still being collected or not).
    expect(await run(kube.awaitAgentReport(patchSpec().jobName, signal()))).toMatchObject({ result: 'patched' });
  });

  it('returns a failed report as a result, even though the pod exited 1', async () => {
    const failed = agentReportLine({ result: 'failed', upgraded: [], error: { code: 'LOCK_TIMEOUT', message: 'dpkg lock held for 600s' } });
    fakeKubelet(bench.store, () => ({ log: ['E: Could not get lock', failed], exitCode: 1 }));
    await run(kube.startPatchJob(patchSpec()));
    expect(await run(kube.awaitAgentReport(patchSpec().jobName, signal()))).toMatchObject({ result: 'failed', error: { code: 'LOCK_TIMEOUT' } });
    expect(eventsFor(bench.store, 'w1').at(-1)).toMatchObject({ type: 'Warning', message: expect.stringContaining('agent failed: LOCK_TIMEOUT') });
  });

  it('without a report, fails with JOB_FAILED naming how the pod ended and its last lines', async () => {
    fakeKubelet(bench.store, () => ({ log: ['Unpacking linux-image-6.8.0-45 ...', 'Killed'], exitCode: 137, reason: 'OOMKilled' }));
    await run(kube.startPatchJob(patchSpec()));
    const error = await run(kube.awaitAgentReport(patchSpec().jobName, signal())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EffectError);
    expect(error).toMatchObject({ code: 'JOB_FAILED', retryable: false });
    const message = (error as Error).message;
    expect(message).toContain('no agent report in its log');
    expect(message).toContain('container OOMKilled with exit code 137');
    expect(message).toContain('job BackoffLimitExceeded');
    expect(message).toContain('last log lines: Unpacking linux-image-6.8.0-45 ... | Killed');
    expect(eventsFor(bench.store, 'w1').at(-1)).toMatchObject({ reason: 'PatchpilotPatch', type: 'Warning' });
  });

  it("names the Job's DeadlineExceeded when the agent ran out of time", async () => {
    fakeKubelet(bench.store, () => ({ log: [], exitCode: 143, reason: 'Error', jobFailureReason: 'DeadlineExceeded' }));
    await run(kube.startPatchJob(patchSpec()));
    await expect(run(kube.awaitAgentReport(patchSpec().jobName, signal()))).rejects.toThrow(/the agent printed nothing; container Error with exit code 143; job DeadlineExceeded/);
  });

  it('says so when the namespace is missing, instead of creating it', async () => {
    const elsewhere = bench.cluster({ namespace: 'absent' });
    const error = await run(elsewhere.startPatchJob(patchSpec())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeNamespaceMissingError);
    expect((error as Error).message).toMatch(/^namespace absent does not exist/);
  });
});

describe('reboot and rejoin', () => {
  beforeEach(() => {
    seedNode(bench.store, 'w1', { bootId: 'boot-1' });
  });

  it('asks the node to reboot through a Job, once per key', async () => {
    const kubelet = fakeKubelet(bench.store, () => ({ log: [], exitCode: 0 }));
    await run(kube.reboot('w1', 'run-1/w1'));
    await run(kube.reboot('w1', 'run-1/w1'));
    expect(kubelet.jobs.size).toBe(1);
    const job = [...kubelet.jobs.values()][0]!;
    expect(job.metadata.labels?.['patchpilot.io/action']).toBe('reboot');
    expect(job.metadata.annotations?.['patchpilot.io/reboot-key']).toBe('run-1/w1');
    await run(kube.reboot('w1', 'run-2/w1'));
    expect(kubelet.jobs.size).toBe(2);
    expect(eventsFor(bench.store, 'w1').map((e) => e.message)).toEqual([
      'reboot requested (key run-1/w1)',
      'reboot already requested (key run-1/w1)',
      'reboot requested (key run-2/w1)',
    ]);
  });

  it('waits until the node is Ready with a new boot id', async () => {
    bench.store.modify('nodes', { name: 'w1' }, (n) => ((n.status as { conditions: unknown[] }).conditions = [{ type: 'Ready', status: 'False' }]), { internal: true });
    bench.clock.setTimeout(() => {
      bench.store.modify('nodes', { name: 'w1' }, (n) => (n.status = { conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { bootID: 'boot-1', kubeletVersion: 'v1.30.4' } }), { internal: true });
    }, 20_000);
    bench.clock.setTimeout(() => {
      bench.store.modify('nodes', { name: 'w1' }, (n) => (n.status = { conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { bootID: 'boot-2', kubeletVersion: 'v1.30.4' } }), { internal: true });
    }, 90_000);
    const back = await run(kube.awaitReady('w1', 'boot-1', signal()));
    expect(back).toMatchObject({ ready: true, bootId: 'boot-2' });
    expect(bench.clock.now()).toBeGreaterThanOrEqual(START + 90_000);
  });

  it('fails with NODE_GONE when the node is deleted while it waits', async () => {
    bench.clock.setTimeout(() => bench.store.delete('nodes', { name: 'w1' }), 30_000);
    await expect(run(kube.awaitReady('w1', 'boot-1', signal()))).rejects.toMatchObject({ code: 'NODE_GONE' });
  });

  it('stops waiting when aborted', async () => {
    const controller = new AbortController();
    bench.clock.setTimeout(() => controller.abort(new Error('step deadline')), 10_000);
    await expect(run(kube.awaitReady('w1', 'boot-1', controller.signal))).rejects.toThrow('step deadline');
  });
});

describe('node metadata', () => {
  const TASK = 'patchpilot.io/os-patch';

  it('sets and removes labels and annotations, keeping an operator\'s "disabled"', async () => {
    seedNode(bench.store, 'w1', { labels: { [TASK]: 'disabled' }, annotations: { 'patchpilot.io/last-patch-error': 'old' } });
    seedNode(bench.store, 'w2', { labels: { [TASK]: 'older-hash' } });
    const patch = { labels: { [TASK]: 'h1' }, annotations: { 'patchpilot.io/last-patch-status': 'patched', 'patchpilot.io/last-patch-error': null }, keepLabelValues: { [TASK]: 'disabled' } };
    await run(kube.patchNodeMetadata('w1', patch));
    await run(kube.patchNodeMetadata('w2', patch));
    expect(node('w1').metadata.labels?.[TASK]).toBe('disabled');
    expect(node('w1').metadata.annotations).toEqual({ 'patchpilot.io/last-patch-status': 'patched' });
    expect(node('w2').metadata.labels?.[TASK]).toBe('h1');
    expect(eventsFor(bench.store, 'w2')).toEqual([{ reason: 'PatchpilotMark', type: 'Normal', message: `${TASK}=h1, patchpilot.io/last-patch-status=patched` }]);
  });

  it('keeps a "disabled" an operator sets between its read and its write', async () => {
    seedNode(bench.store, 'w1', { labels: { [TASK]: 'older-hash' } });
    beforeNextPatch('w1', (n) => {
      n.metadata.labels = { ...n.metadata.labels, [TASK]: 'disabled' };
    });
    await run(kube.patchNodeMetadata('w1', { labels: { [TASK]: 'h1' }, annotations: { 'patchpilot.io/last-patch-status': 'patched' }, keepLabelValues: { [TASK]: 'disabled' } }));
    expect(node('w1').metadata.labels?.[TASK]).toBe('disabled');
    expect(node('w1').metadata.annotations?.['patchpilot.io/last-patch-status']).toBe('patched');
    expect(bench.requests.filter((r) => r.verb === 'patch')).toHaveLength(2);
  });
});

describe('the lease', () => {
  const request = (holder: string, durationSeconds = 60) => ({ name: 'patchpilot-prod', holder, durationSeconds });
  const leaseSpec = () => bench.store.get('leases', { namespace: NAMESPACE, name: 'patchpilot-prod' }).spec as Record<string, unknown>;

  it('is held by one orchestrator until it expires by the observer\'s clock, renewed by its holder, then taken over', async () => {
    const other = bench.cluster();
    expect(await run(kube.acquireLease(request('a')))).toEqual({ acquired: true, generation: 0, previousHolder: '' });
    expect(await run(other.acquireLease(request('b')))).toEqual({ acquired: false, holder: 'a', since: START, expiresAt: START + 60_000, problem: null });
    bench.clock.increment(30_000);
    expect(await run(kube.renewLease(request('a')))).toMatchObject({ acquired: true, generation: 0 });
    bench.clock.increment(45_000);
    // b saw the renewal only now (75 s in): it waits a whole term from here, whatever renewTime says.
    expect(await run(other.acquireLease(request('b')))).toMatchObject({ acquired: false, holder: 'a', expiresAt: START + 135_000 });
    bench.clock.increment(59_000);
    expect(await run(other.acquireLease(request('b')))).toMatchObject({ acquired: false });
    bench.clock.increment(1_000);
    expect(await run(other.acquireLease(request('b')))).toEqual({ acquired: true, generation: 1, previousHolder: 'a' });
    expect(await run(kube.renewLease(request('a')))).toMatchObject({ acquired: false, holder: 'b' });
    expect(leaseSpec()).toMatchObject({ holderIdentity: 'b', leaseDurationSeconds: 60, leaseTransitions: 1 });
    expect(String(leaseSpec().renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('cannot be stolen by a contender whose wall clock runs ahead: expiry is never judged from renewTime', async () => {
    await run(kube.acquireLease(request('a')));
    // The holder's renewTime is ten minutes in the past by the contender's wall clock (skew); it still waits a term.
    const lease = bench.store.get('leases', { namespace: NAMESPACE, name: 'patchpilot-prod' });
    bench.store.update('leases', { ...lease, spec: { ...(lease.spec as object), renewTime: new Date(START - 600_000).toISOString().replace('Z', '000Z') } });
    const contender = bench.cluster();
    expect(await run(contender.acquireLease(request('b')))).toMatchObject({ acquired: false, holder: 'a', expiresAt: START + 60_000 });
  });

  it('is freed on release, and only by its holder', async () => {
    await run(kube.acquireLease(request('a')));
    await run(kube.releaseLease('patchpilot-prod', 'b'));
    expect(await run(kube.acquireLease(request('b')))).toMatchObject({ acquired: false });
    await run(kube.releaseLease('patchpilot-prod', 'a'));
    expect(await run(kube.acquireLease(request('b')))).toMatchObject({ acquired: true, generation: 1 });
  });

  it('goes to exactly one of two orchestrators taking over an expired lease at once', async () => {
    await run(kube.acquireLease(request('old')));
    const [b, c] = [bench.cluster(), bench.cluster()];
    // Each contender starts counting when it first sees the record.
    await run(Promise.all([b.acquireLease(request('b')), c.acquireLease(request('c'))]));
    bench.clock.increment(61_000);
    const [rb, rc] = await run(Promise.all([b.acquireLease(request('b')), c.acquireLease(request('c'))]));
    expect([rb.acquired, rc.acquired].sort()).toEqual([false, true]);
    const loser = rb.acquired ? rc : rb;
    expect(loser).toMatchObject({ holder: rb.acquired ? 'b' : 'c' });
  });

  it.each([
    // A negative or zero duration never gets this far: the API server refuses it (see the next test), as upstream's
    // ValidateLeaseSpec does. A duration left out passes validation, and must still not be read as "expired".
    { name: 'no duration', spec: { holderIdentity: 'patchpilot/x/1/2026-01-01T00:00:00Z/aaaaaa' }, problem: /has no leaseDurationSeconds/ },
    { name: 'no spec at all', spec: undefined, problem: /has no spec/ },
    { name: 'a garbage holder', spec: { holderIdentity: '\u0000;drop table', leaseDurationSeconds: 60 }, problem: null },
  ])('treats a hand-edited Lease with $name as held: a safe wait of a whole term, never a second writer', async ({ spec, problem }) => {
    bench.store.create('leases', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'patchpilot-prod', namespace: NAMESPACE }, ...(spec ? { spec } : {}) });
    const refused = await run(kube.acquireLease(request('b')));
    expect(refused).toMatchObject({ acquired: false, expiresAt: START + 60_000 });
    if (problem) expect((refused as { problem: string }).problem).toMatch(problem);
    bench.clock.increment(59_000);
    expect(await run(kube.acquireLease(request('b')))).toMatchObject({ acquired: false });
    bench.clock.increment(1_000);
    expect(await run(kube.acquireLease(request('b')))).toMatchObject({ acquired: true });
    expect(leaseSpec()).toMatchObject({ holderIdentity: 'b', leaseDurationSeconds: 60 });
  });

  it.each([-5, 0])('a Lease edited to leaseDurationSeconds %i is refused by the API server, as upstream refuses it', (seconds) => {
    expect(() =>
      bench.store.create('leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: 'patchpilot-prod', namespace: NAMESPACE },
        spec: { holderIdentity: 'someone', leaseDurationSeconds: seconds },
      }),
    ).toThrow(/spec.leaseDurationSeconds: Invalid value: -?\d+: must be greater than 0/);
  });

  it.each([403, 409, 500])('answers an API server that refuses the lease write with %i with an error or a refusal, never a grant', async (status) => {
    await run(kube.acquireLease(request('a')));
    bench.clock.increment(61_000);
    const contender = bench.cluster({ retry: { attempts: 1 } });
    await run(contender.acquireLease(request('b')));
    bench.clock.increment(61_000);
    bench.store.hooks.onRequest((r) =>
      r.verb === 'update' && r.resource === 'leases'
        ? new StatusError(status, status === 403 ? 'Forbidden' : status === 409 ? 'Conflict' : 'InternalError', `refused with ${status}`)
        : undefined,
    );
    const answer = await run(contender.acquireLease(request('b'))).catch((e: unknown) => e);
    expect(answer).not.toMatchObject({ acquired: true });
    expect(leaseSpec()).toMatchObject({ holderIdentity: 'a' });
  });
});

describe('a struggling API server', () => {
  beforeEach(() => {
    seedNode(bench.store, 'w1');
  });

  function failNext(count: number, error: () => StatusError, match: (r: { verb: string; resource: string }) => boolean = () => true): void {
    let left = count;
    bench.store.hooks.onRequest((request) => {
      if (left > 0 && match(request)) {
        left -= 1;
        return error();
      }
      return undefined;
    });
  }

  it('retries 500s with backoff on the clock', async () => {
    failNext(2, () => internalError('etcdserver: leader changed'));
    expect(await run(kube.getNode('w1'))).toMatchObject({ name: 'w1' });
    expect(bench.requests.filter((r) => r.resource === 'nodes')).toHaveLength(3);
    expect(bench.clock.now()).toBeGreaterThan(START);
  });

  it("honours a 429's Retry-After", async () => {
    failNext(1, () => tooManyRequests('Too many requests, please try again later.', 7));
    await run(kube.listNodes());
    expect(bench.clock.now()).toBe(START + 7000);
  });

  it('gives up after its attempts with a retryable API_ERROR', async () => {
    failNext(100, () => internalError('etcdserver: request timed out'));
    const error = await run(kube.cordon('w1', 'run-1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeApiError);
    expect(error).toMatchObject({ code: 'API_ERROR', retryable: true, status: 500 });
    expect((error as Error).message).toBe('after 4 attempt(s): get nodes "w1": HTTP 500: Internal error occurred: etcdserver: request timed out');
  });

  it('names the verb and resource RBAC refused, and does not retry', async () => {
    const limited = bench.cluster({}, 'no-patch');
    const error = await run(limited.cordon('w1', 'run-1')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubeForbiddenError);
    expect(error).toMatchObject({ code: 'API_ERROR', retryable: false, verb: 'patch', resource: 'nodes' });
    expect((error as Error).message).toMatch(/^forbidden: the API server refused to let patchpilot patch nodes \(nodes "w1" is forbidden: User "limited" cannot patch resource "nodes"/);
    expect(node('w1').spec).toEqual({});
  });

  it('writes no Event when the API refuses Events, says why once, and the step still succeeds', async () => {
    const warnings: string[] = [];
    const warned = bench.cluster({ onWarning: (message) => warnings.push(message) });
    failNext(100, () => internalError('events are broken'), (r) => r.resource === 'events');
    expect(await run(warned.cordon('w1', 'run-1'))).toBe('cordoned');
    expect(await run(warned.uncordon('w1', 'run-1'))).toBe('uncordoned');
    expect(bench.requests.filter((r) => r.resource === 'events')).toHaveLength(2);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/could not write a Kubernetes Event in namespace default .*create events in namespace default: HTTP 500: Internal error occurred: events are broken/);
  });

  it('writes Node Events that a real API server accepts: core/v1 in default, as the sandbox checks with upstream rules', async () => {
    const warnings: string[] = [];
    const warned = bench.cluster({ onWarning: (message) => warnings.push(message) });
    expect(await run(warned.cordon('w1', 'run-1'))).toBe('cordoned');
    expect(warnings).toEqual([]);
    const [event] = bench.store.list('events', { namespace: 'default' }).items;
    expect(event).toMatchObject({ involvedObject: { kind: 'Node', name: 'w1' }, reason: 'PatchpilotCordon', source: { component: 'patchpilot' } });
    expect(event!.eventTime).toBeUndefined();
    // The same Event in patchpilot's namespace is what upstream's legacyValidateEvent refuses.
    const elsewhere = { ...structuredClone(event!), metadata: { name: 'w1.elsewhere', namespace: NAMESPACE } };
    expect(() => bench.store.create('events', elsewhere)).toThrow('involvedObject.namespace: Invalid value: "": does not match event.namespace');
  });
});
