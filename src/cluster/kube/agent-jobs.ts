/**
 * The agent's Jobs on a real cluster: the ConfigMap that ships the script, the patch (and prefetch) Job with its
 * create / reuse / replace rule, reading the agent report from the finished pod's log, and the reboot Job.
 */
import type { BatchV1Api, CoreV1Api, V1Job, V1Pod } from '@kubernetes/client-node';
import {
  AGENT_CONFIGMAP_NAME,
  ANNOTATIONS as JOB_ANNOTATIONS,
  LABELS,
  buildAgentConfigMap,
  buildPatchJob,
  buildRebootJob,
  type PatchJobOptions,
} from './job-manifest.ts';
import type { Clock } from '../../engine/clock.ts';
import { EffectError } from '../../engine/effects.ts';
import { agentReportSchema, type AgentReport } from '../../engine/report.ts';
import { sleep } from '../in-process.ts';
import { labelValue } from '../jobs.ts';
import type { PatchJobSpec } from '../port.ts';
import { KubeApiError } from './errors.ts';
import { isNotFound, type KubeRequests } from './requests.ts';

/** The label the Job controller puts on its pods (Kubernetes >= 1.27). */
export const JOB_NAME_LABEL = 'batch.kubernetes.io/job-name';
const CONTROLLER_UID_LABEL = 'batch.kubernetes.io/controller-uid';
/** Enough of the log for the report (one line) and some context when there is none. */
const LOG_TAIL_LINES = 200;
const FAILURE_LOG_LINES = 5;

/** The Job ended without an agent report; names the node so its Event can go there. */
export class AgentJobFailedError extends EffectError {
  readonly node: string;
  readonly downloadOnly: boolean;

  constructor(node: string, downloadOnly: boolean, message: string) {
    super('JOB_FAILED', message);
    this.node = node;
    this.downloadOnly = downloadOnly;
  }
}

export interface AgentJobsContext {
  core: CoreV1Api;
  batch: BatchV1Api;
  requests: KubeRequests;
  clock: Clock;
  namespace: string;
  pollMs: number;
  agentScript: string;
  jobOptions: PatchJobOptions;
}

export class AgentJobs {
  readonly #ctx: AgentJobsContext;
  /** The script digest known to be in the cluster's ConfigMap (the lease keeps other orchestrators from changing it). */
  #shippedScript: string | null = null;

  constructor(ctx: AgentJobsContext) {
    this.#ctx = ctx;
  }

  /** Creates the agent ConfigMap, or updates it when it holds another version of the script. */
  async ensureAgentConfigMap(signal?: AbortSignal): Promise<void> {
    const { core, requests, namespace, agentScript, jobOptions } = this.#ctx;
    const name = jobOptions.agentConfigMap ?? AGENT_CONFIGMAP_NAME;
    const desired = buildAgentConfigMap(agentScript, namespace, name);
    const sha = desired.metadata.annotations?.[JOB_ANNOTATIONS.scriptSha256] ?? '';
    if (this.#shippedScript === sha) return;
    const request = { verb: 'update', resource: 'configmaps', group: '', namespace, name } as const;
    await requests.untilNoConflict(
      request,
      async () => {
        let current = null;
        try {
          current = await requests.send({ ...request, verb: 'get' }, (o) => core.readNamespacedConfigMap({ name, namespace }, o), { signal });
        } catch (err) {
          if (!isNotFound(err)) throw err;
        }
        if (current === null) {
          await requests.send({ ...request, verb: 'create' }, (o) => core.createNamespacedConfigMap({ namespace, body: desired }, o), { signal });
        } else if (current.metadata?.annotations?.[JOB_ANNOTATIONS.scriptSha256] !== sha) {
          const body = { ...desired, metadata: { ...desired.metadata, resourceVersion: current.metadata?.resourceVersion ?? '' } };
          await requests.send(request, (o) => core.replaceNamespacedConfigMap({ name, namespace, body }, o), { signal });
        }
      },
      signal,
    );
    this.#shippedScript = sha;
  }

  /** The ClusterPort rule: this run's Job is reused, an earlier run's finished Job of the same name is replaced. */
  async startPatchJob(spec: PatchJobSpec, signal?: AbortSignal): Promise<{ jobName: string; created: boolean }> {
    const { batch, requests, namespace, jobOptions } = this.#ctx;
    await this.ensureAgentConfigMap(signal);
    const body = buildPatchJob({ ...jobOptions, ...spec, namespace });
    const name = body.metadata.name;
    const request = { verb: 'create', resource: 'jobs', group: 'batch', namespace, name } as const;
    for (;;) {
      try {
        await requests.send(request, (o) => batch.createNamespacedJob({ namespace, body }, o), { signal, handles: [409] });
        return { jobName: name, created: true };
      } catch (err) {
        if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
      }
      const existing = await this.#readJob(name, signal);
      // Deleted between our create and our read: create again.
      if (existing === null) continue;
      const owner = existing.metadata?.annotations?.[JOB_ANNOTATIONS.run];
      if (owner === spec.runId) return { jobName: name, created: false };
      const finished = finishedCondition(existing);
      // The same patch (same node, same version hash) started by another run, typically a holder that lost the
      // cluster (it died, or was fenced off) between starting the Job and marking the node: running, it is waited
      // for; done, its report is the result. A second Job would patch the node twice.
      const samePatch = existing.metadata?.labels?.[LABELS.hash] === labelValue(spec.hash) && existing.metadata?.labels?.[LABELS.action] === body.metadata.labels[LABELS.action];
      if (samePatch && finished?.type !== 'Failed') return { jobName: name, created: false };
      if (finished === null) {
        throw new EffectError('API_ERROR', `job ${name} of run ${owner ?? '(unknown)'} is still running in namespace ${namespace}; not replacing it`, true);
      }
      await this.#deleteJob(existing, signal);
    }
  }

  /**
   * Waits for the Job's pod to finish and returns the agent report, the last log line that parses as JSON. A report
   * saying "failed" is a result (the pod then exits 1); no report at all is JOB_FAILED, with why the pod ended.
   */
  async awaitAgentReport(jobName: string, signal: AbortSignal): Promise<{ node: string; downloadOnly: boolean; reportOnly: boolean; report: AgentReport }> {
    for (;;) {
      const job = await this.#readJob(jobName, signal);
      if (job === null) throw new EffectError('JOB_FAILED', `job ${jobName} no longer exists in namespace ${this.#ctx.namespace}`);
      const node = job.metadata?.annotations?.[JOB_ANNOTATIONS.node] ?? job.spec?.template.spec?.nodeName ?? '';
      const downloadOnly = job.metadata?.labels?.[LABELS.action] === 'prefetch';
      const reportOnly = job.metadata?.labels?.[LABELS.action] === 'scan';
      const pods = await this.#podsOf(job, signal);
      const ended = pods.find(podEnded);
      const failed = finishedCondition(job);
      if (ended || failed?.type === 'Failed' || (failed && pods.length === 0)) {
        const pod = ended ?? pods.at(-1);
        const log = pod ? await this.#readLog(pod, signal) : '';
        const parsed = lastReport(log);
        if (parsed.report) return { node, downloadOnly, reportOnly, report: parsed.report };
        throw new AgentJobFailedError(node, downloadOnly, describeFailure(jobName, node, job, pod, log, parsed.problem));
      }
      await sleep(this.#ctx.clock, this.#ctx.pollMs, signal);
    }
  }

  /** Creates the node's reboot Job for this key; returns false when it already exists (the reboot was asked). */
  async createRebootJob(node: string, key: string, signal?: AbortSignal): Promise<boolean> {
    const { batch, requests, namespace, jobOptions } = this.#ctx;
    const body = buildRebootJob({
      node,
      key,
      namespace,
      ...(jobOptions.image ? { image: jobOptions.image } : {}),
      ...(jobOptions.ttlSecondsAfterFinished !== undefined ? { ttlSecondsAfterFinished: jobOptions.ttlSecondsAfterFinished } : {}),
    });
    const request = { verb: 'create', resource: 'jobs', group: 'batch', namespace, name: body.metadata.name } as const;
    try {
      await requests.send(request, (o) => batch.createNamespacedJob({ namespace, body }, o), { signal, handles: [409] });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }

  async #readJob(name: string, signal?: AbortSignal): Promise<V1Job | null> {
    const { batch, requests, namespace } = this.#ctx;
    try {
      return await requests.send({ verb: 'get', resource: 'jobs', group: 'batch', namespace, name }, (o) => batch.readNamespacedJob({ name, namespace }, o), {
        signal,
      });
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** Deletes an earlier run's Job (its pods go in the background) and waits until the name is free. */
  async #deleteJob(job: V1Job, signal?: AbortSignal): Promise<void> {
    const { batch, requests, namespace, clock, pollMs } = this.#ctx;
    const name = job.metadata?.name ?? '';
    try {
      await requests.send(
        { verb: 'delete', resource: 'jobs', group: 'batch', namespace, name },
        (o) => batch.deleteNamespacedJob({ name, namespace, propagationPolicy: 'Background' }, o),
        { signal },
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    for (;;) {
      const current = await this.#readJob(name, signal);
      if (current === null || current.metadata?.uid !== job.metadata?.uid) return;
      await sleep(clock, pollMs, signal);
    }
  }

  /** The Job's pods, oldest first. Pods of an earlier Job of the same name, still being collected, are not its own. */
  async #podsOf(job: V1Job, signal?: AbortSignal): Promise<V1Pod[]> {
    const { core, requests, namespace } = this.#ctx;
    const name = job.metadata?.name ?? '';
    const list = await requests.send(
      { verb: 'list', resource: 'pods', group: '', namespace },
      (o) => core.listNamespacedPod({ namespace, labelSelector: `${JOB_NAME_LABEL}=${name}` }, o),
      { signal },
    );
    const uid = job.metadata?.uid;
    return list.items
      .filter((pod) => {
        const owners = pod.metadata?.ownerReferences ?? [];
        const controllerUid = pod.metadata?.labels?.[CONTROLLER_UID_LABEL];
        if (owners.length > 0) return owners.some((o) => o.uid === uid);
        return controllerUid === undefined || controllerUid === uid;
      })
      .sort((a, b) => timeOf(a) - timeOf(b));
  }

  #readLog(pod: V1Pod, signal?: AbortSignal): Promise<string> {
    return readPodLog(this.#ctx, pod, signal);
  }

}

function timeOf(pod: V1Pod): number {
  const created = pod.metadata?.creationTimestamp;
  return created ? new Date(created).getTime() : 0;
}

function podEnded(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Succeeded' || phase === 'Failed' || (pod.status?.containerStatuses ?? []).some((c) => c.state?.terminated !== undefined);
}

/** The Job's Complete or Failed condition, when it has finished. */
export function finishedCondition(job: V1Job): { type: 'Complete' | 'Failed'; reason: string; message: string } | null {
  for (const c of job.status?.conditions ?? []) {
    if ((c.type === 'Complete' || c.type === 'Failed') && c.status === 'True') return { type: c.type, reason: c.reason ?? '', message: c.message ?? '' };
  }
  return null;
}

/** The agent report: the last line of the log that parses as JSON, checked against the report contract. */
export function lastReport(log: string): { report: AgentReport; problem?: undefined } | { report?: undefined; problem: string } {
  const lines = log.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith('{')) continue;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      continue;
    }
    const parsed = agentReportSchema.safeParse(json);
    if (parsed.success) return { report: parsed.data };
    const issue = parsed.error.issues[0];
    return { problem: `the agent's last JSON line is not a valid report (${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'})` };
  }
  return { problem: log.trim() === '' ? 'the agent printed nothing' : 'no agent report in its log' };
}

function describeFailure(jobName: string, node: string, job: V1Job, pod: V1Pod | undefined, log: string, problem: string): string {
  const parts: string[] = [];
  const status = pod?.status?.containerStatuses?.[0];
  const terminated = status?.state?.terminated;
  if (terminated) parts.push(`container ${terminated.reason ?? 'terminated'} with exit code ${terminated.exitCode}`);
  else if (status?.state?.waiting?.reason) parts.push(`container never ran (${status.state.waiting.reason})`);
  else if (!pod) parts.push('no pod');
  const failed = finishedCondition(job);
  if (failed?.type === 'Failed') parts.push(`job ${failed.reason || 'Failed'}${failed.message ? `: ${failed.message}` : ''}`);
  const tail = log
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-FAILURE_LOG_LINES);
  const where = node ? ` on node ${node}` : '';
  return `job ${jobName}${where}: ${problem}; ${parts.join('; ')}${tail.length > 0 ? `; last log lines: ${tail.join(' | ')}` : ''}`;
}

/** The last lines of a pod's first container's log; '' when the pod (or its log) is gone or never started. */
export async function readPodLog(ctx: { core: CoreV1Api; requests: KubeRequests; namespace: string }, pod: V1Pod, signal?: AbortSignal): Promise<string> {
  const { core, requests, namespace } = ctx;
  const name = pod.metadata?.name ?? '';
  const container = pod.spec?.containers[0]?.name;
  try {
    return await requests.send(
      { verb: 'get', resource: 'pods/log', group: '', namespace, name },
      (o) => core.readNamespacedPodLog({ name, namespace, ...(container ? { container } : {}), tailLines: LOG_TAIL_LINES }, o),
      { signal },
    );
  } catch (err) {
    if (err instanceof KubeApiError && (err.status === 404 || err.status === 400)) return '';
    throw err;
  }
}
