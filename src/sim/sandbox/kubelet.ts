/**
 * The simulated nodes' kubelets and the Job controller, as far as patchpilot's Jobs need them: a Job gets its pod, the
 * pod runs the simulated agent on its node (src/sim/agent-model.ts, through SimCluster, so faults strike exactly as in
 * `patchpilot sim`), writes what the real agent would log with the JSON report as its last line, and ends with the
 * agent's exit code; a reboot Job reboots the node. The Job's status follows its pod, and activeDeadlineSeconds is
 * enforced as the Job controller does.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../engine/clock.ts';
import { EffectError } from '../../engine/effects.ts';
import { ANNOTATIONS as JOB_ANNOTATIONS, LABELS as JOB_LABELS } from '../../cluster/kube/job-manifest.ts';
import type { PatchJobSpec } from '../../cluster/port.ts';
import type { AgentReport } from '../../engine/report.ts';
import type { SimCluster } from '../cluster.ts';
import type { LogLine } from '../kube-api/hooks.ts';
import { rfc3339, type KubeObject } from '../kube-api/objects.ts';
import type { KubeStore } from '../kube-api/store.ts';
import { playedByPalette } from './palette.ts';

/** Jobs nobody here knows how to run (someone's own `kubectl create job`) finish after this long. */
const OTHER_JOB_MS = 5_000;

type Json = Record<string, unknown>;

interface RunningJob {
  abort: AbortController;
  deadline: number | undefined;
}

export interface KubeletOptions {
  store: KubeStore;
  sim: SimCluster;
  clock: Clock;
  /** Which agent the simulated nodes run (the scenario's `plan.agent`): the real one is always modern. */
  agent: 'modern' | 'legacy';
}

export class Kubelets {
  readonly #store: KubeStore;
  readonly #sim: SimCluster;
  readonly #clock: Clock;
  readonly #agent: 'modern' | 'legacy';
  /** Container logs by pod uid. */
  readonly #logs = new Map<string, LogLine[]>();
  /** Wakes followers of a log when a line is added or the pod ends. */
  readonly #logWaiters = new Map<string, Array<() => void>>();
  readonly #running = new Map<string, RunningJob>();

  constructor(options: KubeletOptions) {
    this.#store = options.store;
    this.#sim = options.sim;
    this.#clock = options.clock;
    this.#agent = options.agent;
    this.#store.hooks.onChange('jobs', (event) => {
      if (event.type === 'ADDED') this.#startJob(event.object);
      if (event.type === 'DELETED') this.#stopJob(event.object);
    });
    this.#store.hooks.onPodLog((request) => this.#podLog(request.pod, request.follow, request.signal));
  }

  /** Stops every simulated container (the sandbox is closing). */
  stopAll(): void {
    for (const job of this.#running.values()) {
      job.abort.abort(new Error('sandbox stopped'));
      if (job.deadline !== undefined) this.#clock.clearTimeout(job.deadline);
    }
    this.#running.clear();
  }

  #startJob(job: KubeObject): void {
    // Palette's crony Jobs are a still picture that palette.ts draws, status and pod included.
    if (playedByPalette(job)) return;
    const uid = job.metadata.uid!;
    const spec = (job.spec ?? {}) as Json;
    const template = (spec.template ?? {}) as { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: Json };
    const podSpec = (template.spec ?? {}) as Json;
    const node = typeof podSpec.nodeName === 'string' ? podSpec.nodeName : undefined;
    const abort = new AbortController();
    const running: RunningJob = { abort, deadline: undefined };
    this.#running.set(uid, running);
    const pod = this.#createPod(job, template, podSpec);
    const startedAt = this.#clock.now();
    this.#setJobStatus(job, { startTime: rfc3339(startedAt), active: 1, ready: 0, terminating: 0 });
    // A pod bound to a node that does not exist stays Pending, as with a real kubelet that is not there.
    if (node === undefined || this.#sim.state.nodeView(node) === null) return;
    this.#setPodRunning(pod);
    const deadlineSeconds = typeof spec.activeDeadlineSeconds === 'number' ? spec.activeDeadlineSeconds : undefined;
    if (deadlineSeconds !== undefined) {
      running.deadline = this.#clock.setTimeout(() => this.#deadlineExceeded(job, pod, deadlineSeconds), deadlineSeconds * 1000);
    }
    const action = job.metadata.labels?.[JOB_LABELS.action];
    const work =
      action === 'patch' || action === 'prefetch' || action === 'scan'
        ? this.#runAgent(job, pod, node, action, abort.signal)
        : action === 'reboot'
          ? this.#reboot(job, pod, node, abort.signal)
          : this.#runOther(job, pod, abort.signal);
    work.catch((error: unknown) => {
      if (abort.signal.aborted) return;
      this.#log(pod, `sandbox: ${error instanceof Error ? error.message : String(error)}`);
      this.#finish(job, pod, { exitCode: 1, reason: 'Error' });
    });
  }

  #stopJob(job: KubeObject): void {
    const running = this.#running.get(job.metadata.uid!);
    if (!running) return;
    running.abort.abort(new Error(`job ${job.metadata.name} was deleted`));
    if (running.deadline !== undefined) this.#clock.clearTimeout(running.deadline);
    this.#running.delete(job.metadata.uid!);
  }

  async #runAgent(job: KubeObject, pod: KubeObject, node: string, action: 'patch' | 'prefetch' | 'scan', signal: AbortSignal): Promise<void> {
    const downloadOnly = action === 'prefetch';
    const spec = this.#patchSpec(job, node, downloadOnly);
    // The agent's own option decides, as on a real node; the label only routes the Job here.
    spec.reportOnly = action === 'scan' && this.#args(job).includes('--dry-run');
    await this.#sim.startPatchJob(spec);
    const view = this.#sim.state.nodeFacts(node);
    this.#log(pod, `patchpilot-agent: ${view?.os ?? 'unknown OS'}, ${spec.securityOnly ? 'security updates only' : 'all updates'}${downloadOnly ? ', download only' : ''}${spec.reportOnly ? ', DRY RUN' : ''}`);
    if (spec.holdPackages.length > 0) this.#log(pod, `patchpilot-agent: holding the installed ones of: ${spec.holdPackages.join(' ')}`);
    let report: AgentReport;
    try {
      report = await this.#sim.awaitAgentReport(spec.jobName, signal);
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof EffectError && error.code === 'JOB_FAILED') {
        // The container was killed mid-run: its log stops where it was, with no report.
        this.#log(pod, 'patchpilot-agent: unpacking packages ...');
        this.#finish(job, pod, { exitCode: 137, reason: 'OOMKilled' });
        return;
      }
      throw error;
    }
    for (const change of report.upgraded) this.#log(pod, `patchpilot-agent: upgraded ${change.name} ${change.from} -> ${change.to}`);
    if (report.held.length > 0) this.#log(pod, `patchpilot-agent: held: ${report.held.join(' ')}`);
    if (report.error) this.#log(pod, `patchpilot-agent: error ${report.error.code}: ${report.error.message}`);
    if (report.rebootRequired) this.#log(pod, `patchpilot-agent: a reboot is required (${report.rebootPackages.join(' ') || 'reboot-required'})`);
    this.#log(pod, JSON.stringify(report));
    const exitCode = report.result === 'failed' ? (report.error?.code === 'USAGE' ? 2 : 1) : 0;
    this.#finish(job, pod, { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error' });
  }

  async #reboot(job: KubeObject, pod: KubeObject, node: string, signal: AbortSignal): Promise<void> {
    const key = job.metadata.annotations?.[JOB_ANNOTATIONS.rebootKey] ?? job.metadata.name!;
    this.#log(pod, `Rebooting ${node} (key ${key}).`);
    await this.#sim.reboot(node, key, signal);
    // `systemctl reboot` returns at once with 0; the node goes down under the container.
    this.#finish(job, pod, { exitCode: 0, reason: 'Completed' });
  }

  async #runOther(job: KubeObject, pod: KubeObject, signal: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const id = this.#clock.setTimeout(resolve, OTHER_JOB_MS);
      signal.addEventListener('abort', () => {
        this.#clock.clearTimeout(id);
        reject(signal.reason);
      }, { once: true });
    });
    this.#finish(job, pod, { exitCode: 0, reason: 'Completed' });
  }

  /** What the Job asks of the agent, read back from its labels, annotations and the agent's command line. */
  #args(job: KubeObject): string[] {
    const container = ((((job.spec as Json).template as Json).spec as Json).containers as Json[] | undefined)?.[0] ?? {};
    return Array.isArray(container.args) ? (container.args as string[]) : [];
  }

  #patchSpec(job: KubeObject, node: string, downloadOnly: boolean): PatchJobSpec {
    const labels = job.metadata.labels ?? {};
    const annotations = job.metadata.annotations ?? {};
    const args = this.#args(job);
    const option = (name: string) => {
      const i = args.indexOf(name);
      return i >= 0 ? args[i + 1] : undefined;
    };
    const hold = option('--hold');
    return {
      runId: annotations[JOB_ANNOTATIONS.run] ?? labels[JOB_LABELS.run] ?? job.metadata.name!,
      node,
      hash: labels[JOB_LABELS.hash] ?? '',
      mode: Object.keys(labels).some((key) => key.startsWith('task.cluster.spectrocloud.com/')) ? 'palette' : 'native',
      agent: this.#agent,
      securityOnly: !args.includes('--all'),
      holdPackages: hold === undefined ? [] : hold.split(/\s+/).filter(Boolean),
      lockTimeoutSeconds: Number(option('--lock-timeout') ?? 600),
      rebootIfRequired: false,
      jobName: job.metadata.name!,
      downloadOnly,
    };
  }

  #createPod(job: KubeObject, template: { metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> } }, podSpec: Json): KubeObject {
    const jobName = job.metadata.name!;
    const suffix = createHash('sha256').update(job.metadata.uid!).digest('hex').replace(/[^a-z]/g, '').slice(0, 5).padEnd(5, 'x');
    return this.#store.create(
      'pods',
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `${jobName}-${suffix}`,
          namespace: job.metadata.namespace!,
          labels: { ...(template.metadata?.labels ?? {}) },
          annotations: { ...(template.metadata?.annotations ?? {}) },
          ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: job.metadata.uid!, controller: true, blockOwnerDeletion: true }],
          finalizers: ['batch.kubernetes.io/job-tracking'],
        },
        spec: structuredClone(podSpec),
        status: { phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'True', lastTransitionTime: rfc3339(this.#clock.now()) }] },
      },
      { internal: true },
    );
  }

  #setPodRunning(pod: KubeObject): void {
    const now = rfc3339(this.#clock.now());
    this.#modifyPod(pod, (draft) => {
      const containers = (((draft.spec as Json).containers as Json[] | undefined) ?? []).map((c) => String(c.name));
      draft.status = {
        phase: 'Running',
        startTime: now,
        hostIP: '10.0.0.2',
        conditions: ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
        containerStatuses: containers.map((name) => ({ name, ready: true, started: true, restartCount: 0, image: 'docker.io/library/debian:bookworm-slim', imageID: '', state: { running: { startedAt: now } } })),
      };
    });
  }

  #finish(job: KubeObject, pod: KubeObject, end: { exitCode: number; reason: string }): void {
    const running = this.#running.get(job.metadata.uid!);
    if (!running) return;
    if (running.deadline !== undefined) this.#clock.clearTimeout(running.deadline);
    this.#running.delete(job.metadata.uid!);
    const now = rfc3339(this.#clock.now());
    const succeeded = end.exitCode === 0;
    this.#modifyPod(pod, (draft) => {
      const status = (draft.status ?? {}) as Json;
      const startedAt = typeof status.startTime === 'string' ? status.startTime : now;
      status.phase = succeeded ? 'Succeeded' : 'Failed';
      status.conditions = ['PodScheduled', 'Initialized', 'ContainersReady', 'Ready'].map((type) => ({
        type,
        status: type === 'PodScheduled' || type === 'Initialized' ? 'True' : 'False',
        lastTransitionTime: now,
        ...(type === 'Ready' || type === 'ContainersReady' ? { reason: 'PodCompleted' } : {}),
      }));
      status.containerStatuses = ((status.containerStatuses as Json[] | undefined) ?? []).map((c) => ({
        ...c,
        ready: false,
        started: false,
        state: { terminated: { exitCode: end.exitCode, reason: end.reason, startedAt, finishedAt: now } },
      }));
      draft.status = status;
      draft.metadata.finalizers = [];
    });
    this.#wake(pod.metadata.uid!);
    this.#completeJob(job, succeeded ? { type: 'Complete', reason: 'Completed', message: 'Reached expected number of succeeded pods' } : { type: 'Failed', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' });
  }

  #deadlineExceeded(job: KubeObject, pod: KubeObject, seconds: number): void {
    const running = this.#running.get(job.metadata.uid!);
    if (!running) return;
    running.deadline = undefined;
    running.abort.abort(new Error('deadline exceeded'));
    this.#running.delete(job.metadata.uid!);
    const now = rfc3339(this.#clock.now());
    this.#modifyPod(pod, (draft) => {
      const status = (draft.status ?? {}) as Json;
      status.phase = 'Failed';
      status.reason = 'DeadlineExceeded';
      status.message = `Pod was active on the node longer than the specified deadline (${seconds} s)`;
      status.containerStatuses = ((status.containerStatuses as Json[] | undefined) ?? []).map((c) => ({
        ...c,
        ready: false,
        state: { terminated: { exitCode: 137, reason: 'Error', finishedAt: now } },
      }));
      draft.status = status;
      draft.metadata.finalizers = [];
    });
    this.#wake(pod.metadata.uid!);
    this.#completeJob(job, { type: 'Failed', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' });
  }

  #completeJob(job: KubeObject, condition: { type: 'Complete' | 'Failed'; reason: string; message: string }): void {
    const now = rfc3339(this.#clock.now());
    const conditions = [
      { type: condition.type === 'Complete' ? 'SuccessCriteriaMet' : 'FailureTarget', status: 'True', reason: condition.reason, message: condition.message, lastProbeTime: now, lastTransitionTime: now },
      { type: condition.type, status: 'True', reason: condition.reason, message: condition.message, lastProbeTime: now, lastTransitionTime: now },
    ];
    this.#setJobStatus(job, {
      active: 0,
      ready: 0,
      terminating: 0,
      conditions,
      ...(condition.type === 'Complete' ? { succeeded: 1, completionTime: now } : { failed: 1 }),
      uncountedTerminatedPods: {},
    });
  }

  #setJobStatus(job: KubeObject, fields: Json): void {
    const ref = { namespace: job.metadata.namespace!, name: job.metadata.name! };
    if (this.#store.find('jobs', ref)?.metadata.uid !== job.metadata.uid) return;
    this.#store.modify('jobs', ref, (draft) => {
      draft.status = { ...((draft.status ?? {}) as Json), ...fields };
    }, { internal: true });
  }

  #modifyPod(pod: KubeObject, change: (draft: KubeObject) => void): void {
    const ref = { namespace: pod.metadata.namespace!, name: pod.metadata.name! };
    if (this.#store.find('pods', ref)?.metadata.uid !== pod.metadata.uid) return;
    this.#store.modify('pods', ref, change, { internal: true });
  }

  #log(pod: KubeObject, text: string): void {
    const uid = pod.metadata.uid!;
    const lines = this.#logs.get(uid) ?? [];
    lines.push({ time: this.#clock.now(), text });
    this.#logs.set(uid, lines);
    this.#wake(uid);
  }

  #wake(uid: string): void {
    const waiters = this.#logWaiters.get(uid);
    this.#logWaiters.delete(uid);
    for (const wake of waiters ?? []) wake();
  }

  #podLog(pod: KubeObject, follow: boolean, signal: AbortSignal): Iterable<LogLine> | AsyncIterable<LogLine> {
    const uid = pod.metadata.uid!;
    const lines = this.#logs.get(uid) ?? [];
    if (!follow || this.#terminated(pod)) return [...lines];
    const logs = this.#logs;
    const waiters = this.#logWaiters;
    const store = this.#store;
    const ref = { namespace: pod.metadata.namespace!, name: pod.metadata.name! };
    const terminated = () => {
      const current = store.find('pods', ref);
      return !current || current.metadata.uid !== uid || this.#terminated(current);
    };
    return (async function* follow(): AsyncGenerator<LogLine> {
      let sent = 0;
      for (;;) {
        const all = logs.get(uid) ?? [];
        while (sent < all.length) yield all[sent++]!;
        if (terminated() || signal.aborted) return;
        await new Promise<void>((resolve) => {
          const list = waiters.get(uid) ?? [];
          list.push(resolve);
          waiters.set(uid, list);
          signal.addEventListener('abort', () => resolve(), { once: true });
        });
      }
    })();
  }

  #terminated(pod: KubeObject): boolean {
    const phase = (pod.status as Json | undefined)?.phase;
    return phase === 'Succeeded' || phase === 'Failed';
  }
}
