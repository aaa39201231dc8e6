/**
 * The version hash: a digest of exactly what should cause a node to be patched again. A node whose task label equals
 * the current hash is done; changing a rollout knob (concurrency, window, approvals) must not re-patch the fleet, so
 * only what changes the outcome on a node is hashed, plus the trigger id (each on-demand click or scheduled fire is new).
 */
import { createHash } from 'node:crypto';
import type { Plan } from './plan.ts';

/** Label values are limited to 63 characters; 20 hex digits (80 bits) keep collisions out of reach. */
const HASH_LENGTH = 20;

export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The fields of a plan that decide what happens on a node. */
export function patchSpec(plan: Plan) {
  return {
    securityOnly: plan.securityOnly,
    holdPackages: [...new Set(plan.holdPackages)].sort(),
    rebootIfRequired: plan.rebootIfRequired,
    agent: plan.agent,
  };
}

export function versionHash(plan: Plan, triggerId: string): string {
  return sha256Hex(canonicalJson({ spec: patchSpec(plan), trigger: triggerId })).slice(0, HASH_LENGTH);
}
