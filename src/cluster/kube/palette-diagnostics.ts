/**
 * What `doctor` reads of Palette's own patching on the cluster (DiagnosticsPort.paletteArtifacts): the
 * SpectroSystemTasks in `os-patch`, the crony Jobs and pods there with the last lines of their logs, and the pods of
 * Palette's agent in `cluster-<uid>` namespaces. Read-only. A cluster is taken as Palette-managed when the API serves
 * spectrosystemtasks.cluster.spectrocloud.com or a `cluster-<uid>` namespace exists; names and labels: ../palette.ts.
 */
import type { BatchV1Api, CoreV1Api, CustomObjectsApi, V1Job, V1Pod } from '@kubernetes/client-node';
import {
  CRONY_SELECTOR,
  PALETTE_AGENT_NAMESPACE,
  PALETTE_GROUP,
  PALETTE_PATCH_NAMESPACE,
  PALETTE_VERSION,
  SPECTRO_SYSTEM_TASKS,
  type LabelSelectorRequirement,
  type PaletteArtifacts,
  type PaletteJob,
  type PalettePod,
  type PaletteTask,
  type TaskCondition,
} from '../palette.ts';
import { finishedCondition, readPodLog } from './agent-jobs.ts';
import { isNotFound, type KubeRequests } from './requests.ts';

export interface PaletteDiagnosticsContext {
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  requests: KubeRequests;
}

/** Log reads of succeeded crony Jobs are capped (newest first): a thousand-node cluster should not cost a thousand reads. */
const SUCCEEDED_LOGS_READ = 50;
const LOG_LINES_KEPT = 12;

const time = (value: Date | string | undefined | null): number | null => {
  if (value === undefined || value === null) return null;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? null : ms;
};

type Json = Record<string, unknown>;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export async function paletteArtifacts(ctx: PaletteDiagnosticsContext, signal?: AbortSignal): Promise<PaletteArtifacts> {
  const { core, batch, custom, requests } = ctx;
  const namespace = PALETTE_PATCH_NAMESPACE;
  const [taskList, namespaces] = await Promise.all([
    requests
      .send({ verb: 'list', resource: SPECTRO_SYSTEM_TASKS, group: PALETTE_GROUP, namespace }, (o) => custom.listNamespacedCustomObject({ group: PALETTE_GROUP, version: PALETTE_VERSION, namespace, plural: SPECTRO_SYSTEM_TASKS }, o), { signal })
      .then((list) => list as { items?: Json[] })
      .catch((err: unknown) => {
        if (isNotFound(err)) return null;
        throw err;
      }),
    requests.send({ verb: 'list', resource: 'namespaces', group: '' }, (o) => core.listNamespace({}, o), { signal }),
  ]);
  const agentNamespaces = namespaces.items.map((n) => n.metadata?.name ?? '').filter((n) => PALETTE_AGENT_NAMESPACE.test(n)).sort();
  if (taskList === null && agentNamespaces.length === 0) {
    return { managed: false, why: `the API server serves no ${SPECTRO_SYSTEM_TASKS}.${PALETTE_GROUP} and no cluster-<uid> namespace of Palette's agent exists` };
  }
  const tasks = (taskList?.items ?? []).map(taskView);
  const [jobs, pods, agentPods] = await Promise.all([
    requests.send({ verb: 'list', resource: 'jobs', group: 'batch', namespace }, (o) => batch.listNamespacedJob({ namespace, labelSelector: CRONY_SELECTOR }, o), { signal }),
    requests.send({ verb: 'list', resource: 'pods', group: '', namespace }, (o) => core.listNamespacedPod({ namespace, labelSelector: CRONY_SELECTOR }, o), { signal }),
    Promise.all(
      agentNamespaces.map((ns) => requests.send({ verb: 'list', resource: 'pods', group: '', namespace: ns }, (o) => core.listNamespacedPod({ namespace: ns }, o), { signal })),
    ).then((lists) => lists.flatMap((l) => l.items.map(podView))),
  ]);
  const views: PaletteJob[] = jobs.items
    .map((job) => jobView(job, newestPodOf(job, pods.items)))
    .sort((a, b) => (a.startedAt ?? 0) - (b.startedAt ?? 0) || a.name.localeCompare(b.name));
  const succeeded = views.filter((j) => j.status === 'succeeded').reverse().slice(0, SUCCEEDED_LOGS_READ);
  const toRead = [...views.filter((j) => j.status !== 'succeeded'), ...succeeded];
  await Promise.all(
    toRead.map(async (job) => {
      const pod = pods.items.find((p) => p.metadata?.name === job.pod?.name);
      if (!pod) return;
      const log = await readPodLog({ core, requests, namespace }, pod, signal);
      job.logTail = log.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '').slice(-LOG_LINES_KEPT);
    }),
  );
  return { managed: true, namespace, tasks, jobs: views, agentPods, agentNamespaces };
}

function taskView(item: Json): PaletteTask {
  const metadata = (item.metadata ?? {}) as Json;
  const spec = (item.spec ?? {}) as Json;
  const status = (item.status ?? {}) as Json;
  const selector = spec.nodeSelector as { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] } | undefined;
  const conditions: TaskCondition[] = (Array.isArray(status.conditions) ? (status.conditions as Json[]) : []).map((c) => ({
    type: str(c.type) ?? '',
    status: str(c.status) ?? 'Unknown',
    reason: str(c.reason) || null,
    message: str(c.message) || null,
    lastUpdateTime: time(str(c.lastUpdateTime) ?? str(c.lastTransitionTime)),
  }));
  return {
    namespace: str(metadata.namespace) ?? '',
    name: str(metadata.name) ?? '',
    createdAt: time(str(metadata.creationTimestamp)),
    version: str(spec.version),
    concurrency: typeof spec.concurrency === 'number' ? spec.concurrency : null,
    nodeSelector: selector && typeof selector === 'object' ? selector : null,
    latestVersion: str(status.latestVersion),
    latestHash: str(status.latestHash),
    applying: Array.isArray(status.applying) ? (status.applying as unknown[]).filter((n): n is string => typeof n === 'string') : [],
    conditions,
  };
}

function podView(pod: V1Pod): PalettePod {
  const status = pod.status?.containerStatuses?.[0];
  const reason = status?.state?.waiting?.reason ?? status?.state?.terminated?.reason ?? null;
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    node: pod.spec?.nodeName ?? null,
    phase: pod.status?.phase ?? 'Unknown',
    ready: pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true,
    restarts: (pod.status?.containerStatuses ?? []).reduce((sum, c) => sum + (c.restartCount ?? 0), 0),
    reason,
    startedAt: time(pod.status?.startTime),
  };
}

function newestPodOf(job: V1Job, pods: V1Pod[]): V1Pod | undefined {
  const uid = job.metadata?.uid;
  return pods
    .filter((p) => p.metadata?.ownerReferences?.some((o) => o.uid === uid))
    .sort((a, b) => (time(a.metadata?.creationTimestamp) ?? 0) - (time(b.metadata?.creationTimestamp) ?? 0) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''))
    .at(-1);
}

function jobView(job: V1Job, pod: V1Pod | undefined): PaletteJob {
  const finished = finishedCondition(job);
  const failedAt = job.status?.conditions?.find((c) => (c.type === 'Failed' || c.type === 'Complete') && c.status === 'True')?.lastTransitionTime;
  const podInfo = pod ? podView(pod) : null;
  const status: PaletteJob['status'] =
    finished === null ? ((job.status?.active ?? 0) > 0 && podInfo?.phase !== 'Pending' ? 'running' : 'pending') : finished.type === 'Complete' ? 'succeeded' : 'failed';
  return {
    name: job.metadata?.name ?? '',
    node: job.spec?.template.spec?.nodeName ?? podInfo?.node ?? null,
    status,
    startedAt: time(job.status?.startTime) ?? time(job.metadata?.creationTimestamp),
    finishedAt: finished === null ? null : (time(job.status?.completionTime) ?? time(failedAt)),
    failure: finished?.type === 'Failed' ? `${finished.reason || 'Failed'}${finished.message ? `: ${finished.message}` : ''}` : null,
    pod: podInfo,
    logTail: [],
  };
}
