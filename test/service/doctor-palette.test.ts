/**
 * doctor on a Palette-managed sandbox (fixtures/scenarios/palette-managed/), through the real Kubernetes adapter over
 * HTTP: for each row of the seed's "Nothing Happens" table and each crony log failure it quotes, the finding names the
 * row and the fix; a healthy Palette-managed cluster gets no problem; a cluster Palette does not manage is said to be so
 * once, and its own checks are unchanged.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { PALETTE_TASK_LABEL } from '../../src/cluster/palette.ts';
import { PaletteClient } from '../../src/palette/index.ts';
import { doctor, doctorHasProblems, formatDoctorReport, type DoctorReport, type Finding, type FindingId } from '../../src/service/doctor.ts';
import { SEED_ROWS } from '../../src/service/seed-rows.ts';
import { startFakePalette, type FakePalette } from '../helpers/fake-palette.ts';
import { sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';

let bench: SandboxTarget | undefined;
let palette: FakePalette | undefined;

afterEach(async () => {
  await bench?.close();
  await palette?.close();
  bench = undefined;
  palette = undefined;
});

async function report(scenario: string, options: Parameters<typeof sandboxTarget>[1] = {}): Promise<DoctorReport> {
  bench = await sandboxTarget(`palette-managed/${scenario}.yaml`, options);
  return bench.time.run(doctor(bench.target));
}

function finding(r: DoctorReport, id: FindingId): Finding {
  const found = r.findings.find((f) => f.id === id);
  if (!found) throw new Error(`no finding ${id} in:\n${formatDoctorReport(r)}`);
  return found;
}

const problems = (r: DoctorReport) => r.findings.filter((f) => f.status === 'problem').map((f) => f.id).sort();

describe('doctor on a Palette-managed cluster', () => {
  it('healthy: the task Complete, every Job succeeded, no problem; the full marks are a warning that names the row', async () => {
    const r = await report('healthy');
    expect(problems(r)).toEqual([]);
    expect(doctorHasProblems(r)).toBe(false);
    const task = finding(r, 'palette-task');
    expect(task.status).toBe('ok');
    expect(task.evidence[0]).toMatch(/^SpectroSystemTask os-patch\/on-demand-os-patch: version on-demand-\d{14}, hash [0-9a-f]{12}…, Complete; created 0 s ago, version resolved 2 h ago$/);
    expect(finding(r, 'palette-jobs').title).toBe("Palette's crony Jobs: 4 succeeded, 0 running");
    expect(finding(r, 'palette-logs').status).toBe('ok');
    expect(finding(r, 'palette-agent').status).toBe('ok');
    expect(finding(r, 'palette-selection').status).toBe('ok');
    expect(finding(r, 'palette-node-status').evidence).toHaveLength(4);
    const marked = finding(r, 'palette-marked');
    expect(marked.status).toBe('warning');
    expect(marked.row).toBe(SEED_ROWS.marked);
    const hash = bench!.kube.list('nodes').items[0]!.metadata.labels![PALETTE_TASK_LABEL]!;
    expect(hash).toMatch(/^[0-9a-f]{56}$/);
    expect(marked.fix).toBe(`remove the marks (only those, keeping disabled opt-outs): kubectl label nodes -l ${PALETTE_TASK_LABEL}=${hash} ${PALETTE_TASK_LABEL}- ; then click On-Demand Update again`);
    // patchpilot's own check of the same label (the scenario's plan is in palette mode) agrees: a warning here.
    expect(finding(r, 'nodes-marked').status).toBe('warning');
    // Every finding names the guide's row or section it answers.
    for (const f of r.findings) expect(f.row, f.id).toBeTruthy();
  });

  it('"Previous patch still in progress": the task applying on worker-2 for 10 min; fix: wait', async () => {
    const r = await report('task-in-progress');
    expect(problems(r)).toEqual(['palette-task']);
    const task = finding(r, 'palette-task');
    expect(task.title).toBe('A previous Palette patch is still in progress (applying on worker-2)');
    expect(task.row).toBe(SEED_ROWS.inProgress);
    expect(task.evidence.join('\n')).toContain('worker-2: Job apply-on-demand-os-patch-on-worker-2 running, started');
    expect(task.evidence.join('\n')).toContain('(10 min ago)');
    expect(task.fix).toBe('wait for it to finish (kubectl get jobs -n os-patch -w): an On-Demand Update clicked meanwhile does nothing');
    expect(finding(r, 'palette-node-status').evidence.join('\n')).toContain('worker-2 (cordoned): status=InProgress');
  });

  it('stuck applying for 4 h: not "wait" but the guide\'s "Patching Seems Stuck" checks', async () => {
    const r = await report('stuck-applying');
    const task = finding(r, 'palette-task');
    expect(task.status).toBe('problem');
    expect(task.title).toBe("Palette's task is stuck applying on worker-2");
    expect(task.row).toBe(`${SEED_ROWS.inProgress}; Patching Seems Stuck`);
    expect(task.evidence.join('\n')).toContain('applying for longer than 1 h');
    expect(task.fix).toContain('waiting will not help');
    expect(task.fix).toContain('kubectl logs -n os-patch job/apply-on-demand-os-patch-on-worker-2');
    expect(task.fix).not.toContain('wait for it to finish');
  });

  it('"Cluster agent issues": a crony pod crash-looping', async () => {
    const r = await report('crony-crashloop');
    const agent = finding(r, 'palette-agent');
    expect(agent.status).toBe('problem');
    expect(agent.title).toBe("Palette's crony pods are crash-looping");
    expect(agent.row).toBe(SEED_ROWS.agent);
    expect(agent.evidence.join('\n')).toMatch(/crony os-patch\/apply-on-demand-os-patch-on-worker-2-\w+ on worker-2: Running, not Ready, CrashLoopBackOff, 7 restart\(s\)/);
    expect(agent.fix).toMatch(/^check cluster health and the agent's connectivity .*kubectl -n os-patch logs apply-on-demand-os-patch-on-worker-2-\w+ --previous/);
    expect(finding(r, 'palette-task').title).toBe("Palette's task is stuck applying on worker-2");
  });

  it('"Cluster agent issues": Palette\'s agent pods not Ready', async () => {
    const r = await report('agent-not-ready');
    expect(problems(r)).toEqual(['palette-agent']);
    const agent = finding(r, 'palette-agent');
    expect(agent.title).toBe("Palette's cluster agent is not Ready");
    expect(agent.evidence).toHaveLength(2);
    expect(agent.evidence[0]).toMatch(/^cluster-6851ddd04b1b188784c06291\/cluster-management-agent-\w+-\w+ on cp-1: Running, not Ready, CrashLoopBackOff, 12 restart\(s\)$/);
    expect(agent.fix).toContain('kubectl -n cluster-6851ddd04b1b188784c06291 logs cluster-management-agent-');
  });

  it('"No matching nodes": no node carries the OS label the task selects on; fix the labels', async () => {
    const r = await report('no-matching-nodes');
    const selection = finding(r, 'palette-selection');
    expect(selection.status).toBe('problem');
    expect(selection.row).toBe(SEED_ROWS.noMatch);
    expect(selection.evidence[0]).toBe("no node matches task on-demand-os-patch's nodeSelector: kubernetes.io/os in (linux)");
    expect(selection.evidence).toContain('  worker-1: kubernetes.io/os=(none)');
    expect(selection.fix).toContain('kubectl label node NODE kubernetes.io/os=linux');
    // patchpilot's own check says the same, under the same row.
    expect(finding(r, 'no-linux-nodes')).toMatchObject({ status: 'problem', row: SEED_ROWS.noMatch });
    expect(finding(r, 'palette-marked').status).toBe('skipped');
  });

  it('crony log "gpg: keyserver receive failed: End of file": use patchpilot\'s agent, which never contacts a keyserver', async () => {
    const r = await report('keyserver-eof');
    const key = finding(r, 'palette-keyserver');
    expect(key.status).toBe('problem');
    expect(key.row).toBe(SEED_ROWS.keyserver);
    expect(key.evidence[0]).toMatch(/^job apply-on-demand-os-patch-on-worker-2 on node worker-2: Failed \(BackoffLimitExceeded: Job has reached the specified backoff limit\) at /);
    expect(key.evidence[1]).toMatch(/^ {2}worker-2: \[[\d-]+ [\d:]+\] gpg: keyserver receive failed: End of file$/);
    expect(key.fix).toContain("patchpilot's agent never contacts a keyserver: npx patchpilot run --cluster palette-demo patches them");
    expect(r.findings.some((f) => f.id === 'palette-apt-lock' || f.id === 'palette-reboot-pending')).toBe(false);
    expect(finding(r, 'palette-task').title).toBe("Palette's task is stuck applying on worker-2");
    expect(finding(r, 'palette-node-status')).toMatchObject({ status: 'problem', title: "Palette's per-node status says patching failed on worker-2" });
    expect(finding(r, 'palette-jobs').status).toBe('warning');
    // patchpilot's own keyserver check reads patchpilot's Jobs only: Palette's failure is not reported twice.
    expect(finding(r, 'keyserver').status).toBe('ok');
  });

  it('crony log waiting for the apt lock: stuck; who holds it and how to let it go', async () => {
    const r = await report('apt-lock');
    const lock = finding(r, 'palette-apt-lock');
    expect(lock.status).toBe('problem');
    expect(lock.row).toBe(SEED_ROWS.aptLock);
    expect(lock.evidence[1]).toMatch(/^ {2}worker-2: \[[\d-]+ [\d:]+\] Waiting for other apt process to finish\.\.\. \(the last 12 log lines say so\)$/);
    expect(lock.fix).toContain('sudo fuser -v /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock');
    expect(finding(r, 'palette-task').title).toBe("Palette's task is stuck applying on worker-2");
    expect(finding(r, 'apt-lock').status).toBe('ok');
  });

  it('crony log "REBOOT REQUIRED" after a successful Job: the node runs the old kernel; "No reboot required." is not taken for it', async () => {
    const r = await report('reboot-pending');
    expect(problems(r)).toEqual(['palette-reboot-pending']);
    const reboot = finding(r, 'palette-reboot-pending');
    expect(reboot.title).toBe('A reboot is pending on worker-1: the patched kernel or libraries are not running yet');
    expect(reboot.row).toBe(SEED_ROWS.rebootPending);
    expect(reboot.evidence.join('\n')).toContain('*** System restart required ***');
    expect(reboot.fix).toContain('kubectl drain worker-1 --ignore-daemonsets --delete-emptydir-data');
    expect(reboot.fix).toContain('"Reboot if required"');
  });

  it('"Timestamp stuck in the past": the fix is the exact request unstick sends, wrapped as the SDK does', async () => {
    palette = await startFakePalette({
      apiKey: 'pk-test',
      clusters: { '6851ddd04b1b188784c06291': { projectUid: 'p1', osPatchConfig: { onDemandPatchAfter: '2026-01-08T17:32:08Z', rebootIfRequired: true, schedule: '0 0 * * SUN' } } },
    });
    const client = new PaletteClient({ baseUrl: palette.url, apiKey: 'pk-test', projectUid: 'p1' });
    const r = await report('healthy', { palette: { client, clusterUid: '6851ddd04b1b188784c06291' } });
    const stamp = finding(r, 'on-demand-timestamp');
    expect(stamp.status).toBe('problem');
    expect(stamp.row).toBe(SEED_ROWS.timestamp);
    const body = '{"osPatchConfig":{"onDemandPatchAfter":"","rebootIfRequired":true,"schedule":"0 0 * * SUN"}}';
    expect(stamp.fix).toBe(
      `npx patchpilot unstick --cluster palette-demo clears it: it sends PATCH /v1/spectroclusters/6851ddd04b1b188784c06291/clusterConfig/osPatch with ${body} (the settings as read now, onDemandPatchAfter emptied); then click On-Demand Update again`,
    );
    // What unstick really sends is that body.
    const { unstick } = await import('../../src/service/unstick.ts');
    await bench!.time.run(unstick(bench!.target, { by: 'tester' }));
    const sent = palette.requests.filter((q) => q.method === 'PATCH');
    expect(sent).toHaveLength(1);
    expect(JSON.stringify(sent[0]!.body)).toBe(body);
  });

  it('a stored value that is not a time: unstick refuses it, so doctor gives the request to send by hand', async () => {
    palette = await startFakePalette({ apiKey: 'pk-test', clusters: { '6851ddd04b1b188784c06291': { projectUid: 'p1', osPatchConfig: { onDemandPatchAfter: 'soon', patchOnBoot: false } } } });
    const client = new PaletteClient({ baseUrl: palette.url, apiKey: 'pk-test', projectUid: 'p1' });
    const r = await report('healthy', { palette: { client, clusterUid: '6851ddd04b1b188784c06291' } });
    const stamp = finding(r, 'on-demand-timestamp');
    expect(stamp).toMatchObject({ status: 'problem', title: "Palette's onDemandPatchAfter is not a time" });
    expect(stamp.fix).toBe(
      'clear it by hand (unstick clears only a time in the past): PATCH /v1/spectroclusters/6851ddd04b1b188784c06291/clusterConfig/osPatch with ' +
        '{"osPatchConfig":{"onDemandPatchAfter":"","patchOnBoot":false}}, headers ApiKey and ProjectUid (README: "How unstick clears the timestamp")',
    );
    const { unstick } = await import('../../src/service/unstick.ts');
    await expect(bench!.time.run(unstick(bench!.target, { by: 'tester' }))).rejects.toThrow();
    expect(palette.requests.filter((q) => q.method === 'PATCH')).toHaveLength(0);
  });

  it('never run (lastRun none): no task, no Job, nothing in progress, no problem', async () => {
    const r = await report('never-run');
    expect(problems(r)).toEqual([]);
    expect(finding(r, 'palette-task')).toMatchObject({ status: 'ok', title: 'No Palette patch task in progress' });
    expect(finding(r, 'palette-jobs')).toMatchObject({ status: 'ok', title: 'No Palette crony Job' });
    expect(finding(r, 'palette-logs').status).toBe('skipped');
    expect(finding(r, 'palette-agent').status).toBe('ok');
    expect(finding(r, 'palette-marked').evidence[0]).toBe(`no task hash to compare with; 0 node(s) carry ${PALETTE_TASK_LABEL}`);
  });
});

describe('doctor on a cluster Palette does not manage', () => {
  it('says so once, and checks patchpilot\'s own state as before', async () => {
    bench = await sandboxTarget('demo.yaml');
    const r = await bench.time.run(doctor(bench.target));
    const palette = r.findings.filter((f) => f.id.startsWith('palette-'));
    expect(palette).toHaveLength(1);
    expect(palette[0]).toMatchObject({ id: 'palette-managed', status: 'skipped', title: "Not a Palette-managed cluster: Palette's task, Jobs and node annotations not checked" });
    expect(palette[0]!.evidence[0]).toBe('the API server serves no spectrosystemtasks.cluster.spectrocloud.com and no cluster-<uid> namespace of Palette\'s agent exists');
    expect(r.findings.slice(0, 8).map((f) => f.id)).toEqual(['run-in-progress', 'on-demand-timestamp', 'nodes-marked', 'agent-health', 'no-linux-nodes', 'left-cordoned', 'keyserver', 'apt-lock']);
    expect(doctorHasProblems(r)).toBe(false);
  });
});
