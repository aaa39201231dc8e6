/**
 * What `doctor` reads of patchpilot's own objects in its namespace (the DiagnosticsPort of KubeCluster): its Jobs
 * with the agent report of the newest finished one per node (parsed from the pod log as a run does, with
 * agent-jobs.ts's lastReport), the agent ConfigMap's script digest, and the orchestrator's Deployment. Read-only.
 */
import type { AppsV1Api, BatchV1Api, CoreV1Api, V1Job, V1Pod } from '@kubernetes/client-node';
import { AGENT_SCRIPT_KEY, ANNOTATIONS as JOB_ANNOTATIONS, LABELS } from './job-manifest.ts';
import type { AgentConfigMapInfo, DeploymentInfo, DiagnosticJob } from '../port.ts';
import { finishedCondition, JOB_NAME_LABEL, lastReport, readPodLog } from './agent-jobs.ts';
import { isNotFound, type KubeRequests } from './requests.ts';

/** deploy/deployment.yaml's name. */
export const DEPLOYMENT_NAME = 'patchpilot';
const MANAGED_BY_SELECTOR = `${LABELS.managedBy}=patchpilot`;
/** Lines that explain the failures doctor looks for (the seed's "gpg: keyserver receive failed", dpkg locks). */
const TELLING_LINE = /gpg|keyserver|lock|dpkg/i;

export interface DiagnosticsContext {
  core: CoreV1Api;
  batch: BatchV1Api;
  apps: AppsV1Api;
  requests: KubeRequests;
  namespace: string;
}

const time = (value: Date | string | undefined | null): number | null => {
  if (value === undefined || value === null) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : ms;
};

export async function recentJobs(ctx: DiagnosticsContext, signal?: AbortSignal): Promise<DiagnosticJob[]> {
  const { batch, core, requests, namespace } = ctx;
  const [jobs, pods] = await Promise.all([
    requests.send({ verb: 'list', resource: 'jobs', group: 'batch', namespace }, (o) => batch.listNamespacedJob({ namespace, labelSelector: MANAGED_BY_SELECTOR }, o), { signal }),
    requests.send({ verb: 'list', resource: 'pods', group: '', namespace }, (o) => core.listNamespacedPod({ namespace, labelSelector: MANAGED_BY_SELECTOR }, o), { signal }),
  ]);
  const views = jobs.items.map((job) => view(job)).sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0) || a.name.localeCompare(b.name));
  // Only the newest finished agent Job of each node and action is read: older ones were superseded by it, and a
  // cluster of a thousand nodes should not cost a thousand log reads per older trigger.
  const newest = new Map<string, DiagnosticJob>();
  for (const job of views) if (job.action !== 'reboot' && job.status !== 'running') newest.set(`${job.node ?? job.name}/${job.action}`, job);
  await Promise.all(
    [...newest.values()].map(async (job) => {
      const source = jobs.items.find((j) => j.metadata?.name === job.name)!;
      const pod = podOf(source, pods.items);
      if (!pod) return;
      const log = await readPodLog(ctx, pod, signal);
      const parsed = lastReport(log);
      job.report = parsed.report ?? null;
      const lines = log.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('{'));
      const telling = lines.filter((l) => TELLING_LINE.test(l));
      job.logLines = [...new Set([...telling, ...lines.slice(-3)])].slice(-8);
    }),
  );
  return views;
}

function view(job: V1Job): DiagnosticJob {
  const annotations = job.metadata?.annotations ?? {};
  const finished = finishedCondition(job);
  const failedAt = job.status?.conditions?.find((c) => (c.type === 'Failed' || c.type === 'Complete') && c.status === 'True')?.lastTransitionTime;
  const rebootKey = annotations[JOB_ANNOTATIONS.rebootKey];
  return {
    name: job.metadata?.name ?? '',
    node: annotations[JOB_ANNOTATIONS.node] ?? job.spec?.template.spec?.nodeName ?? null,
    runId: annotations[JOB_ANNOTATIONS.run] ?? (rebootKey ? rebootKey.split('/')[0]! : null),
    action: job.metadata?.labels?.[LABELS.action] ?? 'patch',
    status: finished === null ? 'running' : finished.type === 'Complete' ? 'succeeded' : 'failed',
    startedAt: time(job.status?.startTime) ?? time(job.metadata?.creationTimestamp),
    finishedAt: finished === null ? null : (time(job.status?.completionTime) ?? time(failedAt)),
    failure: finished?.type === 'Failed' ? `${finished.reason || 'Failed'}${finished.message ? `: ${finished.message}` : ''}` : null,
    report: null,
    logLines: [],
  };
}

/** The Job's own pod (not one of an earlier Job of the same name), the newest. */
function podOf(job: V1Job, pods: V1Pod[]): V1Pod | undefined {
  const uid = job.metadata?.uid;
  const name = job.metadata?.name;
  return pods
    .filter((pod) => pod.metadata?.labels?.[JOB_NAME_LABEL] === name)
    .filter((pod) => {
      const owners = pod.metadata?.ownerReferences ?? [];
      return owners.length === 0 || owners.some((o) => o.uid === uid);
    })
    .sort((a, b) => (time(a.metadata?.creationTimestamp) ?? 0) - (time(b.metadata?.creationTimestamp) ?? 0))
    .at(-1);
}


export async function agentConfigMap(ctx: DiagnosticsContext, name: string, expectedSha256: string, signal?: AbortSignal): Promise<AgentConfigMapInfo> {
  const { core, requests, namespace } = ctx;
  try {
    const cm = await requests.send({ verb: 'get', resource: 'configmaps', group: '', namespace, name }, (o) => core.readNamespacedConfigMap({ name, namespace }, o), { signal });
    const announced = cm.metadata?.annotations?.[JOB_ANNOTATIONS.scriptSha256];
    // A ConfigMap without the script key ships nothing, whatever its annotation says.
    const sha256 = cm.data?.[AGENT_SCRIPT_KEY] === undefined ? 'no-script' : (announced ?? 'unknown');
    return { name, namespace, sha256, expectedSha256 };
  } catch (err) {
    if (isNotFound(err)) return { name, namespace, sha256: null, expectedSha256 };
    throw err;
  }
}

export async function deployment(ctx: DiagnosticsContext, signal?: AbortSignal): Promise<DeploymentInfo | null> {
  const { apps, requests, namespace } = ctx;
  const name = DEPLOYMENT_NAME;
  try {
    const d = await requests.send({ verb: 'get', resource: 'deployments', group: 'apps', namespace, name }, (o) => apps.readNamespacedDeployment({ name, namespace }, o), { signal });
    const replicas = d.spec?.replicas ?? 1;
    const readyReplicas = d.status?.readyReplicas ?? 0;
    const available = d.status?.conditions?.find((c) => c.type === 'Available');
    const progressing = d.status?.conditions?.find((c) => c.type === 'Progressing' && c.status === 'False');
    let problem: string | null = null;
    if (readyReplicas < replicas) problem = `${readyReplicas}/${replicas} replicas ready`;
    if (available && available.status !== 'True') problem = `${problem ? `${problem}; ` : ''}not available: ${available.message ?? available.reason ?? ''}`.trim();
    if (progressing) problem = `${problem ? `${problem}; ` : ''}${progressing.reason ?? 'not progressing'}: ${progressing.message ?? ''}`.trim();
    return { name, namespace, replicas, readyReplicas, problem };
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}
