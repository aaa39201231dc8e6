/**
 * Runs the node agent on a real cluster node the way patchpilot does: the agent's ConfigMap and the patch Job built by
 * src/cluster/kube/job-manifest.ts, created with client-node, then the pod's log read back and its last line parsed as the agent
 * report. Used by the container-based suites (kind, k3s), which need a cluster and a container runtime.
 *
 * This is a test harness, not the Kubernetes adapter: it polls plainly, keeps what it saw for the assertion message,
 * and reports a pod that died without a report as data (as the engine would, with JOB_FAILED) instead of throwing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ApiException,
  BatchV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1ConfigMap,
  type V1Job,
  type V1Pod,
} from '@kubernetes/client-node';
import { agentScript } from '../agent/index.ts';
import { buildAgentConfigMap, buildPatchJob, DEFAULT_NAMESPACE, type PatchJobBuildInput } from '../cluster/kube/job-manifest.ts';
import { parsePlan } from '../engine/plan.ts';
import { parseAgentReport, type AgentReport } from '../engine/report.ts';

export interface AgentJobRequest {
  node: string;
  /** Default `os-patch`. */
  namespace?: string;
  /** Label-safe; names the Job (`apply-os-patch-on-<node>-with-<hash>`). Default: random, so reruns never collide. */
  hash?: string;
  runId?: string;
  /** Anything else of the Job's spec (holds, security-only, image, deadline); defaults are the default plan's. */
  spec?: Partial<PatchJobBuildInput>;
  /** How long to wait for the pod to finish. Default 10 minutes (apt on a fresh node downloads its lists). */
  timeoutMs?: number;
  pollMs?: number;
  signal?: AbortSignal;
}

export interface AgentJobResult {
  jobName: string;
  namespace: string;
  podName: string;
  phase: 'Succeeded' | 'Failed';
  /** The agent container's exit code. */
  exitCode: number | null;
  /** The container's whole log (the agent's stderr lines, then its report). */
  log: string;
  /** The parsed report, or null when the last line is not one (then `reportError` says why). */
  report: AgentReport | null;
  reportError: string | null;
  /**
   * What failed, as the engine would record it: the report's error, or JOB_FAILED when the pod ended without a report.
   * Null when the agent reported success.
   */
  failure: { code: string; message: string } | null;
}

const isStatus = (e: unknown, code: number) => e instanceof ApiException && e.code === code;

async function createOrKeep(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (e) {
    if (!isStatus(e, 409)) throw e;
  }
}

/** Creates the namespace unless it exists (the deploy manifests may have created it with labels of their own). */
export async function ensureNamespace(kubeConfig: KubeConfig, name = DEFAULT_NAMESPACE): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await createOrKeep(() => core.createNamespace({ body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } }));
}

/** Puts this build's agent script in the namespace's ConfigMap (replacing an older one). */
export async function installAgentConfigMap(kubeConfig: KubeConfig, namespace = DEFAULT_NAMESPACE): Promise<V1ConfigMap> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const body: V1ConfigMap = buildAgentConfigMap(agentScript(), namespace);
  const name = body.metadata!.name!;
  try {
    return await core.createNamespacedConfigMap({ namespace, body });
  } catch (e) {
    if (!isStatus(e, 409)) throw e;
    return core.replaceNamespacedConfigMap({ name, namespace, body });
  }
}

function describePod(pod: V1Pod | undefined): string {
  if (!pod) return 'no pod yet';
  const states = (pod.status?.containerStatuses ?? []).map((c) => {
    const s = c.state;
    if (s?.waiting) return `${c.name} waiting (${s.waiting.reason ?? '?'}${s.waiting.message ? `: ${s.waiting.message}` : ''})`;
    if (s?.terminated) return `${c.name} terminated (exit ${s.terminated.exitCode}, ${s.terminated.reason ?? '?'})`;
    if (s?.running) return `${c.name} running`;
    return `${c.name} unknown`;
  });
  const conditions = (pod.status?.conditions ?? []).filter((c) => c.status !== 'True').map((c) => `${c.type}: ${c.reason ?? ''} ${c.message ?? ''}`.trim());
  return [`pod ${pod.metadata?.name ?? '?'} ${pod.status?.phase ?? 'Unknown'}`, ...states, ...conditions].join('; ');
}

/** The patch Job's spec for a node, with the default plan's settings unless `request.spec` says otherwise. */
export function agentJobFor(request: AgentJobRequest): V1Job {
  const plan = parsePlan({});
  const hash = request.hash ?? `e2e${Math.random().toString(16).slice(2, 12)}`;
  const spec: PatchJobBuildInput = {
    runId: request.runId ?? `e2e-${hash}`,
    node: request.node,
    hash,
    mode: 'native',
    agent: 'modern',
    securityOnly: plan.securityOnly,
    holdPackages: [...plan.holdPackages],
    lockTimeoutSeconds: 120,
    rebootIfRequired: false,
    downloadOnly: false,
    namespace: request.namespace ?? DEFAULT_NAMESPACE,
    // A test Job should not outlive the test by a day; its log is read before the TTL could matter.
    ttlSecondsAfterFinished: 600,
    activeDeadlineSeconds: 900,
    ...request.spec,
  };
  return buildPatchJob(spec);
}

/**
 * Installs the agent's ConfigMap, creates the patch Job for `request.node`, waits for its pod to end, and returns the
 * pod's log and the agent report. The Job is left in place (its TTL removes it) so a failing test can be looked at.
 */
export async function runAgentJob(kubeConfig: KubeConfig, request: AgentJobRequest): Promise<AgentJobResult> {
  const namespace = request.namespace ?? DEFAULT_NAMESPACE;
  const timeoutMs = request.timeoutMs ?? 10 * 60_000;
  const pollMs = request.pollMs ?? 2000;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const batch = kubeConfig.makeApiClient(BatchV1Api);

  await ensureNamespace(kubeConfig, namespace);
  await installAgentConfigMap(kubeConfig, namespace);
  const job = agentJobFor({ ...request, namespace });
  const jobName = job.metadata!.name!;
  await batch.createNamespacedJob({ namespace, body: job });

  const giveUpAt = Date.now() + timeoutMs;
  let pod: V1Pod;
  for (;;) {
    request.signal?.throwIfAborted();
    // `job-name` is the label the Job controller puts on its pods (every Kubernetes version we support has it).
    const pods = await core.listNamespacedPod({ namespace, labelSelector: `job-name=${jobName}` });
    const seen = pods.items[0];
    const phase = seen?.status?.phase;
    if (seen && (phase === 'Succeeded' || phase === 'Failed')) {
      pod = seen;
      break;
    }
    if (Date.now() >= giveUpAt) {
      throw new Error(`job ${namespace}/${jobName} on ${request.node} did not finish within ${timeoutMs / 1000} s: ${describePod(seen)}`);
    }
    await sleep(pollMs, undefined, request.signal ? { signal: request.signal } : undefined);
  }

  const podName = pod.metadata!.name!;
  const phase = pod.status!.phase as 'Succeeded' | 'Failed';
  const agent = pod.status?.containerStatuses?.find((c) => c.name === 'agent');
  const exitCode = agent?.state?.terminated?.exitCode ?? null;
  let log = '';
  try {
    log = await core.readNamespacedPodLog({ name: podName, namespace, container: 'agent' });
  } catch (e) {
    // A container that never started has no log; what the pod says about it is the next best thing.
    log = `(no log: ${(e as Error).message.split('\n')[0]}) ${describePod(pod)}`;
  }

  let report: AgentReport | null = null;
  let reportError: string | null = null;
  try {
    report = parseAgentReport(log);
  } catch (e) {
    reportError = (e as Error).message;
  }
  const lastLine = log.trim().split('\n').at(-1) ?? '';
  const failure = report
    ? report.error
    : { code: 'JOB_FAILED', message: `the agent pod ended ${phase} (exit ${exitCode ?? '?'}) without a report: ${lastLine.slice(0, 300)}` };
  return { jobName, namespace, podName, phase, exitCode, log, report, reportError, failure };
}

/** Deletes a Job and its pod (tests that run several Jobs on one node tidy up between them). */
export async function deleteAgentJob(kubeConfig: KubeConfig, jobName: string, namespace = DEFAULT_NAMESPACE): Promise<void> {
  const batch = kubeConfig.makeApiClient(BatchV1Api);
  try {
    await batch.deleteNamespacedJob({ name: jobName, namespace, propagationPolicy: 'Background' });
  } catch (e) {
    if (!isStatus(e, 404)) throw e;
  }
}
