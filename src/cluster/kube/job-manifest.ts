/**
 * The Kubernetes objects that run the node agent (src/agent/patchpilot-agent.sh) on one node: a Job pinned to the node,
 * and the ConfigMap that carries the agent script. Pure builders: no I/O, no clock; the Kubernetes adapter sends what
 * they return. Each object is checked against client-node's V1Job or V1ConfigMap (`satisfies`) and keeps its literal
 * type, so callers read the fields the builders always set without optional chaining.
 *
 * How the script reaches the host. The pod is privileged with `hostPID: true`, so PID 1 in its PID namespace is the
 * host's init, and `nsenter --target 1 --mount --uts --ipc --net --pid` runs a program in the host's namespaces: the
 * host's bash, apt/dnf, dpkg database, /etc and package caches, exactly as an operator on SSH would. The script stays in
 * the ConfigMap volume, which only the container's mount namespace can see; the container's shell opens it as fd 9
 * before nsenter switches namespaces, and the host's bash runs `/proc/self/fd/9` (a /proc fd link reaches the open file
 * whatever mount namespace the reader is in). We chose this over the two usual ways:
 * - copying the script to a host path (`/var/lib/patchpilot/agent.sh`, then nsenter and run it) writes to the node,
 *   leaves a file behind when the pod dies, needs a hostPath volume and a writable, exec-able host directory, and opens a
 *   window between copy and run in which the file on the host can be changed;
 * - `bash -s` with the script on stdin writes nothing, but bash then reads the program from the same stdin that every
 *   command it starts inherits: an apt maintainer script, a debconf prompt or a `read` would swallow the rest of the
 *   agent and bash would run what is left of it. Running the script from fd 9 keeps that property of writing nothing
 *   and gives the agent a stdin of /dev/null.
 * The processes started on the host stay in the pod's cgroup, so the container gets small requests and no limits
 * (a memory limit would apply to apt and dpkg).
 */
import type { V1ConfigMap, V1Job, V1Toleration } from '@kubernetes/client-node';
import { sha256Hex } from '../../engine/hash.ts';
import { PALETTE_LABEL_KEY, parsePlan } from '../../engine/plan.ts';
import { boundedName, labelValue, patchJobName, DEFAULT_PLAN_NAME } from '../jobs.ts';
import type { PatchJobSpec } from '../port.ts';

/** Palette's namespace for its patch Jobs; ours too, so `kubectl get jobs -n os-patch` works for both. */
export const DEFAULT_NAMESPACE = 'os-patch';
export const AGENT_CONFIGMAP_NAME = 'patchpilot-agent';
/** The ConfigMap key, and the file name in the volume. */
export const AGENT_SCRIPT_KEY = 'patchpilot-agent.sh';
export const AGENT_MOUNT_PATH = '/opt/patchpilot';
/**
 * Needs only `sh` and util-linux's `nsenter` (Debian's slim image has both: util-linux is essential there); everything
 * else runs from the host. Pin it by digest in production (`image` option).
 */
export const DEFAULT_AGENT_IMAGE = 'docker.io/library/debian:bookworm-slim';
/** Keep finished Jobs (and so their logs, the agent report among them) for a day, then let Kubernetes delete them. */
export const DEFAULT_TTL_SECONDS_AFTER_FINISHED = 86_400;
/** The plan's patch step timeout, so a Job built without one dies when the engine would give up on it anyway. */
export const DEFAULT_ACTIVE_DEADLINE_SECONDS = parsePlan({}).patchTimeoutSeconds;

export const LABELS = {
  name: 'app.kubernetes.io/name',
  component: 'app.kubernetes.io/component',
  managedBy: 'app.kubernetes.io/managed-by',
  node: 'patchpilot.io/node',
  run: 'patchpilot.io/run',
  hash: 'patchpilot.io/hash',
  action: 'patchpilot.io/action',
  /** The lease generation (fencing token) the Job was decided under: a later holder tells a stale holder's Job by it. */
  generation: 'patchpilot.io/lease-generation',
} as const;

export const ANNOTATIONS = {
  /** Labels hold at most 63 characters; the full node and run names are here. */
  node: 'patchpilot.io/node',
  run: 'patchpilot.io/run',
  scriptSha256: 'patchpilot.io/script-sha256',
  /** The reboot's idempotency key (`<run>/<node>`): one reboot Job per key. */
  rebootKey: 'patchpilot.io/reboot-key',
} as const;

/** The program the reboot Job runs in the host's namespaces: systemd's orderly reboot, as an operator would type it. */
export const REBOOT_COMMAND = ['nsenter', '--target', '1', '--mount', '--uts', '--ipc', '--net', '--pid', '--', 'systemctl', 'reboot'];
/** `systemctl reboot` returns at once; a reboot Job still running after this never got to ask. */
export const REBOOT_ACTIVE_DEADLINE_SECONDS = 300;

export interface PatchJobOptions {
  /** Default `os-patch`. */
  namespace?: string;
  /** Default DEFAULT_AGENT_IMAGE. */
  image?: string;
  /** The plan's name in our Job names (`apply-<plan>-on-<node>-with-<hash>`); default `os-patch`. */
  plan?: string;
  /** The ConfigMap holding the agent script; default `patchpilot-agent`. */
  agentConfigMap?: string;
  /** The plan's patchTimeoutSeconds. */
  activeDeadlineSeconds?: number;
  ttlSecondsAfterFinished?: number;
  /** Default 0: a patch that failed half-way must be looked at, not re-run blindly. */
  backoffLimit?: number;
  /** Palette mode: the task label key the Job also carries (the plan's labelKey); default Palette's own. */
  taskLabelKey?: string;
}

/** The agent's command line for a spec (what follows the script name). */
export function agentArgs(spec: Pick<PatchJobSpec, 'lockTimeoutSeconds' | 'holdPackages' | 'securityOnly' | 'downloadOnly' | 'reportOnly'>): string[] {
  const args = ['--lock-timeout', String(spec.lockTimeoutSeconds)];
  // Always passed, even empty: the plan, not the agent's defaults, decides what is held. The agent holds only the
  // installed ones.
  args.push('--hold', [...new Set(spec.holdPackages)].join(' '));
  args.push(spec.securityOnly ? '--security-only' : '--all');
  if (spec.downloadOnly) args.push('--download-only');
  if (spec.reportOnly) args.push('--dry-run');
  return args;
}

/**
 * The container's shell: opens the script as fd 9 and stdin as /dev/null, then becomes nsenter, which runs the host's
 * bash on `/proc/self/fd/9` with the agent's arguments. Fd 9 because the agent takes fd 3 for its report
 * (`exec 3>&1`): bash reads the script through a descriptor of its own, but `${BASH_SOURCE[0]}` (its --help) would
 * then name the report stream. The arguments travel as "$@" (argv), never through shell
 * quoting, so no package name can inject anything. `$0` is the name shown in `ps`.
 */
export function agentShell(scriptPath: string): string {
  return `exec nsenter --target 1 --mount --uts --ipc --net --pid -- bash /proc/self/fd/9 "$@" 9<'${scriptPath}' </dev/null`;
}

function checkWhole(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be a whole number >= ${min}, got ${value}`);
  return value;
}

/**
 * Tolerations. The Job's pod is bound with `spec.nodeName`, which bypasses the scheduler, so NoSchedule taints are not
 * checked; we tolerate the control-plane and cordon taints anyway so that the intent is explicit and the spec keeps
 * working if pinning ever moves to node affinity. NoExecute taints are enforced by the kubelet and the taint manager:
 * a node that goes NotReady or unreachable while it is patched (a network or kubelet restart under an upgrade) must
 * not have the agent evicted in the middle of dpkg, so those are tolerated for as long as the Job may run, and no
 * longer.
 */
function tolerations(deadlineSeconds: number): V1Toleration[] {
  return [
    { key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node-role.kubernetes.io/master', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: deadlineSeconds },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: deadlineSeconds },
  ];
}

/** What an agent Job does (its patchpilot.io/action label): `scan` (report only), `prefetch` (download only) or `patch`. */
export function jobAction(spec: Pick<PatchJobSpec, 'downloadOnly' | 'reportOnly'>): 'scan' | 'prefetch' | 'patch' {
  return spec.reportOnly ? 'scan' : spec.downloadOnly ? 'prefetch' : 'patch';
}

/** The labels every patch Job and its pod carry, to find them with a selector. */
export function patchJobLabels(
  spec: Pick<PatchJobSpec, 'node' | 'runId' | 'hash' | 'mode' | 'downloadOnly' | 'reportOnly'> & { generation?: number | undefined },
  taskLabelKey = PALETTE_LABEL_KEY): Record<string, string> {
  const labels: Record<string, string> = {
    [LABELS.name]: 'patchpilot',
    [LABELS.component]: 'os-patch',
    [LABELS.managedBy]: 'patchpilot',
    [LABELS.node]: labelValue(spec.node),
    [LABELS.run]: labelValue(spec.runId),
    [LABELS.hash]: labelValue(spec.hash),
    [LABELS.action]: jobAction(spec),
  };
  if (spec.generation !== undefined) labels[LABELS.generation] = String(spec.generation);
  // Users of Palette select its Jobs and nodes by the task label; keep their selectors working.
  if (spec.mode === 'palette') labels[taskLabelKey] = labelValue(spec.hash);
  return labels;
}

/**
 * The Job that runs the agent on `spec.node`. Its name is `spec.jobName` when the caller computed one (the engine and
 * the adapter must agree on it), otherwise `patchJobName` of the spec.
 */
export type PatchJobBuildInput = Omit<PatchJobSpec, 'jobName'> & { jobName?: string } & PatchJobOptions;

export function buildPatchJob(spec: PatchJobBuildInput) {
  const namespace = spec.namespace ?? DEFAULT_NAMESPACE;
  const deadline = checkWhole('activeDeadlineSeconds', spec.activeDeadlineSeconds ?? DEFAULT_ACTIVE_DEADLINE_SECONDS, 1);
  const ttl = checkWhole('ttlSecondsAfterFinished', spec.ttlSecondsAfterFinished ?? DEFAULT_TTL_SECONDS_AFTER_FINISHED, 0);
  const backoffLimit = checkWhole('backoffLimit', spec.backoffLimit ?? 0, 0);
  const name =
    spec.jobName ||
    patchJobName(spec.mode, spec.node, spec.hash, { downloadOnly: spec.downloadOnly, reportOnly: spec.reportOnly === true, plan: spec.plan ?? DEFAULT_PLAN_NAME });
  if (boundedName(name) !== name) throw new RangeError(`job name "${name}" is not a DNS-1123 label of at most 63 characters`);
  const labels = patchJobLabels(spec, spec.taskLabelKey);
  const annotations = { [ANNOTATIONS.node]: spec.node, [ANNOTATIONS.run]: spec.runId };
  const scriptPath = `${AGENT_MOUNT_PATH}/${AGENT_SCRIPT_KEY}`;

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace, labels, annotations },
    spec: {
      backoffLimit,
      activeDeadlineSeconds: deadline,
      ttlSecondsAfterFinished: ttl,
      template: {
        metadata: { labels: { ...labels }, annotations: { ...annotations } },
        spec: {
          // Bound to the node directly: no scheduler, so a cordoned node (we cordon before patching) still runs it.
          nodeName: spec.node,
          hostPID: true,
          // No pod network: the agent must run while the CNI is being upgraded or is broken.
          hostNetwork: true,
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          // Time for dpkg to finish a package if the Job is deleted.
          terminationGracePeriodSeconds: 120,
          tolerations: tolerations(deadline),
          containers: [
            {
              name: 'agent',
              image: spec.image ?? DEFAULT_AGENT_IMAGE,
              imagePullPolicy: 'IfNotPresent',
              command: ['/bin/sh', '-c', agentShell(scriptPath), 'patchpilot-agent'],
              args: agentArgs(spec),
              securityContext: { privileged: true, runAsUser: 0 },
              resources: { requests: { cpu: '10m', memory: '32Mi' } },
              volumeMounts: [{ name: 'agent', mountPath: AGENT_MOUNT_PATH, readOnly: true }],
            },
          ],
          volumes: [
            {
              name: 'agent',
              configMap: {
                name: spec.agentConfigMap ?? AGENT_CONFIGMAP_NAME,
                defaultMode: 0o444,
                items: [{ key: AGENT_SCRIPT_KEY, path: AGENT_SCRIPT_KEY }],
              },
            },
          ],
        },
      },
    },
  } satisfies V1Job;
}

/** The ConfigMap that delivers the agent script to every patch Job in the namespace. */
export function buildAgentConfigMap(script: string, namespace = DEFAULT_NAMESPACE, name = AGENT_CONFIGMAP_NAME) {
  if (boundedName(name) !== name) throw new RangeError(`ConfigMap name "${name}" is not a DNS-1123 label`);
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name,
      namespace,
      labels: { [LABELS.name]: 'patchpilot', [LABELS.component]: 'agent', [LABELS.managedBy]: 'patchpilot' },
      // Lets the adapter see whether the ConfigMap in the cluster is the script this build ships.
      annotations: { [ANNOTATIONS.scriptSha256]: sha256Hex(script) },
    },
    data: { [AGENT_SCRIPT_KEY]: script },
  } satisfies V1ConfigMap;
}

export interface RebootJobInput {
  node: string;
  /** Idempotency key (`<run>/<node>`): the same key always yields the same Job name, so asking twice reboots once. */
  key: string;
  namespace?: string;
  image?: string;
  ttlSecondsAfterFinished?: number;
}

/** `reboot-<node>-<digest of the key>`, bounded to a DNS-1123 label like every Job name. */
export function rebootJobName(node: string, key: string): string {
  return boundedName(`reboot-${node}-${sha256Hex(key).slice(0, 10)}`);
}

/**
 * The Job that reboots `node` "through the agent": the same privileged, hostPID, nsenter pattern as the patch Job,
 * running `systemctl reboot` on the host. It is never retried (backoffLimit 0, restartPolicy Never): the reboot kills
 * the pod, and a retry would reboot the node a second time.
 */
export function buildRebootJob(input: RebootJobInput) {
  const namespace = input.namespace ?? DEFAULT_NAMESPACE;
  const ttl = checkWhole('ttlSecondsAfterFinished', input.ttlSecondsAfterFinished ?? DEFAULT_TTL_SECONDS_AFTER_FINISHED, 0);
  const labels: Record<string, string> = {
    [LABELS.name]: 'patchpilot',
    [LABELS.component]: 'reboot',
    [LABELS.managedBy]: 'patchpilot',
    [LABELS.node]: labelValue(input.node),
    [LABELS.action]: 'reboot',
  };
  const annotations = { [ANNOTATIONS.node]: input.node, [ANNOTATIONS.rebootKey]: input.key };
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: rebootJobName(input.node, input.key), namespace, labels, annotations },
    spec: {
      backoffLimit: 0,
      activeDeadlineSeconds: REBOOT_ACTIVE_DEADLINE_SECONDS,
      ttlSecondsAfterFinished: ttl,
      template: {
        metadata: { labels: { ...labels }, annotations: { ...annotations } },
        spec: {
          nodeName: input.node,
          hostPID: true,
          hostNetwork: true,
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          tolerations: tolerations(REBOOT_ACTIVE_DEADLINE_SECONDS),
          containers: [
            {
              name: 'reboot',
              image: input.image ?? DEFAULT_AGENT_IMAGE,
              imagePullPolicy: 'IfNotPresent',
              command: [...REBOOT_COMMAND],
              args: [],
              securityContext: { privileged: true, runAsUser: 0 },
              resources: { requests: { cpu: '10m', memory: '16Mi' } },
              volumeMounts: [],
            },
          ],
          volumes: [],
        },
      },
    },
  } satisfies V1Job;
}
