/** The patch Job and agent ConfigMap builders (src/cluster/kube/job-manifest.ts), and the Job names they share with the engine. */
import { execFileSync } from 'node:child_process';
import { chmodSync, closeSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AGENT_CONFIGMAP_NAME,
  AGENT_MOUNT_PATH,
  AGENT_SCRIPT_KEY,
  agentArgs,
  buildAgentConfigMap,
  buildPatchJob,
  buildRebootJob,
  DEFAULT_ACTIVE_DEADLINE_SECONDS,
  rebootJobName,
  type PatchJobBuildInput,
} from '../../src/cluster/kube/job-manifest.ts';
import { labelValue, patchJobName } from '../../src/cluster/jobs.ts';
import { sha256Hex } from '../../src/engine/hash.ts';
import { DEFAULT_HOLD_PACKAGES, PALETTE_LABEL_KEY } from '../../src/engine/plan.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const HASH = '0a436363a5cd9980e2cc';
const FQDN_253 = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;

function spec(overrides: Partial<PatchJobBuildInput> = {}): PatchJobBuildInput {
  return {
    runId: 'run-20261122-abc123',
    node: 'worker-1',
    hash: HASH,
    mode: 'native',
    agent: 'modern',
    securityOnly: true,
    holdPackages: [...DEFAULT_HOLD_PACKAGES],
    lockTimeoutSeconds: 600,
    rebootIfRequired: true,
    downloadOnly: false,
    ...overrides,
  };
}

function podSpec(overrides: Partial<PatchJobBuildInput> = {}) {
  return buildPatchJob(spec(overrides)).spec.template.spec;
}

function container(overrides: Partial<PatchJobBuildInput> = {}) {
  const c = podSpec(overrides).containers[0];
  if (!c) throw new Error('no container');
  return c;
}

// --- names ---

/** Node names as clusters have them, and as they should never be but might. */
const nodeName = fc.oneof(
  fc.domain(),
  fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/),
  fc.string({ maxLength: 300 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  fc.constantFrom(FQDN_253, 'Worker-ONE', 'ip-10-0-142-17.eu-central-1.compute.internal', '-', '', '...', 'a--b', 'ÄÖÜ'),
);
const hash = fc.stringMatching(/^[0-9a-f]{20}$/);
const mode = fc.constantFrom('native' as const, 'palette' as const);

describe('patchJobName: a valid, bounded, deterministic and distinct Job name for any node', () => {
  it.each([
    { name: 'a long cloud node name', node: 'ip-10-0-142-17.eu-central-1.compute.internal' },
    { name: 'dots', node: 'node.a' },
    { name: 'upper case', node: 'Worker-ONE' },
    { name: 'a 253-character FQDN', node: FQDN_253 },
    { name: 'nothing usable at all', node: '..._' },
  ])('is a DNS-1123 label of at most 63 characters for $name', ({ node }) => {
    for (const m of ['native', 'palette'] as const) {
      for (const downloadOnly of [false, true]) {
        const name = patchJobName(m, node, HASH, { downloadOnly });
        expect(name.length).toBeLessThanOrEqual(63);
        expect(name).toMatch(DNS1123_LABEL);
      }
    }
  });

  it('is always a DNS-1123 label of at most 63 characters, and the same for the same input', () => {
    fc.assert(
      fc.property(mode, nodeName, hash, fc.boolean(), (m, node, h, downloadOnly) => {
        const name = patchJobName(m, node, h, { downloadOnly });
        expect(name.length).toBeLessThanOrEqual(63);
        expect(name).toMatch(DNS1123_LABEL);
        expect(patchJobName(m, node, h, { downloadOnly })).toBe(name);
      }),
      { numRuns: 500 },
    );
  });

  it('differs for different nodes (Palette names) and for different nodes or hashes (ours)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(nodeName, { minLength: 2, maxLength: 30 }), hash, (nodes, h) => {
        for (const m of ['native', 'palette'] as const) {
          const names = nodes.map((n) => patchJobName(m, n, h));
          expect(new Set(names).size).toBe(nodes.length);
        }
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(nodeName, fc.uniqueArray(hash, { minLength: 2, maxLength: 10 }), (node, hashes) => {
        const names = hashes.map((h) => patchJobName('native', node, h));
        expect(new Set(names).size).toBe(hashes.length);
      }),
      { numRuns: 200 },
    );
  });

  it('names Palette Jobs as Palette does, and ours after the plan and the hash', () => {
    expect(patchJobName('palette', 'worker-1', HASH)).toBe('apply-on-demand-os-patch-on-worker-1');
    expect(patchJobName('native', 'worker-1', HASH)).toBe(`apply-os-patch-on-worker-1-with-${HASH}`);
    expect(patchJobName('native', 'worker-1', HASH, { plan: 'nightly' })).toBe(`apply-nightly-on-worker-1-with-${HASH}`);
    // A plan name is for our names only.
    expect(patchJobName('palette', 'worker-1', HASH, { plan: 'nightly' })).toBe('apply-on-demand-os-patch-on-worker-1');
  });

  it('keeps the older boolean downloadOnly argument', () => {
    expect(patchJobName('native', 'n', HASH, { downloadOnly: true })).toBe(`prefetch-os-patch-on-n-with-${HASH}`);
    expect(patchJobName('palette', 'n', HASH, { downloadOnly: false })).toBe('apply-on-demand-os-patch-on-n');
  });
});

describe('labelValue', () => {
  it('keeps valid values (dots and upper case are allowed) and bounds the rest', () => {
    expect(labelValue('ip-10-0-1-2.ec2.internal')).toBe('ip-10-0-1-2.ec2.internal');
    expect(labelValue('Worker-ONE')).toBe('Worker-ONE');
    fc.assert(
      fc.property(nodeName, (raw) => {
        const value = labelValue(raw);
        expect(value.length).toBeLessThanOrEqual(63);
        expect(value).toMatch(LABEL_VALUE);
      }),
      { numRuns: 300 },
    );
  });
});

// --- the Job ---

describe('buildPatchJob', () => {
  it('is a batch/v1 Job in os-patch by default, or in the namespace asked for', () => {
    const job = buildPatchJob(spec());
    expect(job).toMatchObject({ apiVersion: 'batch/v1', kind: 'Job', metadata: { namespace: 'os-patch' } });
    expect(buildPatchJob(spec({ namespace: 'ops' })).metadata.namespace).toBe('ops');
  });

  it('pins the pod to its node by nodeName, never restarts it, and does not retry a failed patch', () => {
    const job = buildPatchJob(spec({ node: 'ip-10-0-1-2.eu-central-1.compute.internal' }));
    expect(job.spec.template.spec.nodeName).toBe('ip-10-0-1-2.eu-central-1.compute.internal');
    expect(job.spec.template.spec.restartPolicy).toBe('Never');
    expect(job.spec.backoffLimit).toBe(0);
    expect(buildPatchJob(spec({ backoffLimit: 2 })).spec.backoffLimit).toBe(2);
  });

  it('tolerates control-plane taints, and NotReady/unreachable only for as long as the Job may run', () => {
    const tolerations = podSpec({ activeDeadlineSeconds: 900 }).tolerations;
    expect(tolerations).toEqual(
      expect.arrayContaining([
        { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'node-role.kubernetes.io/master', operator: 'Exists', effect: 'NoSchedule' },
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 900 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 900 },
      ]),
    );
    // No unbounded NoExecute toleration: a dead node's pod must eventually go.
    for (const t of tolerations.filter((x) => x.effect === 'NoExecute')) expect(t.tolerationSeconds).toBeGreaterThan(0);
  });

  it('runs privileged in the host PID namespace with no API token', () => {
    const pod = podSpec();
    expect(pod.hostPID).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(container().securityContext).toEqual({ privileged: true, runAsUser: 0 });
    // Host processes stay in the pod's cgroup: a memory limit would cap apt and dpkg.
    expect(container().resources).not.toHaveProperty('limits');
  });

  it('mounts the agent ConfigMap and enters the host namespaces through nsenter on PID 1', () => {
    const pod = podSpec({ agentConfigMap: 'agent-v2' });
    expect(pod.volumes).toEqual([
      { name: 'agent', configMap: { name: 'agent-v2', defaultMode: 0o444, items: [{ key: AGENT_SCRIPT_KEY, path: AGENT_SCRIPT_KEY }] } },
    ]);
    expect(podSpec().volumes[0]?.configMap.name).toBe(AGENT_CONFIGMAP_NAME);
    const c = container();
    expect(c.volumeMounts).toEqual([{ name: 'agent', mountPath: AGENT_MOUNT_PATH, readOnly: true }]);
    expect(c.command.slice(0, 2)).toEqual(['/bin/sh', '-c']);
    expect(c.command[2]).toContain('nsenter --target 1 --mount --uts --ipc --net --pid -- bash');
    expect(c.command[2]).toContain(`${AGENT_MOUNT_PATH}/${AGENT_SCRIPT_KEY}`);
    expect(buildPatchJob(spec({ image: 'registry.local/tools:1' })).spec.template.spec.containers[0]?.image).toBe('registry.local/tools:1');
  });

  it('derives the agent arguments from the spec', () => {
    expect(container().args).toEqual([
      '--lock-timeout',
      '600',
      '--hold',
      'kubeadm kubectl kubelet kubernetes-cni cri-tools containerd runc',
      '--security-only',
    ]);
    expect(container({ securityOnly: false, downloadOnly: true, holdPackages: [], lockTimeoutSeconds: 30 }).args).toEqual([
      '--lock-timeout',
      '30',
      '--hold',
      '',
      '--all',
      '--download-only',
    ]);
    expect(agentArgs({ lockTimeoutSeconds: 5, holdPackages: ['kubelet', 'kubelet'], securityOnly: true, downloadOnly: false })).toContain('kubelet');
    expect(agentArgs({ lockTimeoutSeconds: 5, holdPackages: ['kubelet', 'kubelet'], securityOnly: true, downloadOnly: false })[3]).toBe('kubelet');
  });

  it('sets the deadline from the plan, and a TTL so finished Jobs go away', () => {
    expect(buildPatchJob(spec()).spec.activeDeadlineSeconds).toBe(DEFAULT_ACTIVE_DEADLINE_SECONDS);
    expect(DEFAULT_ACTIVE_DEADLINE_SECONDS).toBe(1800);
    const job = buildPatchJob(spec({ activeDeadlineSeconds: 420, ttlSecondsAfterFinished: 60 }));
    expect(job.spec).toMatchObject({ activeDeadlineSeconds: 420, ttlSecondsAfterFinished: 60 });
    expect(buildPatchJob(spec()).spec.ttlSecondsAfterFinished).toBeGreaterThan(0);
  });

  it.each([
    { field: 'activeDeadlineSeconds', value: 0 },
    { field: 'activeDeadlineSeconds', value: 1.5 },
    { field: 'ttlSecondsAfterFinished', value: -1 },
    { field: 'backoffLimit', value: -1 },
  ])('refuses $field = $value', ({ field, value }) => {
    expect(() => buildPatchJob(spec({ [field]: value }))).toThrow(field);
  });

  it('carries labels to find it, on the Job and on its pod, and the full names in annotations', () => {
    const job = buildPatchJob(spec({ node: FQDN_253 }));
    const labels = job.metadata.labels;
    expect(labels).toMatchObject({
      'app.kubernetes.io/name': 'patchpilot',
      'app.kubernetes.io/component': 'os-patch',
      'patchpilot.io/run': 'run-20261122-abc123',
      'patchpilot.io/hash': HASH,
      'patchpilot.io/action': 'patch',
    });
    expect(labels['patchpilot.io/node']).toBe(labelValue(FQDN_253));
    for (const value of Object.values(labels)) {
      expect(value.length).toBeLessThanOrEqual(63);
      expect(value).toMatch(LABEL_VALUE);
    }
    expect(labels).not.toHaveProperty(PALETTE_LABEL_KEY);
    expect(job.spec.template.metadata.labels).toEqual(labels);
    expect(job.metadata.annotations).toEqual({ 'patchpilot.io/node': FQDN_253, 'patchpilot.io/run': 'run-20261122-abc123' });
    expect(buildPatchJob(spec({ downloadOnly: true })).metadata.labels['patchpilot.io/action']).toBe('prefetch');
  });

  it("in Palette mode, carries Palette's task label and Palette's Job name", () => {
    const job = buildPatchJob(spec({ mode: 'palette' }));
    expect(job.metadata.name).toBe('apply-on-demand-os-patch-on-worker-1');
    expect(job.metadata.labels[PALETTE_LABEL_KEY]).toBe(HASH);
    expect(buildPatchJob(spec({ mode: 'palette', taskLabelKey: 'task.cluster.spectrocloud.com/nightly' })).metadata.labels).toMatchObject({
      'task.cluster.spectrocloud.com/nightly': HASH,
    });
  });

  it('is named by patchJobName (with the plan) unless the caller passes the name it computed', () => {
    expect(buildPatchJob(spec()).metadata.name).toBe(`apply-os-patch-on-worker-1-with-${HASH}`);
    expect(buildPatchJob(spec({ plan: 'nightly' })).metadata.name).toBe(`apply-nightly-on-worker-1-with-${HASH}`);
    expect(buildPatchJob(spec({ downloadOnly: true })).metadata.name).toBe(patchJobName('native', 'worker-1', HASH, { downloadOnly: true }));
    expect(buildPatchJob(spec({ jobName: 'given-name' })).metadata.name).toBe('given-name');
    expect(() => buildPatchJob(spec({ jobName: 'Not.A.Label' }))).toThrow('DNS-1123');
  });

  it('gives every node a valid Job whatever its name', () => {
    fc.assert(
      fc.property(mode, nodeName, fc.boolean(), (m, node, downloadOnly) => {
        const job = buildPatchJob(spec({ mode: m, node, downloadOnly }));
        expect(job.metadata.name).toMatch(DNS1123_LABEL);
        expect(job.metadata.name.length).toBeLessThanOrEqual(63);
        expect(job.spec.template.spec.nodeName).toBe(node);
        for (const value of Object.values(job.metadata.labels)) expect(value).toMatch(LABEL_VALUE);
      }),
      { numRuns: 200 },
    );
  });
});

describe('the container command', () => {
  const scratch = scratchDirs('agent-job');

  it('runs the script from the volume with the arguments intact and stdin closed', () => {
    // Run the container's exact command with a stand-in nsenter that just runs what follows `--`, and the volume
    // path pointed at a scratch directory: this checks the shell plumbing (fd 9, "$@", </dev/null), not namespaces.
    const dir = scratch();
    writeFileSync(join(dir, 'nsenter'), '#!/bin/sh\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"\n');
    chmodSync(join(dir, 'nsenter'), 0o755);
    writeFileSync(
      join(dir, AGENT_SCRIPT_KEY),
      [
        'main() {',
        '  if read -r line; then stdin="data"; else stdin="eof"; fi',
        '  printf "%s\\n" "$@"',
        '  echo "stdin=$stdin"',
        '}',
        'main "$@"',
      ].join('\n'),
    );
    const hostile = ['kubelet', '$(touch pwned)', "it's", '`id`'];
    const c = container({ holdPackages: hostile });
    const shell = c.command[2]!.replaceAll(AGENT_MOUNT_PATH, dir);
    // The data waits in a file given as stdin, not in a pipe this process writes to: a child that never reads (as it
    // should not) could exit before the write, and the write would fail with EPIPE.
    writeFileSync(join(dir, 'stdin.txt'), 'this must not reach the agent\n');
    const stdin = openSync(join(dir, 'stdin.txt'), 'r');
    let out: string;
    try {
      out = execFileSync(c.command[0]!, [c.command[1]!, shell, ...c.command.slice(3), ...c.args], {
        cwd: dir,
        env: { PATH: `${dir}:${process.env.PATH ?? '/usr/bin:/bin'}` },
        stdio: [stdin, 'pipe', 'pipe'],
        encoding: 'utf8',
      });
    } finally {
      closeSync(stdin);
    }
    expect(out.trimEnd().split('\n')).toEqual([...c.args, 'stdin=eof']);
    expect(c.args[3]).toBe(hostile.join(' '));
    expect(execFileSync('ls', [dir], { encoding: 'utf8' })).not.toContain('pwned');
  });
});

describe('buildAgentConfigMap', () => {
  it('carries the script under the key the Job mounts, with its digest', () => {
    const cm = buildAgentConfigMap('#!/bin/bash\necho hi\n', 'ops');
    expect(cm).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: AGENT_CONFIGMAP_NAME, namespace: 'ops' } });
    expect(cm.data).toEqual({ [AGENT_SCRIPT_KEY]: '#!/bin/bash\necho hi\n' });
    expect(cm.metadata.annotations?.['patchpilot.io/script-sha256']).toBe(sha256Hex('#!/bin/bash\necho hi\n'));
    expect(buildAgentConfigMap('x').metadata.namespace).toBe('os-patch');
    expect(buildAgentConfigMap('x', 'os-patch', 'agent-v2').metadata.name).toBe('agent-v2');
    expect(() => buildAgentConfigMap('x', 'os-patch', 'Bad_Name')).toThrow('DNS-1123');
  });

  it('is what the Job mounts', () => {
    const cm = buildAgentConfigMap('x');
    const volume = buildPatchJob(spec()).spec.template.spec.volumes[0]!;
    expect(volume.configMap.name).toBe(cm.metadata.name);
    expect(Object.keys(cm.data)).toEqual(volume.configMap.items.map((i) => i.key));
  });
});

describe('buildRebootJob', () => {
  const key = 'run-20261122-abc123/worker-1';

  it('reboots the host through nsenter on PID 1, privileged, pinned to the node, never retried', () => {
    const job = buildRebootJob({ node: 'worker-1', key });
    const pod = job.spec.template.spec;
    expect(pod.nodeName).toBe('worker-1');
    expect(pod.hostPID).toBe(true);
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.automountServiceAccountToken).toBe(false);
    // A retried reboot Job would reboot the node a second time.
    expect(job.spec.backoffLimit).toBe(0);
    const c = pod.containers[0]!;
    expect([...c.command, ...c.args]).toEqual(['nsenter', '--target', '1', '--mount', '--uts', '--ipc', '--net', '--pid', '--', 'systemctl', 'reboot']);
    expect(c.securityContext).toEqual({ privileged: true, runAsUser: 0 });
    expect(pod.tolerations).toEqual(buildPatchJob(spec({ activeDeadlineSeconds: job.spec.activeDeadlineSeconds })).spec.template.spec.tolerations);
  });

  it('says what it is and which reboot it is, on the Job and its pod', () => {
    const job = buildRebootJob({ node: 'worker-1', key, namespace: 'ops', image: 'registry.local/tools:1' });
    expect(job.metadata.namespace).toBe('ops');
    expect(job.metadata.labels['patchpilot.io/action']).toBe('reboot');
    expect(job.metadata.annotations).toMatchObject({ 'patchpilot.io/reboot-key': key, 'patchpilot.io/node': 'worker-1' });
    expect(job.spec.template.metadata.labels).toEqual(job.metadata.labels);
    expect(job.spec.template.spec.containers[0]?.image).toBe('registry.local/tools:1');
  });

  it('is named from the node and the key: the same key names the same Job, another key another', () => {
    expect(buildRebootJob({ node: 'worker-1', key }).metadata.name).toBe(rebootJobName('worker-1', key));
    expect(rebootJobName('worker-1', key)).toBe(rebootJobName('worker-1', key));
    expect(rebootJobName('worker-1', key)).not.toBe(rebootJobName('worker-1', 'run-2/worker-1'));
    expect(rebootJobName('worker-1', key)).toMatch(/^reboot-worker-1-[0-9a-f]{10}$/);
    fc.assert(
      fc.property(nodeName, fc.string({ maxLength: 80 }), (node, k) => {
        const name = rebootJobName(node, k);
        expect(name.length).toBeLessThanOrEqual(63);
        expect(name).toMatch(DNS1123_LABEL);
        for (const value of Object.values(buildRebootJob({ node, key: k }).metadata.labels)) expect(value).toMatch(LABEL_VALUE);
      }),
      { numRuns: 200 },
    );
  });
});
