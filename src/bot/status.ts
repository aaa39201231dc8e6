/**
 * What `/patch status` and `/patch history` answer, in the acknowledgement itself: each cluster's status (read with a
 * deadline inside Slack's three seconds, and cached briefly) and its runs from the service.
 */
import type { ClusterStatus } from '../service/fleet-status.ts';
import type { ClusterService } from '../service/index.ts';
import { clusterStatusText } from './fleet.ts';

const STATUS_CACHE_MS = 5000;

/**
 * Recent reads of each cluster's status: fifty people asking at once cost one list of the nodes, not fifty. A scan
 * or a node's end drops its cluster's entry (`drop`).
 */
export class FleetStatusCache {
  readonly #redact: (text: string) => string;
  readonly #cache = new Map<string, { at: number; status: Promise<ClusterStatus> }>();

  constructor(redact: (text: string) => string) {
    this.#redact = redact;
  }

  of(service: ClusterService, timeoutMs = 2000): Promise<ClusterStatus> {
    const cached = this.#cache.get(service.name);
    if (cached && Date.now() - cached.at < STATUS_CACHE_MS) return cached.status;
    const status = this.#read(service, timeoutMs);
    this.#cache.set(service.name, { at: Date.now(), status });
    // A cluster that could not be read is asked again next time.
    void status.then((s) => {
      if (s.error !== undefined && this.#cache.get(service.name)?.status === status) this.#cache.delete(service.name);
    });
    return status;
  }

  drop(cluster: string): void {
    this.#cache.delete(cluster);
  }

  /** One paragraph per cluster: its compliance and its last run. */
  async answer(services: readonly ClusterService[]): Promise<string> {
    const statuses = await Promise.all(services.map((s) => this.of(s)));
    const now = Date.now();
    return statuses.map((status, i) => clusterStatusText(status, lastRunText(services[i]!), now)).join('\n\n');
  }

  /** The cluster's status, given up after `timeoutMs`. */
  async #read(service: ClusterService, timeoutMs: number): Promise<ClusterStatus> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const gaveUp = new Promise<ClusterStatus>((resolve) =>
        controller.signal.addEventListener('abort', () => resolve({ name: service.name, compliant: 0, total: 0, lastScanAt: null, oldestUnpatched: null, nodes: [], error: `the cluster did not answer within ${timeoutMs / 1000} s` })),
      );
      const status = await Promise.race([service.status(controller.signal), gaveUp]);
      return status.error === undefined ? status : { ...status, error: this.#redact(status.error) };
    } finally {
      clearTimeout(timer);
    }
  }
}

function lastRunText(service: ClusterService): string {
  if (!service.keepsHistory) return `No run history is kept for ${service.name}.`;
  const [run] = service.runs(1);
  if (!run) return `No run of ${service.name} yet. Start one with \`/patch run ${service.name}\`.`;
  const nodes = service.nodeRuns(run.id);
  const counts = new Map<string, number>();
  for (const n of nodes) counts.set(n.result, (counts.get(n.result) ?? 0) + 1);
  const tally = [...counts].map(([k, v]) => `${v} ${k}`).join(', ') || 'no nodes yet';
  return [
    `*${service.name}*: run \`${run.id}\` ${run.status === 'done' ? `finished ${run.outcome?.toUpperCase() ?? ''}` : run.status} (requested by <@${run.requestedBy}>)`,
    `nodes: ${tally}`,
    ...nodes.filter((n) => n.result === 'failed').map((n) => `• \`${n.node}\` failed${n.errorCode ? `: ${n.errorCode}` : ''}`),
  ].join('\n');
}

export function historyText(service: ClusterService): string {
  const runs = service.runs(10);
  if (runs.length === 0) return `No runs of ${service.name} yet.`;
  return [`*Last runs of ${service.name}:*`, ...runs.map((r) => `• \`${r.id}\` ${new Date(r.createdAt).toISOString().slice(0, 16).replace('T', ' ')} by <@${r.requestedBy}>: ${r.status === 'done' ? (r.outcome ?? '') : r.status}`)].join('\n');
}
