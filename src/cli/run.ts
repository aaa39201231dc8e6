/**
 * `patchpilot run`: the engine against a real cluster. Everything that can refuse the run is checked before anything
 * changes: the kubeconfig (client-node would otherwise fall back to localhost:8080 without a word), the API server
 * being reachable, the credentials holding every permission the adapter uses, and the namespace (the Lease is the
 * first thing written). `--dry-run` stops after the selection and says, for every node, why it would or would not be
 * patched.
 */
import { hostname, userInfo } from 'node:os';
import type { Writable } from 'node:stream';
import {
  KubeApiError,
  KubeCluster,
  KubeForbiddenError,
  KubeNamespaceMissingError,
  KubeNotAnApiServerError,
  KubeUnreachableError,
  describePermission,
  type MissingPermission,
} from '../cluster/kube/index.ts';
import { loadKubeConfig } from '../cluster/kube/kubeconfig.ts';
import type { ClusterNode } from '../cluster/port.ts';
import type { NodeOutcome } from '../engine/node.machine.ts';
import { parsePlan, type Plan } from '../engine/plan.ts';
import { versionHash } from '../engine/hash.ts';
import { describeStart } from '../engine/run-start.ts';
import { JoinWatcher } from '../service/join-watcher.ts';
import { describeRefusal, Orchestrator, OrchestratorError, type RunEvent, type RunPreview } from '../service/orchestrator.ts';
import { SystemClock } from '../service/system-clock.ts';
import { PatchpilotMetrics, serveMetrics } from '../service/metrics.ts';
import { readClusterStatus, triggerOfRun } from '../service/fleet-status.ts';
import { Notifier, sinksFromEnv } from '../service/notify.ts';
import { table } from './format.ts';
import { LiveView, outcomeLine, summaryTable } from './live.ts';
import { DEFAULT_DB, openCliStore } from './paths.ts';
import { loadPlanFile } from './plan-check.ts';
import { RunError } from './user-error.ts';

export interface RunOptions {
  kubeconfig?: string;
  context?: string;
  plan?: string;
  dryRun?: boolean;
  db?: string;
  trigger?: string;
  /** Serve Prometheus metrics on this port (0: a free one) while the run lasts. */
  metricsPort?: number;
  /** Wait for another orchestrator's lease instead of exiting 3. */
  wait?: boolean;
  leaseSeconds?: number;
}

export interface RunIo {
  out: Writable & { isTTY?: boolean };
  env?: NodeJS.ProcessEnv;
}

const RBAC_HINT = 'grant it in deploy/clusterrole.yaml (kubectl apply -k deploy/), or use credentials that have it';

export async function runCommand(options: RunOptions, io: RunIo): Promise<number> {
  // First, and for --dry-run too: a dry run that passes must not hide what refuses the run itself.
  const env = io.env ?? process.env;
  const configured = sinksFromEnv(env);
  if (configured.problems.length > 0) throw new RunError(configured.problems.join('; '), 'see "Notifications" in the README');
  const { kubeConfig, source } = loadKubeConfig({ path: options.kubeconfig, context: options.context, ...(io.env ? { env: io.env } : {}) });
  const contextCluster = kubeConfig.getCurrentCluster()?.name ?? 'default';
  const plan = options.plan ? loadPlanFile(options.plan) : parsePlan({ cluster: contextCluster });
  const clock = new SystemClock();
  const cluster = new KubeCluster({ kubeConfig, clock, name: plan.cluster });
  const write = (text: string) => io.out.write(`${text}\n`);

  const requestedBy = whoAmI();
  // The run's own preview, from an orchestrator without a store (it writes nothing): the trigger, version hash, start
  // and node order that `--dry-run` prints are the ones the run below is started with.
  const preview = await explain(
    () => new Orchestrator({ cluster, clock }).preview({ plan, requestedBy, ...(options.trigger === undefined ? {} : { triggerId: options.trigger }) }),
    cluster,
    source,
  );
  const { triggerId, selection } = preview;
  // A name the plan lists that the cluster lacks is a typo or a stale plan: refused before the dry run's report, the
  // Lease and the run record, where the engine would only fail the whole run once started (a nodeSelector matching
  // nothing is no such mistake: it may be meant for nodes yet to join).
  if (selection.unknown.length > 0) {
    throw new RunError(
      `the plan names node(s) that are not in cluster ${plan.cluster}: ${selection.unknown.join(', ')}`,
      `check the names with kubectl get nodes${options.plan ? `, and fix the nodes list of ${options.plan}` : ''}`,
    );
  }

  if (options.dryRun) {
    const missing = await checkAccess(cluster, source);
    write(dryRunReport({ planSource: options.plan ?? null, server: cluster.server, preview, missing }));
    return 0;
  }

  const missing = await checkAccess(cluster, source);
  const first = missing?.[0];
  if (first) {
    const all = missing.map(describePermission).join(', ');
    throw new RunError(`forbidden: the credentials from ${source} cannot ${describePermission(first)}${missing.length > 1 ? ` (missing: ${all})` : ''}`, RBAC_HINT);
  }

  const store = openCliStore(options.db);
  try {
    // The run record is written after the Lease is taken: a database that cannot be written refuses the run first.
    store.assertWritable();
  } catch (err) {
    store.close();
    throw err;
  }
  const tty = io.out.isTTY === true;
  const view = new LiveView({ out: io.out, tty, title: `patchpilot run · cluster ${plan.cluster}`, now: () => clock.now(), virtualTime: false });
  const outcomes: NodeOutcome[] = [];
  const metrics = options.metricsPort === undefined ? null : new PatchpilotMetrics();
  const notifier = configured.sinks.length === 0 ? null : new Notifier({ sinks: configured.sinks, clock, store, metrics, log: (line) => process.stderr.write(`notify: ${line}\n`) });
  metrics?.watchFleet(async () => [await readClusterStatus(cluster, { labelKey: plan.labelKey, triggerOf: (id) => triggerOfRun(store, id), now: clock.now() })]);
  const metricsServer = metrics && options.metricsPort !== undefined ? await serveMetrics(metrics, options.metricsPort) : null;
  if (metricsServer) write(`${tty ? '' : '# '}metrics: http://0.0.0.0:${metricsServer.port}/metrics`);
  let lastWaitedFor = '';
  const orchestrator = new Orchestrator({
    cluster,
    clock,
    store,
    ...(options.leaseSeconds ? { leaseSeconds: options.leaseSeconds } : {}),
    ...(options.wait
      ? {
          waitForLease: (refusal) => {
            // Said once per holder, not on every poll.
            if (refusal.holder === lastWaitedFor) return;
            lastWaitedFor = refusal.holder;
            write(`waiting for the cluster: ${describeRefusal(refusal)}`);
          },
        }
      : {}),
    onEvent: (event: RunEvent) => {
      if (event.type === 'node.finished') outcomes.push(event.outcome);
      metrics?.observeRun(plan.cluster, event);
      notifier?.observeRun(plan.cluster, event);
      view.handle(event);
      view.draw();
    },
  });
  // A run of this cluster that a crash or a restart of the Deployment's pod interrupted is finished first: its
  // cordons carry its run id, which a new run would take for someone else's.
  const unfinished = store.listRuns({ cluster: plan.cluster, active: true, limit: 1 })[0];
  if (unfinished) write(`resuming unfinished run ${unfinished.id} of cluster ${plan.cluster} (requested by ${unfinished.requestedBy}); its own plan applies`);
  const handle = await explain(
    async () =>
      (unfinished ? await resumeOrWait(orchestrator, unfinished.id, options.wait === true, write) : null) ??
      orchestrator.start(preview),
    cluster,
    source,
  ).catch((err: unknown) => {
    store.close();
    throw err;
  });
  if (unfinished && handle.runId !== unfinished.id) {
    const superseded = (store.getRun(handle.runId)?.trigger as { supersedes?: string } | undefined)?.supersedes === unfinished.id;
    write(
      superseded
        ? `run ${unfinished.id} was superseded: another orchestrator held the cluster since it stopped, so run ${handle.runId} finishes trigger ${triggerOfRun(store, handle.runId) ?? triggerId} from the cluster's own state`
        : `run ${unfinished.id} was finished by another process meanwhile (${store.getRun(unfinished.id)?.outcome ?? 'done'}); run ${handle.runId} checks the cluster and skips what is done`,
    );
  }
  write(`${tty ? '' : '# '}run ${handle.runId}: ${selection.selected.length} node(s) of cluster ${plan.cluster} to patch, ${plan.concurrency} at a time (Ctrl-C cancels)`);
  view.expect(selection.selected.map((t) => t.name));

  /**
   * What a second Ctrl-C and a SIGTERM do: the run is saved as it is, to be finished by the next run against this
   * cluster. A SIGTERM is how a Deployment's pod or a service manager stops us (the orchestrator's own node is drained
   * like the others), and a restart must resume the run, not find it cancelled.
   */
  const stopAtOnce = (how: string, code: number) => {
    handle.detach();
    store.close();
    write(
      `\n${how}: run ${handle.runId} is saved in ${options.db ?? DEFAULT_DB}; nodes it had cordoned carry patchpilot.io/cordoned-by=${handle.runId}; ` +
        'the next `patchpilot run` against this cluster with this database finishes it first',
    );
    process.exit(code);
  };
  let interrupts = 0;
  const interrupt = () => {
    interrupts += 1;
    if (interrupts === 1) {
      const answer = handle.send({ type: 'CANCEL', by: requestedBy, reason: 'interrupted from the terminal' });
      write(`\n${answer.message}: nodes in flight finish their step and get their cordon back; Ctrl-C again to stop at once`);
      return;
    }
    stopAtOnce('stopped', 130);
  };
  const terminate = () => stopAtOnce('stopped by SIGTERM', 143);
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', terminate);
  const redraw = tty ? setInterval(() => view.draw(), 1000) : undefined;
  try {
    const output = await handle.result;
    view.draw();
    if (notifier) {
      write(`${tty ? '' : '# '}delivering notifications to ${notifier.sinks.map((s) => s.name).join(', ')}`);
      await notifier.idle();
    }
    write(`\n${summaryTable(outcomes)}\n\n${outcomeLine(output)}`);
    const db = options.db ? ` --db ${options.db}` : '';
    write(`history: npx patchpilot runs show ${output.runId}${db}   audit trail: npx patchpilot audit show --run ${output.runId}${db}`);
    if (plan.trigger.kind === 'on-boot' && !unfinished) {
      process.removeListener('SIGINT', interrupt);
      process.removeListener('SIGTERM', terminate);
      return await watchJoins({ cluster, orchestrator, plan, triggerId, requestedBy, write });
    }
    return output.outcome === 'succeeded' ? 0 : 1;
  } finally {
    if (redraw) clearInterval(redraw);
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', terminate);
    await metricsServer?.close();
    store.close();
  }
}

/**
 * Resumes an unfinished run of this database. Its owner alive: refused (RUN_OWNED, exit 3), or with --wait, asked again
 * until that process is gone or has finished the run (then there is nothing left to resume, and a fresh start checks
 * the cluster).
 */
async function resumeOrWait(orchestrator: Orchestrator, runId: string, wait: boolean, write: (text: string) => void) {
  let said = false;
  for (;;) {
    try {
      return await orchestrator.resume(runId);
    } catch (err) {
      // Its owner finished it while we waited: nothing to resume; the caller starts afresh (and skips what is done).
      if (said && err instanceof OrchestratorError && err.code === 'RUN_FINISHED') return null;
      if (!wait || !(err instanceof OrchestratorError) || err.code !== 'RUN_OWNED') throw err;
      if (!said) write(`waiting for the run: ${err.message}`);
      said = true;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/**
 * Patch on join: after its first run, an on-boot plan keeps the orchestrator watching the nodes, and each node that
 * joins without the current hash is cordoned and patched by a run of its own (JoinWatcher). Ctrl-C stops watching;
 * runs in progress are saved in the store like any other.
 */
async function watchJoins(context: {
  cluster: KubeCluster;
  orchestrator: Orchestrator;
  plan: Plan;
  triggerId: string;
  requestedBy: string;
  write: (line: string) => void;
}): Promise<number> {
  const { cluster, orchestrator, plan, triggerId, requestedBy, write } = context;
  const watcher = new JoinWatcher({ orchestrator, plan, triggerId, requestedBy });
  const stop = new AbortController();
  const onInterrupt = () => stop.abort();
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onInterrupt);
  write(`watching cluster ${plan.cluster} for nodes that join without hash ${versionHash(plan, triggerId)} (patch on join; Ctrl-C stops)`);
  let failures = 0;
  const joined = (node: ClusterNode) => {
    watcher.nodeJoined(node).then(
      async (handle) => {
        if (!handle) return;
        write(`node ${node.name} joined: run ${handle.runId} cordons and patches it`);
        const out = await handle.result;
        if (out.outcome !== 'succeeded') failures += 1;
        write(`${outcomeLine(out)} (node ${node.name})`);
      },
      (err: unknown) => {
        failures += 1;
        write(`node ${node.name} joined, but its run could not start: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  };
  let listed = false;
  try {
    await cluster.watchNodes((event) => {
      if (event.type === 'added') joined(event.node);
      if (event.type !== 'synced') return;
      // The first list holds the nodes the first run dealt with (a node it failed is not retried behind the operator's
      // back); after a re-list (410 Gone) a node that arrived meanwhile is only in the list.
      if (listed) for (const node of event.nodes) if (watcher.needsPatch(node)) joined(node);
      listed = true;
    }, stop.signal);
  } catch (err) {
    if (!stop.signal.aborted) throw err;
  } finally {
    process.removeListener('SIGINT', onInterrupt);
    process.removeListener('SIGTERM', onInterrupt);
  }
  write('stopped watching for joining nodes');
  return failures === 0 ? 0 : 1;
}

/** The API errors a user can cause or fix, as RunErrors; anything else goes on unchanged. */
export async function explain<T>(call: () => Promise<T>, cluster: KubeCluster, source: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof KubeUnreachableError) {
      throw new RunError(
        `cannot reach the Kubernetes API server at ${err.server} (${err.networkCode})`,
        `check that the cluster is running and that ${source} (context ${cluster.name}) points at it`,
      );
    }
    if (err instanceof KubeForbiddenError) {
      throw new RunError(`forbidden: the credentials from ${source} cannot ${err.verb} ${err.resource}${err.group ? ` (API group ${err.group})` : ''}`, RBAC_HINT);
    }
    if (err instanceof KubeNamespaceMissingError) {
      throw new RunError(`namespace ${err.namespace} does not exist in cluster ${cluster.name}`, 'create it with: kubectl apply -k deploy/ (or kubectl apply -f deploy/namespace.yaml)');
    }
    if (err instanceof KubeApiError && err.status === 401) {
      throw new RunError(`the API server at ${cluster.server} did not accept the credentials from ${source} (401 Unauthorized)`, 'refresh the token or certificate in the kubeconfig');
    }
    if (err instanceof KubeNotAnApiServerError) {
      throw new RunError(err.message, `check the server of ${source} (context ${cluster.name}): it should be the cluster's API server, as kubectl cluster-info shows`);
    }
    // Still failing after the retries: the server's trouble, not the user's, but nothing patchpilot can go on with.
    if (err instanceof KubeApiError && (err.status >= 500 || err.status === 429)) {
      throw new RunError(`the Kubernetes API server at ${cluster.server} keeps failing: ${err.message}`, 'check its health (kubectl get --raw /readyz), then try again');
    }
    throw err;
  }
}

/** Missing permissions, or null when the API server does not serve SelfSubjectAccessReviews. */
function checkAccess(cluster: KubeCluster, source: string): Promise<MissingPermission[] | null> {
  return explain(
    () =>
      cluster.missingPermissions().catch((err: unknown) => {
        // Without the authorization API the run finds out on its first refused request, which names the permission.
        if (err instanceof KubeApiError && err.status === 404) return null;
        throw err;
      }),
    cluster,
    source,
  );
}

function whoAmI(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container running as an arbitrary uid): keep $USER.
  }
  return `${user}@${hostname()}`;
}

interface DryRunFacts {
  planSource: string | null;
  server: string;
  preview: RunPreview;
  missing: MissingPermission[] | null;
}

export function dryRunReport(facts: DryRunFacts): string {
  const { plan, selection, triggerId, hash, notBefore, nodes } = facts.preview;
  const byName = new Map(nodes.map((n) => [n.name, n]));
  const lines = [
    `cluster ${plan.cluster} at ${facts.server}: ${nodes.length} node(s)`,
    `plan: ${facts.planSource ?? 'defaults'}; trigger ${triggerId}; version hash ${hash} (label ${plan.labelKey})`,
    `a run started now begins: ${describeStart(notBefore)}`,
    '',
  ];
  if (selection.selected.length === 0) {
    lines.push('would patch no node');
  } else {
    lines.push(`would patch ${selection.selected.length} node(s), in this order, ${plan.concurrency} at a time:`);
    lines.push(
      table(
        ['#', 'node', 'role', 'zone', 'os image', 'now'],
        selection.selected.map((t, i) => {
          const node = byName.get(t.name);
          const now = !node ? '' : !node.ready ? 'NotReady' : node.unschedulable ? 'cordoned' : 'Ready';
          return [String(i + 1), t.name, t.role, t.zone || '-', node?.osImage ?? '', now];
        }),
      ),
    );
  }
  if (selection.excluded.length > 0) {
    lines.push('', `excluded ${selection.excluded.length} node(s):`);
    lines.push(table(['node', 'reason', 'detail'], selection.excluded.map((e) => [e.name, e.reason, e.detail])));
  }
  lines.push('');
  if (facts.missing === null) lines.push('permissions: not checked (the API server does not answer SelfSubjectAccessReviews)');
  else if (facts.missing.length === 0) lines.push('permissions: everything a run needs is granted');
  else lines.push(`permissions: a run would be refused; missing: ${facts.missing.map(describePermission).join(', ')} (see deploy/clusterrole.yaml)`);
  lines.push('dry run: nothing was changed');
  return lines.join('\n');
}
