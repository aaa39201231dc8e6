/**
 * patchpilot's Prometheus metrics: one prom-client Registry per process, served at `/metrics` by `run`
 * (`--metrics-port`), by the in-cluster Deployment (the same `run`) and by the bot. prom-client does the exposition
 * format (label escaping included), so nothing here writes metric text by hand.
 *
 * Node gauges are not pushed by whoever happens to know something: they are read from the fleet status (the nodes'
 * annotations, the cluster being the system of record) when Prometheus scrapes, through the sources registered with
 * `watchFleet`. Run and step metrics come from the run events every front end already receives.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { RunEvent } from './progress.ts';
import type { ClusterStatus } from './fleet-status.ts';

/** Where the node gauges come from at scrape time: one call per cluster, answering its status (or throwing). */
export type FleetSource = () => Promise<ClusterStatus[]>;

const STEP_BUCKETS_SECONDS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600];
const ACK_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3];

export class PatchpilotMetrics {
  readonly registry = new Registry();
  readonly #sources: FleetSource[] = [];
  /** Per cluster, the nodes whose series were last set. */
  readonly #nodesSeen = new Map<string, Set<string>>();

  readonly securityUpdatesPending: Gauge<'cluster' | 'node'>;
  readonly rebootRequired: Gauge<'cluster' | 'node'>;
  readonly lastPatchTimestamp: Gauge<'cluster' | 'node'>;
  readonly nodeCompliant: Gauge<'cluster' | 'node'>;
  readonly nodeCordoned: Gauge<'cluster' | 'node'>;
  readonly lastScanTimestamp: Gauge<'cluster' | 'node'>;
  readonly clusterCompliantNodes: Gauge<'cluster'>;
  readonly clusterNodes: Gauge<'cluster'>;
  readonly fleetStatusErrors: Counter<'cluster'>;
  readonly runsTotal: Counter<'cluster' | 'outcome'>;
  readonly runActive: Gauge<'cluster'>;
  readonly lastRunHalted: Gauge<'cluster'>;
  readonly lastRunFinished: Gauge<'cluster'>;
  readonly nodesFinished: Counter<'cluster' | 'result'>;
  readonly stepDuration: Histogram<'step'>;
  readonly notificationsTotal: Counter<'sink' | 'result'>;
  /** Created by `bot()` only: a CLI run exposes no Slack metrics. */
  #bot: BotMetrics | null = null;

  constructor(options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    const nodeGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ['cluster', 'node'] as const, registers });
    this.securityUpdatesPending = nodeGauge('patchpilot_node_security_updates_pending', 'Security updates the last scan found pending on the node.');
    this.rebootRequired = nodeGauge('patchpilot_node_reboot_required', '1 when the node needs a reboot to finish its updates.');
    this.lastPatchTimestamp = nodeGauge('patchpilot_node_last_patch_timestamp_seconds', 'When patchpilot last patched the node successfully (Unix seconds).');
    this.nodeCompliant = nodeGauge('patchpilot_node_compliant', '1 when the node was scanned and has no security update or reboot pending.');
    this.nodeCordoned = nodeGauge('patchpilot_node_cordoned', '1 when the node is cordoned (by anyone).');
    this.lastScanTimestamp = nodeGauge('patchpilot_node_last_scan_timestamp_seconds', 'When the node was last scanned (Unix seconds).');
    this.clusterCompliantNodes = new Gauge({ name: 'patchpilot_cluster_compliant_nodes', help: 'Compliant Linux nodes of the cluster.', labelNames: ['cluster'] as const, registers });
    this.clusterNodes = new Gauge({ name: 'patchpilot_cluster_nodes', help: 'Linux nodes of the cluster (the compliance denominator).', labelNames: ['cluster'] as const, registers });
    this.fleetStatusErrors = new Counter({ name: 'patchpilot_fleet_status_errors_total', help: 'Scrapes for which a cluster\'s status could not be read.', labelNames: ['cluster'] as const, registers });
    this.runsTotal = new Counter({ name: 'patchpilot_runs_total', help: 'Finished runs by outcome.', labelNames: ['cluster', 'outcome'] as const, registers });
    this.runActive = new Gauge({ name: 'patchpilot_run_active', help: '1 while a run of the cluster is in progress in this process.', labelNames: ['cluster'] as const, registers });
    this.lastRunHalted = new Gauge({ name: 'patchpilot_last_run_halted', help: '1 when the cluster\'s last finished run halted (its error budget was spent).', labelNames: ['cluster'] as const, registers });
    this.lastRunFinished = new Gauge({ name: 'patchpilot_last_run_finished_timestamp_seconds', help: 'When the cluster\'s last run finished (Unix seconds).', labelNames: ['cluster'] as const, registers });
    this.nodesFinished = new Counter({ name: 'patchpilot_nodes_finished_total', help: 'Node machines finished, by result.', labelNames: ['cluster', 'result'] as const, registers });
    this.stepDuration = new Histogram({ name: 'patchpilot_node_step_duration_seconds', help: 'Time a node spent in each step of its patch.', labelNames: ['step'] as const, buckets: STEP_BUCKETS_SECONDS, registers });
    this.notificationsTotal = new Counter({ name: 'patchpilot_notifications_total', help: 'Notification deliveries by sink and result (delivered, retried, dead-lettered).', labelNames: ['sink', 'result'] as const, registers });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'patchpilot_process_' });
  }

  /** A run event, as every front end receives it, for the cluster the run belongs to. */
  observeRun(cluster: string, event: RunEvent): void {
    if (event.type === 'run.state') {
      if (!event.tags.includes('finished')) this.runActive.set({ cluster }, 1);
      return;
    }
    if (event.type === 'node.finished') {
      const { outcome } = event;
      this.nodesFinished.inc({ cluster, result: outcome.result });
      for (const [step, ms] of Object.entries(outcome.phases)) if (typeof ms === 'number') this.stepDuration.observe({ step }, ms / 1000);
      return;
    }
    if (event.type === 'run.finished') {
      const { outcome, finishedAt } = event.output;
      this.runsTotal.inc({ cluster, outcome });
      this.runActive.set({ cluster }, 0);
      this.lastRunHalted.set({ cluster }, outcome === 'halted' ? 1 : 0);
      this.lastRunFinished.set({ cluster }, (finishedAt ?? event.at) / 1000);
    }
  }

  /** Node and cluster gauges are refreshed from `source` on every scrape. */
  watchFleet(source: FleetSource): void {
    this.#sources.push(source);
  }

  /** Sets the node gauges from statuses (what a scrape does with the watched sources). */
  setFleet(statuses: readonly ClusterStatus[]): void {
    for (const status of statuses) {
      const cluster = status.name;
      if (status.error !== undefined) {
        // Unreadable: keep the last values rather than report a fleet that vanished.
        this.fleetStatusErrors.inc({ cluster });
        continue;
      }
      this.clusterCompliantNodes.set({ cluster }, status.compliant);
      this.clusterNodes.set({ cluster }, status.total);
      // A node that left the cluster leaves the metrics too, rather than reporting its last values for ever.
      const present = new Set(status.nodes.map((n) => n.name));
      for (const gone of [...(this.#nodesSeen.get(cluster) ?? [])].filter((n) => !present.has(n))) {
        for (const gauge of this.#nodeGauges()) gauge.remove({ cluster, node: gone });
      }
      this.#nodesSeen.set(cluster, present);
      for (const node of status.nodes) {
        const labels = { cluster, node: node.name };
        // A node never scanned has no pending count: leaving the series out is what Prometheus calls "unknown".
        if (node.securityUpdatesPending === null) this.securityUpdatesPending.remove(labels);
        else this.securityUpdatesPending.set(labels, node.securityUpdatesPending);
        if (node.rebootRequired === null) this.rebootRequired.remove(labels);
        else this.rebootRequired.set(labels, node.rebootRequired ? 1 : 0);
        if (node.lastPatchedAt === null) this.lastPatchTimestamp.remove(labels);
        else this.lastPatchTimestamp.set(labels, Date.parse(node.lastPatchedAt) / 1000);
        if (node.scannedAt === null) this.lastScanTimestamp.remove(labels);
        else this.lastScanTimestamp.set(labels, Date.parse(node.scannedAt) / 1000);
        this.nodeCompliant.set(labels, node.compliant ? 1 : 0);
        this.nodeCordoned.set(labels, node.cordoned ? 1 : 0);
      }
    }
  }

  #nodeGauges(): Gauge<'cluster' | 'node'>[] {
    return [this.securityUpdatesPending, this.rebootRequired, this.lastPatchTimestamp, this.nodeCompliant, this.nodeCordoned, this.lastScanTimestamp];
  }

  bot(): BotMetrics {
    this.#bot ??= new BotMetrics(this.registry);
    return this.#bot;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text, after reading every watched fleet source (a failing one counts an error, the rest goes on). */
  async render(): Promise<string> {
    for (const source of this.#sources) {
      try {
        this.setFleet(await source());
      } catch {
        this.fleetStatusErrors.inc({ cluster: 'unknown' });
      }
    }
    return this.registry.metrics();
  }
}

/** The Slack bot's own counters and its acknowledgement latency. */
export class BotMetrics {
  readonly #commands: Counter<'command'>;
  readonly #refusals: Counter<'reason'>;
  readonly #decisions: Counter<'decision' | 'accepted'>;
  readonly #replaysRefused: Counter;
  readonly #ack: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    this.#commands = new Counter({ name: 'patchpilot_bot_commands_total', help: 'Slash commands received, by kind.', labelNames: ['command'] as const, registers });
    this.#refusals = new Counter({ name: 'patchpilot_bot_refusals_total', help: 'Slash commands and actions refused, by reason.', labelNames: ['reason'] as const, registers });
    this.#decisions = new Counter({ name: 'patchpilot_bot_decisions_total', help: 'Approve and reject clicks, and whether they were accepted.', labelNames: ['decision', 'accepted'] as const, registers });
    this.#replaysRefused = new Counter({ name: 'patchpilot_bot_replays_refused_total', help: 'Validly signed requests refused because they were seen before.', registers });
    this.#ack = new Histogram({ name: 'patchpilot_bot_ack_seconds', help: 'Time from a slash command arriving to its acknowledgement.', buckets: ACK_BUCKETS_SECONDS, registers });
  }

  command(kind: string): void {
    this.#commands.inc({ command: kind });
  }

  refusal(reason: string): void {
    this.#refusals.inc({ reason });
  }

  decision(decision: 'approve' | 'reject', accepted: boolean): void {
    this.#decisions.inc({ decision, accepted: String(accepted) });
  }

  replayRefused(): void {
    this.#replaysRefused.inc();
  }

  ack(ms: number): void {
    this.#ack.observe(ms / 1000);
  }
}

/** A GET endpoint of the process, shaped as Bolt's custom routes are (the bot serves them through its receiver). */
export interface OperationalRoute {
  path: string;
  method: 'GET';
  handler(req: IncomingMessage, res: ServerResponse): void;
}

/** `/healthz` and `/metrics`; `onError` hears why the metrics could not be rendered. */
export function operationalRoutes(metrics: PatchpilotMetrics, onError: (err: unknown) => void = () => {}): OperationalRoute[] {
  return [
    { path: '/healthz', method: 'GET', handler: (_req, res) => void res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok\n') },
    {
      path: '/metrics',
      method: 'GET',
      handler: (_req, res) => {
        metrics.render().then(
          (text) => res.writeHead(200, { 'Content-Type': metrics.contentType }).end(text),
          (err: unknown) => {
            onError(err);
            res.writeHead(500, { 'Content-Type': 'text/plain' }).end('metrics unavailable\n');
          },
        );
      },
    },
  ];
}

/** A small HTTP server with the operational routes, for `run`, the Deployment and the bot in Socket Mode. */
export async function serveMetrics(metrics: PatchpilotMetrics, port: number, host = '0.0.0.0', onError?: (err: unknown) => void): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const routes = operationalRoutes(metrics, onError);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const route = routes.find((r) => r.path === path && r.method === req.method);
    if (route) return route.handler(req, res);
    res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actual = typeof address === 'object' && address ? address.port : port;
  return {
    server,
    port: actual,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
