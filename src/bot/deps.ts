/**
 * What the listeners share, built once by createBot and passed to each `register(app, deps)`: the configuration, one
 * ClusterService per cluster (the bot's only way to runs, the store and the cluster), the fleet status cache, the
 * cards, metrics, logging and the audit trail of what people did in Slack.
 */
import type { App } from '@slack/bolt';
import type { AuditRecord, ClusterService } from '../service/index.ts';
import type { BotMetrics } from '../service/metrics.ts';
import type { Cards } from './cards.ts';
import type { BotConfig } from './config.ts';
import type { LevelName } from './logger.ts';
import type { FleetStatusCache } from './status.ts';

export type BotLog = (level: LevelName, ...parts: unknown[]) => void;

export interface BotDeps {
  config: BotConfig;
  services: ReadonlyMap<string, ClusterService>;
  client: App['client'];
  metrics: BotMetrics;
  log: BotLog;
  /** Removes secrets from a text shown to people (error replies), as the log does. */
  redact(text: string): string;
  fleet: FleetStatusCache;
  cards: Cards;
}

/** A request the bot turns down with a reason (answered ephemerally, audited), not a failure. */
export class BotRefusal extends Error {
  override readonly name = 'BotRefusal';
}

/** Records what a Slack user did (actor `slack:<user>`); a record that cannot be written is logged, never thrown. */
export function audit(deps: Pick<BotDeps, 'log'>, service: ClusterService | undefined, record: AuditRecord): void {
  try {
    service?.audit({ ...record, actor: `slack:${record.actor}` });
  } catch (err) {
    deps.log('error', 'audit record not written:', err);
  }
}

/** The cluster a channel may act on: named and bound, or the channel's own, or the only one. */
export function clusterFor(deps: Pick<BotDeps, 'config' | 'services'>, channel: string, named: string | undefined): { service: ClusterService } | { refusal: string } {
  const { config, services } = deps;
  const bound = config.channels.get(channel);
  if (named !== undefined) {
    const service = services.get(named);
    if (!service) return { refusal: `there is no cluster "${named}" here (clusters: ${[...services.keys()].join(', ')})` };
    if (config.channels.size > 0 && bound !== named) return { refusal: `this channel is not bound to cluster ${named}${bound ? ` (it is bound to ${bound})` : ''}` };
    return { service };
  }
  if (bound) {
    const service = services.get(bound);
    return service ? { service } : { refusal: `this channel is bound to cluster ${bound}, which this bot does not serve` };
  }
  if (config.channels.size === 0 && services.size === 1) return { service: [...services.values()][0]! };
  return { refusal: config.channels.size > 0 ? 'this channel is not bound to any cluster (PATCHPILOT_CHANNELS)' : `name the cluster: one of ${[...services.keys()].join(', ')}` };
}

/** The channel's cluster, else the first one: where a refusal that names no cluster is audited. */
export function auditedCluster(deps: Pick<BotDeps, 'config' | 'services'>, channel: string): ClusterService | undefined {
  const resolved = clusterFor(deps, channel, undefined);
  return 'service' in resolved ? resolved.service : [...deps.services.values()][0];
}

/** The cluster whose history holds the run. */
export function clusterOfRun(deps: Pick<BotDeps, 'services'>, runId: string): ClusterService | undefined {
  for (const service of deps.services.values()) if (service.hasRun(runId)) return service;
  return undefined;
}
