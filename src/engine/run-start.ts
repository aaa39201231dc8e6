/**
 * When a run asked for now begins, and which trigger id (hence which version hash) it patches to. One derivation,
 * used by `plan check`, `run --dry-run`, `run`, the bot and the Orchestrator, so that what one prints is what another
 * does.
 */
import { versionHash } from './hash.ts';
import type { Plan } from './plan.ts';
import { resolveTriggerStart } from './schedule.ts';

export interface RunStart {
  /** Earliest start (epoch ms), or null for at once. */
  notBefore: number | null;
  triggerId: string;
  /** The version hash nodes get as their label value once patched. */
  hash: string;
}

export interface RunStartRequest {
  /** An explicit trigger id (`run --trigger`, a Slack request's own id); default: derived from the plan's trigger. */
  triggerId?: string;
  /** An explicit earliest start (null: at once); default: from the plan's trigger. */
  notBefore?: number | null;
}

export function deriveRunStart(plan: Plan, now: number, request: RunStartRequest = {}): RunStart {
  const derived = resolveTriggerStart(plan.trigger, now);
  const triggerId = request.triggerId ?? derived.triggerId;
  return {
    notBefore: request.notBefore === undefined ? derived.notBefore : request.notBefore,
    triggerId,
    hash: versionHash(plan, triggerId),
  };
}

/** How `plan check`, `run --dry-run` and `run` print a start. */
export function describeStart(notBefore: number | null): string {
  return notBefore === null ? 'at once' : new Date(notBefore).toISOString();
}
