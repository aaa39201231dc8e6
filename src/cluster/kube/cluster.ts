/**
 * KubeCluster: the ClusterPort on a real Kubernetes API server (@kubernetes/client-node). Each method re-reads what
 * it changes and writes with a precondition (a JSON Patch `test`, a resourceVersion), so a step repeated after a
 * crash, or racing a human with kubectl, does the right thing; every wait, poll and backoff is on the injected clock.
 */
import {
  AppsV1Api,
  AuthorizationV1Api,
  BatchV1Api,
  CustomObjectsApi,
  CoordinationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Node,
  type V1Pod,
} from '@kubernetes/client-node';
import http from 'node:http';
import https from 'node:https';
import { agentScript as defaultAgentScript } from '../../agent/index.ts';
import { AGENT_CONFIGMAP_NAME, DEFAULT_NAMESPACE, type PatchJobOptions } from './job-manifest.ts';
import type { Clock } from '../../engine/clock.ts';
import { EffectError } from '../../engine/effects.ts';
import { sha256Hex } from '../../engine/hash.ts';
import { ANNOTATIONS } from '../../engine/metadata.ts';
import type { AgentReport } from '../../engine/report.ts';
import { sleep } from '../in-process.ts';
import { scanJobSpec } from '../jobs.ts';
import type {
  AgentConfigMapInfo,
  ClusterNode,
  ClusterPort,
  CordonResult,
  DeploymentInfo,
  DiagnosticJob,
  DiagnosticsPort,
  LeaseInfo,
  DrainOptions,
  DrainResult,
  LeaseRequest,
  Fence,
  StoredAuditAnchor,
  LeaseResult,
  MetadataPatch,
  PodInfo,
  PodQuery,
  ScanSpec,
  PatchJobSpec,
  UncordonResult,
} from '../port.ts';
import { unhealthyOf } from '../port.ts';
import type { NodeHealth } from '../../engine/effects.ts';
import { AgentJobFailedError, AgentJobs } from './agent-jobs.ts';
import { agentConfigMap, deployment, recentJobs, type DiagnosticsContext } from './diagnostics.ts';
import { paletteArtifacts, type PaletteDiagnosticsContext } from './palette-diagnostics.ts';
import type { PaletteArtifacts } from '../palette.ts';
import { drainNode } from './drain.ts';
import type { ApiRequest } from './errors.ts';
import { NodeEvents, type EventReason } from './events.ts';
import { KubeLease } from './lease.ts';
import { AuditAnchors, auditAnchorConfigMapName } from './audit-anchors.ts';
import { cordonPatch, metadataPatch, pointer, toClusterNode, uncordonPatch, type JsonPatchOp } from './node-patches.ts';
import { missingPermissions, REQUIRED_PERMISSIONS, type MissingPermission, type Permission } from './permissions.ts';
import { DEFAULT_RETRY, isNotFound, KubeRequests, type Activity } from './requests.ts';
import { watchNodes, type NodeWatchEvent } from './watch-nodes.ts';

export interface KubeClusterOptions {
  kubeConfig: KubeConfig;
  /** Every wait, poll, backoff and timestamp uses it (tests drive it in virtual time). */
  clock: Clock;
  /** Default: the current context's cluster name. */
  name?: string;
  /** Default `os-patch` (Palette's). */
  namespace?: string;
  /** Default: the agent script shipped with patchpilot; kept in the agent ConfigMap (updated when its digest differs). */
  agentScript?: string;
  jobOptions?: PatchJobOptions;
  /** Poll intervals in (clock) milliseconds; defaults 5000 / 2000 / 2000. */
  pollMs?: { node?: number; job?: number; pod?: number };
  retry?: { attempts?: number; baseMs?: number; maxMs?: number };
  /** Counts HTTP requests in flight: begin() before each request, end() after its body was read and parsed. A virtual-time driver advances the clock only when none is in flight. */
  activity?: Activity;
  /** Default true: a Kubernetes Event on the node for each step. */
  events?: boolean;
  /** Problems that do not fail a step (an Event the API refused); default: a line on stderr. */
  onWarning?: (message: string) => void;
}

const DEFAULT_POLL_MS = { node: 5000, job: 2000, pod: 2000 };

export class KubeCluster implements ClusterPort, DiagnosticsPort {
  readonly name: string;
  readonly namespace: string;
  /** The API server's URL, for messages. */
  readonly server: string;
  readonly #kubeConfig: KubeConfig;
  readonly #clock: Clock;
  readonly #core: CoreV1Api;
  readonly #authorization: AuthorizationV1Api;
  readonly #requests: KubeRequests;
  readonly #pollMs: { node: number; job: number; pod: number };
  readonly #jobs: AgentJobs;
  readonly #lease: KubeLease;
  readonly #anchors: AuditAnchors;
  readonly #events: NodeEvents;
  readonly #diagnostics: DiagnosticsContext;
  readonly #paletteDiagnostics: PaletteDiagnosticsContext;
  readonly #agentConfigMap: { name: string; sha256: string };
  /** Node uids as last read, for the Events' involvedObject. */
  readonly #nodeUids = new Map<string, string>();

  constructor(options: KubeClusterOptions) {
    const kc = options.kubeConfig;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error(`the kubeconfig's current context (${kc.getCurrentContext() || 'none'}) names no cluster`);
    this.name = options.name ?? cluster.name;
    this.namespace = options.namespace ?? options.jobOptions?.namespace ?? DEFAULT_NAMESPACE;
    this.server = cluster.server;
    this.#kubeConfig = kc;
    this.#clock = options.clock;
    this.#pollMs = { ...DEFAULT_POLL_MS, ...options.pollMs };
    this.#requests = new KubeRequests({
      server: cluster.server,
      clock: options.clock,
      retry: { ...DEFAULT_RETRY, ...options.retry },
      activity: options.activity,
    });
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#authorization = kc.makeApiClient(AuthorizationV1Api);
    const shared = { requests: this.#requests, clock: options.clock, namespace: this.namespace };
    const batch = kc.makeApiClient(BatchV1Api);
    const agentScript = options.agentScript ?? defaultAgentScript();
    this.#agentConfigMap = { name: options.jobOptions?.agentConfigMap ?? AGENT_CONFIGMAP_NAME, sha256: sha256Hex(agentScript) };
    this.#diagnostics = { core: this.#core, batch, apps: kc.makeApiClient(AppsV1Api), requests: this.#requests, namespace: this.namespace };
    this.#paletteDiagnostics = { core: this.#core, batch, custom: kc.makeApiClient(CustomObjectsApi), requests: this.#requests };
    this.#jobs = new AgentJobs({
      ...shared,
      core: this.#core,
      batch,
      pollMs: this.#pollMs.job,
      agentScript,
      jobOptions: { ...options.jobOptions, namespace: this.namespace },
    });
    this.#lease = new KubeLease({ ...shared, coordination: kc.makeApiClient(CoordinationV1Api) });
    this.#anchors = new AuditAnchors({ core: this.#core, requests: this.#requests, namespace: this.namespace });
    this.#events = new NodeEvents({
      requests: this.#requests,
      clock: options.clock,
      core: this.#core,
      enabled: options.events ?? true,
      uidOf: (node) => this.#nodeUids.get(node),
      onWarning: options.onWarning ?? ((message) => process.stderr.write(`warning: ${message}\n`)),
    });
  }

  /** Kubernetes cannot select nodes by condition: one list, filtered here. */
  async unhealthyNodes(signal?: AbortSignal): Promise<NodeHealth[]> {
    return unhealthyOf(await this.listNodes(signal));
  }

  async listPods(query: PodQuery, signal?: AbortSignal): Promise<PodInfo[]> {
    const list = await this.#requests.send(
      { verb: 'list', resource: 'pods', group: '' },
      (o) =>
        this.#core.listPodForAllNamespaces(
          { ...(query.selector ? { labelSelector: query.selector } : {}), ...(query.node ? { fieldSelector: `spec.nodeName=${query.node}` } : {}) },
          o,
        ),
      { signal },
    );
    return list.items.map(toPodInfo);
  }

  /**
   * GET /readyz, which every authenticated (and, by default, anonymous) client may read (system:public-info-viewer).
   * Not a typed API in client-node: sent with the kubeconfig's TLS and credentials applied to a plain request.
   */
  async controlPlaneReady(signal?: AbortSignal): Promise<{ ready: boolean; detail: string }> {
    return this.#requests.send(
      { verb: 'get', resource: 'readyz', group: '' },
      async () => {
        const { status, body } = await rawGet(this.#kubeConfig, new URL('/readyz', this.server), signal);
        if (status === 200) return { ready: true, detail: 'ok' };
        const failing = body.split('\n').filter((line) => line.startsWith('[-]')).slice(0, 3).join('; ');
        return { ready: false, detail: `HTTP ${status}${failing ? `: ${failing}` : body.trim() ? `: ${body.trim().slice(0, 200)}` : ''}` };
      },
      { signal, attempts: 1 },
    );
  }

  async listNodes(signal?: AbortSignal): Promise<ClusterNode[]> {
    const list = await this.#requests.send({ verb: 'list', resource: 'nodes', group: '' }, (o) => this.#core.listNode({}, o), { signal });
    return list.items.map((node) => this.#seen(node));
  }

  async getNode(name: string, signal?: AbortSignal): Promise<ClusterNode | null> {
    const node = await this.#readNode(name, signal);
    return node ? toClusterNode(node) : null;
  }

  /** Follows the nodes until `signal` aborts (for live views): a full list first and after a 410 Gone, then changes. */
  watchNodes(onChange: (event: NodeWatchEvent) => void, signal: AbortSignal): Promise<void> {
    return watchNodes(
      {
        kubeConfig: this.#kubeConfig,
        core: this.#core,
        requests: this.#requests,
        clock: this.#clock,
        retryMs: this.#pollMs.node,
        onNode: (node) => this.#seen(node),
      },
      onChange,
      signal,
    );
  }

  cordon(name: string, owner: string, signal?: AbortSignal, fence?: Fence): Promise<CordonResult> {
    return this.#step(name, 'PatchpilotCordon', signal, async () => {
      const result = await this.#requests.untilNoConflict(
        nodePatchRequest(name),
        async (): Promise<CordonResult> => {
          const node = await this.#requireNode(name, signal);
          if (node.spec?.unschedulable === true) return node.metadata?.annotations?.[ANNOTATIONS.cordonedBy] === owner ? 'already-ours' : 'foreign';
          await this.#patchNode(name, cordonPatch(node, owner, fence?.generation), signal);
          return 'cordoned';
        },
        signal,
      );
      const messages: Record<CordonResult, string> = {
        cordoned: `cordoned by run ${owner}`,
        'already-ours': `already cordoned by run ${owner}`,
        foreign: 'already cordoned by someone else: their cordon is left as it is',
      };
      return { result, message: messages[result], warning: result === 'foreign' };
    });
  }

  uncordon(name: string, owner: string, signal?: AbortSignal): Promise<UncordonResult> {
    return this.#step(name, 'PatchpilotUncordon', signal, async () => {
      const result = await this.#requests.untilNoConflict(
        nodePatchRequest(name),
        async (): Promise<UncordonResult> => {
          const node = await this.#requireNode(name, signal);
          const ours = node.metadata?.annotations?.[ANNOTATIONS.cordonedBy] === owner;
          if (node.spec?.unschedulable !== true) {
            // Someone uncordoned it by hand: drop our stale claim so nobody later mistakes a new cordon for ours.
            if (ours) await this.#patchNode(name, staleClaimPatch(node, owner), signal);
            return 'not-cordoned';
          }
          if (!ours) return 'not-ours';
          await this.#patchNode(name, uncordonPatch(node, owner), signal);
          return 'uncordoned';
        },
        signal,
      );
      const messages: Record<UncordonResult, string> = {
        uncordoned: `uncordoned (run ${owner} had cordoned it)`,
        'not-cordoned': 'not cordoned any more: nothing to lift',
        'not-ours': 'cordoned by someone else: their cordon is left as it is',
      };
      return { result, message: messages[result], warning: false };
    });
  }

  drain(name: string, options: DrainOptions): Promise<DrainResult> {
    return this.#step(name, 'PatchpilotDrain', options.signal, async () => {
      const result = await drainNode({ core: this.#core, requests: this.#requests, clock: this.#clock, pollMs: this.#pollMs.pod }, name, options);
      const blocked = result.blocked.map((b) => `${b.namespace}/${b.pod}: ${b.reason}`).join('; ');
      return {
        result,
        message: result.blocked.length === 0 ? `drained: ${result.evicted} pod(s) evicted` : `drain blocked after ${result.evicted} eviction(s): ${blocked}`,
        warning: result.blocked.length > 0,
      };
    });
  }

  startPatchJob(spec: PatchJobSpec, signal?: AbortSignal): Promise<{ jobName: string; created: boolean }> {
    const reason: EventReason = spec.reportOnly ? 'PatchpilotScan' : spec.downloadOnly ? 'PatchpilotPrefetch' : 'PatchpilotPatch';
    return this.#step(spec.node, reason, signal, async () => {
      const result = await this.#jobs.startPatchJob(spec, signal);
      const what = spec.reportOnly ? 'scan job' : spec.downloadOnly ? 'download-only job' : 'patch job';
      return { result, message: result.created ? `${what} ${result.jobName} started` : `${what} ${result.jobName} of this run already exists`, warning: false };
    });
  }

  async awaitAgentReport(jobName: string, signal: AbortSignal): Promise<AgentReport> {
    const reason = (downloadOnly: boolean, reportOnly = false): EventReason =>
      reportOnly ? 'PatchpilotScan' : downloadOnly ? 'PatchpilotPrefetch' : 'PatchpilotPatch';
    const { node, downloadOnly, reportOnly, report } = await this.#jobs.awaitAgentReport(jobName, signal).catch(async (err: unknown) => {
      if (err instanceof AgentJobFailedError && err.node && !signal.aborted) await this.#events.record(err.node, reason(err.downloadOnly), err.message, 'Warning');
      throw err;
    });
    if (node) await this.#events.record(node, reason(downloadOnly, reportOnly), describeReport(jobName, report), report.result === 'failed' ? 'Warning' : 'Normal');
    return report;
  }

  /** The agent's dry run as a Job on the node (the scan Job), through the same create/reuse rule as a patch. */
  async scanNode(spec: ScanSpec, signal: AbortSignal): Promise<AgentReport> {
    const job = scanJobSpec(spec);
    await this.startPatchJob(job, signal);
    return this.awaitAgentReport(job.jobName, signal);
  }

  reboot(name: string, key: string, signal?: AbortSignal): Promise<void> {
    return this.#step(name, 'PatchpilotReboot', signal, async () => {
      await this.#requireNode(name, signal);
      const created = await this.#jobs.createRebootJob(name, key, signal);
      return { result: undefined, message: created ? `reboot requested (key ${key})` : `reboot already requested (key ${key})`, warning: false };
    });
  }

  async awaitReady(name: string, notBootId: string, signal: AbortSignal): Promise<ClusterNode> {
    for (;;) {
      const node = await this.#requireNode(name, signal);
      const view = toClusterNode(node);
      if (view.ready && view.bootId !== notBootId) {
        await this.#events.record(name, 'PatchpilotReboot', `Ready again with boot id ${view.bootId || '(none)'}`);
        return view;
      }
      await sleep(this.#clock, this.#pollMs.node, signal);
    }
  }

  patchNodeMetadata(name: string, patch: MetadataPatch, signal?: AbortSignal): Promise<void> {
    return this.#step(name, 'PatchpilotMark', signal, async () => {
      const applied = await this.#requests.untilNoConflict(
        nodePatchRequest(name),
        async () => {
          const ops = metadataPatch(await this.#requireNode(name, signal), patch);
          if (ops.length > 0) await this.#patchNode(name, ops, signal);
          return ops;
        },
        signal,
      );
      const status = patch.annotations?.[ANNOTATIONS.status];
      return { result: undefined, message: describeMetadataChange(applied), warning: status === 'failed' };
    });
  }

  acquireLease(request: LeaseRequest): Promise<LeaseResult> {
    return this.#lease.acquire(request);
  }

  renewLease(request: LeaseRequest): Promise<LeaseResult> {
    return this.#lease.renew(request);
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.#lease.release(name, holder);
  }

  guardWrites(check: (() => string | null) | null): void {
    this.#requests.guardWrites(check);
  }

  get auditAnchorLocation(): string {
    return `ConfigMap ${this.namespace}/${auditAnchorConfigMapName(this.name)}`;
  }

  writeAuditAnchor(storeId: string, anchor: StoredAuditAnchor, signal?: AbortSignal): Promise<void> {
    return this.#anchors.write(this.name, storeId, anchor, signal);
  }

  readAuditAnchor(storeId: string, signal?: AbortSignal): Promise<StoredAuditAnchor | 'unreadable' | null> {
    return this.#anchors.read(this.name, storeId, signal);
  }

  // --- DiagnosticsPort (doctor and unstick) ---

  recentJobs(signal?: AbortSignal): Promise<DiagnosticJob[]> {
    return recentJobs(this.#diagnostics, signal);
  }

  readLease(name: string, signal?: AbortSignal): Promise<LeaseInfo | null> {
    return this.#lease.info(name, signal);
  }

  agentConfigMap(signal?: AbortSignal): Promise<AgentConfigMapInfo> {
    return agentConfigMap(this.#diagnostics, this.#agentConfigMap.name, this.#agentConfigMap.sha256, signal);
  }

  deployment(signal?: AbortSignal): Promise<DeploymentInfo | null> {
    return deployment(this.#diagnostics, signal);
  }

  paletteArtifacts(signal?: AbortSignal): Promise<PaletteArtifacts> {
    return paletteArtifacts(this.#paletteDiagnostics, signal);
  }

  /** Which of the adapter's permissions (all of them, or those of a dry run) the credentials lack. */
  missingPermissions(wanted: readonly Permission[] = REQUIRED_PERMISSIONS, signal?: AbortSignal): Promise<MissingPermission[]> {
    return missingPermissions(this.#authorization, this.#requests, this.namespace, wanted, signal);
  }

  /** Ships the agent script now (a run does it before its first Job). */
  ensureAgentConfigMap(signal?: AbortSignal): Promise<void> {
    return this.#jobs.ensureAgentConfigMap(signal);
  }

  /** Runs a step and writes its Event: Warning on failure (unless it was cancelled), never failing because of it. */
  async #step<T>(node: string, reason: EventReason, signal: AbortSignal | undefined, run: () => Promise<{ result: T; message: string; warning: boolean }>): Promise<T> {
    let outcome: { result: T; message: string; warning: boolean };
    try {
      outcome = await run();
    } catch (err) {
      if (!signal?.aborted) await this.#events.record(node, reason, `failed: ${err instanceof Error ? err.message : String(err)}`, 'Warning');
      throw err;
    }
    await this.#events.record(node, reason, outcome.message, outcome.warning ? 'Warning' : 'Normal');
    return outcome.result;
  }

  #seen(node: V1Node): ClusterNode {
    const view = toClusterNode(node);
    if (node.metadata?.uid) this.#nodeUids.set(view.name, node.metadata.uid);
    return view;
  }

  async #readNode(name: string, signal?: AbortSignal): Promise<V1Node | null> {
    try {
      const node = await this.#requests.send({ verb: 'get', resource: 'nodes', group: '', name }, (o) => this.#core.readNode({ name }, o), { signal });
      this.#seen(node);
      return node;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async #requireNode(name: string, signal?: AbortSignal): Promise<V1Node> {
    const node = await this.#readNode(name, signal);
    if (!node) throw nodeGone(name, this.name);
    return node;
  }

  async #patchNode(name: string, ops: JsonPatchOp[], signal?: AbortSignal): Promise<void> {
    try {
      // JSON Patch is the client's default Content-Type for patches, and the one whose `test` ops we rely on.
      await this.#requests.send(nodePatchRequest(name), (o) => this.#core.patchNode({ name, body: ops }, o), { signal });
    } catch (err) {
      if (isNotFound(err)) throw nodeGone(name, this.name);
      throw err;
    }
  }
}

function nodePatchRequest(name: string): ApiRequest {
  return { verb: 'patch', resource: 'nodes', group: '', name };
}

function nodeGone(name: string, cluster: string): EffectError {
  return new EffectError('NODE_GONE', `node ${name} no longer exists in cluster ${cluster}`);
}

function staleClaimPatch(node: V1Node, owner: string): JsonPatchOp[] {
  const annotation = pointer('metadata', 'annotations', ANNOTATIONS.cordonedBy);
  return [
    { op: 'test', path: '/metadata/resourceVersion', value: node.metadata?.resourceVersion ?? '' },
    { op: 'test', path: annotation, value: owner },
    { op: 'remove', path: annotation },
  ];
}

function describeReport(jobName: string, report: AgentReport): string {
  if (report.result === 'failed') return `job ${jobName}: agent failed: ${report.error?.code ?? 'unknown'}: ${report.error?.message ?? ''}`;
  if (report.result === 'no-updates') return `job ${jobName}: no updates to install`;
  const reboot = report.rebootRequired ? `; reboot required by ${report.rebootPackages.join(', ') || 'the update'}` : '';
  return `job ${jobName}: ${report.upgraded.length} package(s) upgraded${report.held.length > 0 ? `, held ${report.held.join(', ')}` : ''}${reboot}`;
}

function describeMetadataChange(ops: JsonPatchOp[]): string {
  const changes = ops.filter((op) => op.op !== 'test');
  if (changes.length === 0) return 'labels and annotations already as wanted';
  const decode = (path: string) => path.split('/').slice(3).join('/').replaceAll('~1', '/').replaceAll('~0', '~');
  return changes
    .map((op) => {
      if (op.op === 'remove') return `-${decode(op.path)}`;
      if (op.path.split('/').length === 3) return Object.entries(op.value as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(', ');
      return `${decode(op.path)}=${String(op.value)}`;
    })
    .join(', ');
}

function toPodInfo(pod: V1Pod): PodInfo {
  const owners = pod.metadata?.ownerReferences ?? [];
  const mirror = pod.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined;
  return {
    namespace: pod.metadata?.namespace ?? '',
    name: pod.metadata?.name ?? '',
    node: pod.spec?.nodeName ?? null,
    phase: pod.status?.phase ?? 'Unknown',
    ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    daemon: mirror || owners.some((o) => o.kind === 'DaemonSet'),
  };
}

/** One GET with the kubeconfig's TLS settings and credentials: status and body. */
async function rawGet(kc: KubeConfig, url: URL, signal?: AbortSignal): Promise<{ status: number; body: string }> {
  const options: https.RequestOptions = { method: 'GET', headers: { accept: 'text/plain' } };
  await kc.applyToHTTPSOptions(options);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(url, { ...options, ...(signal ? { signal } : {}) }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end();
  });
}
