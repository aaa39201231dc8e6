/**
 * doctor against the sandbox through the real Kubernetes adapter: each check finds its problem in a cluster where a
 * real run (the Orchestrator) left it, and is ok where there is none. Palette's timestamp is read from the fake
 * Palette API.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PaletteClient } from '../../src/palette/index.ts';
import { doctor, doctorHasProblems, formatDoctorReport, type DoctorReport, type Finding, type FindingId } from '../../src/service/doctor.ts';
import { startFakePalette, type FakePalette } from '../helpers/fake-palette.ts';
import { ORCHESTRATOR, sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';

let bench: SandboxTarget | undefined;
let palette: FakePalette | undefined;

afterEach(async () => {
  await bench?.close();
  await palette?.close();
  bench = undefined;
  palette = undefined;
});

const KEY = 'palette-key-do-not-print';

function finding(report: DoctorReport, id: FindingId): Finding {
  const found = report.findings.find((f) => f.id === id);
  if (!found) throw new Error(`no finding ${id}`);
  return found;
}

const statuses = (report: DoctorReport) => Object.fromEntries(report.findings.map((f) => [f.id, f.status]));

async function run(b: SandboxTarget): Promise<DoctorReport> {
  return b.time.run(doctor(b.target));
}

describe('doctor', () => {
  it('lists the eight checks in order, then Palette\'s (here: not managed); after a clean Palette-mode run everything but node marks is ok', async () => {
    bench = await sandboxTarget('sandbox-palette.yaml');
    const output = await bench.patch();
    expect(output.outcome).toBe('succeeded');
    const report = await run(bench);
    expect(report.findings.map((f) => f.id)).toEqual(['run-in-progress', 'on-demand-timestamp', 'nodes-marked', 'agent-health', 'no-linux-nodes', 'left-cordoned', 'keyserver', 'apt-lock', 'palette-managed']);
    expect(statuses(report)).toEqual({
      'run-in-progress': 'ok',
      'on-demand-timestamp': 'skipped',
      'nodes-marked': 'problem',
      'agent-health': 'ok',
      'no-linux-nodes': 'ok',
      'left-cordoned': 'ok',
      keyserver: 'ok',
      'apt-lock': 'ok',
      'palette-managed': 'skipped',
    });
    expect(finding(report, 'agent-health').evidence).toContain('ConfigMap os-patch/patchpilot-agent holds this build\'s agent script');
    expect(finding(report, 'no-linux-nodes').evidence.join('\n')).toContain('win-1');
    expect(finding(report, 'on-demand-timestamp').evidence[0]).toContain('Palette is not configured');
  });

  it('(1) a previous patch in progress: a running patch Job, the active run and the live Lease; ok once it ended', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    const b = bench;
    const handle = await b.start();
    // Stop the clock while the first patch Job runs (after its node's scan Job).
    const jobRunning = new Promise<void>((resolve) => {
      b.kube.hooks.onChange('pods', (event) => {
        const patch = event.object.metadata.labels?.['patchpilot.io/action'] === 'patch';
        if (patch && event.object.metadata.namespace === 'os-patch' && (event.object.status as { phase?: string } | undefined)?.phase === 'Running') resolve();
      });
    });
    await b.time.run(jobRunning);
    const during = await run(b);
    const progress = finding(during, 'run-in-progress');
    expect(progress).toMatchObject({ status: 'problem', title: 'A previous patch is still in progress' });
    const evidence = progress.evidence.join('\n');
    expect(evidence).toMatch(/Lease patchpilot-apt-lock-timeout held by test-orchestrator, valid until/);
    expect(evidence).toMatch(/run run-1 \(requested by tester\) is rolling/);
    expect(evidence).toMatch(/job apply-os-patch-on-cp-1-with-\w+ on node cp-1 \(run run-1\) running since/);
    expect(progress.fix).toContain('npx patchpilot runs show run-1');

    await b.time.run(handle.result);
    const after = await run(b);
    expect(finding(after, 'run-in-progress')).toMatchObject({ status: 'ok', evidence: ['no active run, the Lease is free, no patch Job is running'] });
  });

  it('(2) Palette\'s onDemandPatchAfter stuck in the past is a problem; a future one is ok', async () => {
    palette = await startFakePalette({ apiKey: KEY, clusters: { 'uid-1': { projectUid: 'p', osPatchConfig: { onDemandPatchAfter: '2026-01-08T17:32:08Z', rebootIfRequired: true } } } });
    const client = new PaletteClient({ baseUrl: palette.url, apiKey: KEY, projectUid: 'p' });
    bench = await sandboxTarget('sandbox-palette.yaml', { palette: { client, clusterUid: 'uid-1' } });
    const stuck = finding(await run(bench), 'on-demand-timestamp');
    expect(stuck).toMatchObject({ status: 'problem', title: 'Palette\'s onDemandPatchAfter is stuck in the past' });
    expect(stuck.evidence[0]).toMatch(/Palette cluster uid-1: onDemandPatchAfter = 2026-01-08T17:32:08Z \(\d+ days ago\)/);
    expect(stuck.fix).toBe(
      'npx patchpilot unstick --cluster sandbox-palette clears it: it sends PATCH /v1/spectroclusters/uid-1/clusterConfig/osPatch with ' +
        '{"osPatchConfig":{"onDemandPatchAfter":"","rebootIfRequired":true}} (the settings as read now, onDemandPatchAfter emptied); then click On-Demand Update again',
    );

    palette.clusters.get('uid-1')!.osPatchConfig = { onDemandPatchAfter: new Date(bench.time.clock.now() + 600_000).toISOString() };
    expect(finding(await run(bench), 'on-demand-timestamp')).toMatchObject({ status: 'ok', title: 'An On-Demand Update is scheduled' });
    palette.clusters.get('uid-1')!.osPatchConfig = { onDemandPatchAfter: '0001-01-01T00:00:00.000Z' };
    expect(finding(await run(bench), 'on-demand-timestamp')).toMatchObject({ status: 'ok', title: 'onDemandPatchAfter is clear' });

    // A bad key is a problem that says what to do, and never shows the key.
    const wrong = new PaletteClient({ baseUrl: palette.url, apiKey: 'another-secret-key', projectUid: 'p' });
    bench.target.palette = { client: wrong, clusterUid: 'uid-1' };
    const refused = await run(bench);
    expect(finding(refused, 'on-demand-timestamp')).toMatchObject({ status: 'problem' });
    expect(finding(refused, 'on-demand-timestamp').fix).toContain('PALETTE_API_KEY');
    expect(formatDoctorReport(refused)).not.toContain('another-secret-key');
  });

  it('(3) the same trigger twice: every node marked is a problem in Palette mode, a warning in native mode; disabled nodes are named', async () => {
    bench = await sandboxTarget('same-trigger-twice.yaml', { plan: { mode: 'palette' } });
    expect((await bench.patch()).outcome).toBe('succeeded');
    const second = await bench.patch();
    expect(second.tally.patched).toBe(0);
    const marked = finding(await run(bench), 'nodes-marked');
    expect(marked.status).toBe('problem');
    expect(marked.evidence[0]).toMatch(/^4 of 4 Linux node\(s\) carry task\.cluster\.spectrocloud\.com\/on-demand-os-patch=\w+ \(run run-2\): cp-1, rocky-1, worker-1, worker-2$/);
    expect(marked.fix).toBe('npx patchpilot reset --cluster same-trigger-twice removes the marks (add --nodes a,b for some only), then trigger again');

    bench.target.plan = { ...bench.target.plan, mode: 'native' };
    expect(finding(await run(bench), 'nodes-marked').status).toBe('warning');

    bench.sandbox.sim.state.setLabel('worker-2', 'task.cluster.spectrocloud.com/on-demand-os-patch', 'disabled');
    bench.sandbox.sim.state.setLabel('worker-1', 'task.cluster.spectrocloud.com/on-demand-os-patch', 'older');
    const partly = finding(await run(bench), 'nodes-marked');
    expect(partly.status).toBe('warning');
    expect(partly.evidence).toContain('1 node(s) without it would be selected: worker-1');
    expect(partly.evidence).toContain('opted out with task.cluster.spectrocloud.com/on-demand-os-patch=disabled: worker-2');
    expect(partly.fix).toContain('reset --cluster same-trigger-twice --nodes worker-2 --include-disabled');
  });

  it('(3) ok when nodes would be selected', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    await bench.patch();
    const marked = finding(await run(bench), 'nodes-marked');
    expect(marked.status).toBe('ok');
    expect(marked.evidence[1]).toBe('1 node(s) without it would be selected: worker-2');
  });

  it('(4) a patch Job that died without a report, an outdated agent ConfigMap and an orchestrator Deployment not Ready', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    await bench.patch();
    const { kube } = bench;
    // A Job for a node that is gone: its pod stays Pending until the Job controller gives up on it.
    kube.create(
      'jobs',
      {
        apiVersion: 'batch/v1',
        kind: 'Job',
        metadata: {
          name: 'apply-os-patch-on-worker-9-with-zzz',
          namespace: 'os-patch',
          labels: { 'app.kubernetes.io/managed-by': 'patchpilot', 'patchpilot.io/action': 'patch' },
          annotations: { 'patchpilot.io/node': 'worker-9', 'patchpilot.io/run': 'run-9' },
        },
        spec: { template: { metadata: { labels: { 'app.kubernetes.io/managed-by': 'patchpilot' } }, spec: { nodeName: 'worker-9', restartPolicy: 'Never', containers: [{ name: 'agent', image: 'x' }] } } },
      },
      { internal: true },
    );
    kube.modify(
      'jobs',
      { namespace: 'os-patch', name: 'apply-os-patch-on-worker-9-with-zzz' },
      (job) => (job.status = { conditions: [{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }] }),
      { internal: true },
    );
    kube.modify('configmaps', { namespace: 'os-patch', name: 'patchpilot-agent' }, (cm) => (cm.metadata.annotations = { 'patchpilot.io/script-sha256': 'abcdef0123456789' }), { internal: true });
    kube.create(
      'deployments',
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'patchpilot', namespace: 'os-patch' },
        spec: { replicas: 1 },
        status: { replicas: 1, readyReplicas: 0, conditions: [{ type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' }] },
      },
      { internal: true },
    );
    const health = finding(await run(bench), 'agent-health');
    expect(health.status).toBe('problem');
    const evidence = health.evidence.join('\n');
    expect(evidence).toContain('job apply-os-patch-on-worker-9-with-zzz on node worker-9 (run run-9)');
    expect(evidence).toContain('failed without an agent report (DeadlineExceeded: Job was active longer than specified deadline); no log');
    expect(evidence).toContain('holds another agent script (sha256 abcdef012345');
    expect(evidence).toContain('Deployment os-patch/patchpilot is not Ready: 0/1 replicas ready; not available: Deployment does not have minimum availability.');
    expect(health.fix).toContain('kubectl -n os-patch describe deployment patchpilot');
    // worker-2's LOCK_TIMEOUT is the apt-lock check's, not an unhealthy agent.
    expect(evidence).not.toContain('LOCK_TIMEOUT');

    kube.modify('deployments', { namespace: 'os-patch', name: 'patchpilot' }, (d) => (d.status = { replicas: 1, readyReplicas: 1, conditions: [{ type: 'Available', status: 'True' }] }), { internal: true });
    kube.delete('jobs', { namespace: 'os-patch', name: 'apply-os-patch-on-worker-9-with-zzz' }, { internal: true });
    const better = finding(await run(bench), 'agent-health');
    expect(better.status).toBe('warning');
    expect(better.evidence).toContain('Deployment os-patch/patchpilot: 1/1 ready');
  });

  it('(5) a cluster without any Linux node: the problem names every node and its OS label', async () => {
    bench = await sandboxTarget('windows-only.yaml');
    const report = await run(bench);
    expect(finding(report, 'no-linux-nodes')).toMatchObject({
      status: 'problem',
      title: 'No node carries kubernetes.io/os=linux',
      evidence: ['win-1: kubernetes.io/os=windows', 'win-2: kubernetes.io/os=windows', 'win-3: kubernetes.io/os=windows'],
    });
    expect(finding(report, 'nodes-marked').status).toBe('skipped');
    expect(doctorHasProblems(report)).toBe(true);
    // A nodeSelector nothing matches is the same silence.
    bench.target.plan = { ...bench.target.plan, nodeSelector: { pool: 'gpu' } };
    bench.sandbox.sim.state.setLabel('win-1', 'kubernetes.io/os', 'linux');
    const selector = finding(await run(bench), 'no-linux-nodes');
    expect(selector).toMatchObject({ status: 'problem', title: 'No Linux node matches the plan' });
    expect(selector.evidence[0]).toBe('1 Linux node(s), but none matches nodeSelector pool=gpu');
  });

  it('(6) a node left cordoned by a finished run (it never came back from its reboot); ok where nothing is', async () => {
    bench = await sandboxTarget('rejoin-fails.yaml');
    const output = await bench.patch();
    expect(output.outcome).toBe('partial');
    const cordoned = finding(await run(bench), 'left-cordoned');
    expect(cordoned.status).toBe('problem');
    expect(cordoned.evidence).toHaveLength(1);
    expect(cordoned.evidence[0]).toMatch(/^worker-2 is cordoned by run run-1; run run-1 ended partial at \S+; node NotReady; last error REJOIN_TIMEOUT/);
    expect(cordoned.fix).toBe(
      'worker-2 is NotReady: find out why first (kubectl describe node worker-2), then kubectl uncordon worker-2 && kubectl annotate node worker-2 patchpilot.io/cordoned-by-',
    );

    // A cordon whose run is not in the history (another orchestrator's store, or none), on a Ready node.
    const w3 = bench.sandbox.sim.state.nodeView('worker-3')!;
    bench.sandbox.sim.state.setNodeMetadata('worker-3', { labels: w3.labels, unschedulable: true, annotations: { ...w3.annotations, 'patchpilot.io/cordoned-by': 'run-elsewhere' } });
    const two = finding(await run(bench), 'left-cordoned');
    expect(two.evidence[1]).toMatch(/^worker-3 is cordoned by run run-elsewhere; run run-elsewhere is not in the run history; node Ready/);
    expect(two.fix).toContain('kubectl uncordon worker-3 && kubectl annotate node worker-3 patchpilot.io/cordoned-by-');

    // Someone else's cordon (no annotation of ours) is not patchpilot's business.
    const other = await sandboxTarget('apt-lock-timeout.yaml');
    try {
      await other.patch();
      other.sandbox.sim.state.cordonByOthers('worker-1');
      expect(finding(await run(other), 'left-cordoned')).toMatchObject({ status: 'ok' });
    } finally {
      await other.close();
    }
  });

  it('(7) KEYSERVER_UNREACHABLE in the legacy script\'s report, with the gpg line from the Job log; (8) ok there', async () => {
    bench = await sandboxTarget('keyserver-unreachable-legacy.yaml');
    expect((await bench.patch()).outcome).toBe('partial');
    const report = await run(bench);
    const key = finding(report, 'keyserver');
    expect(key.status).toBe('problem');
    expect(key.evidence[0]).toMatch(/^job apply-os-patch-on-ubuntu-2-with-\w+ on node ubuntu-2 \(run run-1\) at \S+: KEYSERVER_UNREACHABLE: gpg: keyserver receive failed: End of file/);
    expect(key.fix).toContain('keyserver.ubuntu.com, which ubuntu-2 cannot reach');
    expect(key.fix).toContain('npx patchpilot run --cluster keyserver-unreachable-legacy');
    expect(finding(report, 'apt-lock').status).toBe('ok');
  });

  it('(8) LOCK_TIMEOUT in a Job report names the node and the lock timeout; (7) ok there', async () => {
    bench = await sandboxTarget('apt-lock-timeout.yaml');
    await bench.patch();
    const report = await run(bench);
    const lock = finding(report, 'apt-lock');
    expect(lock.status).toBe('problem');
    expect(lock.evidence[0]).toMatch(/^job apply-os-patch-on-worker-2-with-\w+ on node worker-2 \(run run-1\) at \S+: LOCK_TIMEOUT: /);
    expect(lock.fix).toContain('on worker-2 longer than lockTimeoutSeconds (300 s)');
    expect(finding(report, 'keyserver').status).toBe('ok');
  });

  it('formats a report as plain text, problems counted', async () => {
    bench = await sandboxTarget('windows-only.yaml');
    const text = formatDoctorReport(await run(bench));
    expect(text).toMatch(/^patchpilot doctor: cluster windows-only at \S+Z\n\n1\. \[ok\] No patch in progress\n/);
    expect(text).toContain('5. [PROBLEM] No node carries kubernetes.io/os=linux\n   - win-1: kubernetes.io/os=windows');
    expect(text).toContain('   fix: nothing can be patched here');
    expect(text).toContain('   seed: Nothing Happens After Clicking On-Demand Update › "No matching nodes" (check that nodes have the required OS labels)\n');
    expect(text).toContain("9. [skipped] Not a Palette-managed cluster: Palette's task, Jobs and node annotations not checked\n");
    expect(text.trim().split('\n').at(-1)).toBe('1 problem(s), 0 warning(s), 3 skipped');
    expect(ORCHESTRATOR).toBe('test-orchestrator');
  });
});
