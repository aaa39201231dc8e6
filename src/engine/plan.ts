/**
 * The plan: what an operator asks for (which cluster, how carefully, when). Parsed once with zod at the edge; every
 * other part of patchpilot receives a fully defaulted, validated Plan.
 */
import { z } from 'zod';
import { maintenanceWindowSchema } from './window.ts';
import { scheduleSchema } from './schedule.ts';

/** Palette's label for on-demand patching (seed: "Understanding How Patching Tracks Nodes"). */
export const PALETTE_LABEL_KEY = 'task.cluster.spectrocloud.com/on-demand-os-patch';
export const NATIVE_LABEL_KEY = 'patchpilot.io/os-patch';

/** Kubernetes and container-runtime packages that an OS patch must never move (only installed ones are held). */
export const DEFAULT_HOLD_PACKAGES = [
  'kubeadm',
  'kubectl',
  'kubelet',
  'kubernetes-cni',
  'cri-tools',
  'containerd',
  'runc',
] as const;

const labelKey = z
  .string()
  .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'not a valid Kubernetes label key')
  .max(317);

const seconds = (fallback: number) => z.number().int('must be a whole number of seconds').positive('must be > 0').default(fallback);

export const approvalSchema = z.strictObject({
  required: z.boolean().default(false),
  /** Slack user IDs (or any identity string the front end uses) allowed to approve; empty means anyone but the requester. */
  approvers: z.array(z.string().min(1)).default([]),
  /** The requester may not approve their own run. */
  twoPersonRule: z.boolean().default(true),
});

export const drainSchema = z.strictObject({
  /** -1 keeps each pod's own terminationGracePeriodSeconds, as `kubectl drain` does. */
  gracePeriodSeconds: z.number().int().min(-1).default(-1),
  /** Only evict pods matching this label selector (kubectl syntax); empty evicts all but DaemonSet and mirror pods. */
  podSelector: z.string().default(''),
  /** Also evict pods that no controller would recreate (kubectl drain --force); otherwise the drain refuses them. */
  force: z.boolean().default(false),
  /** Also evict pods with emptyDir volumes, losing that data (kubectl drain --delete-emptydir-data). */
  deleteEmptyDirData: z.boolean().default(false),
  /** After DRAIN_TIMEOUT: give the node back (uncordon) or keep it cordoned for a human (AKS's "Cordon" behaviour). */
  onTimeout: z.enum(['uncordon', 'keep-cordoned']).default('uncordon'),
});

export const retrySchema = z.strictObject({
  /** Attempts per step for transient failures (API errors); timeouts and agent failures are never retried. */
  attempts: z.number().int().min(1).max(20).default(3),
  backoffSeconds: z.number().int().min(0).default(10),
});

export const planSchema = z
  .strictObject({
    cluster: z.string().min(1, 'must name the cluster').default('default'),
    mode: z.enum(['native', 'palette']).default('native'),
    /** Which agent behaviour the simulator models; the real agent is always "modern". */
    agent: z.enum(['modern', 'legacy']).default('modern'),
    trigger: scheduleSchema.default({ kind: 'on-demand' }),
    labelKey: labelKey.optional(),
    rebootIfRequired: z.boolean().default(true),
    securityOnly: z.boolean().default(true),
    holdPackages: z.array(z.string().min(1)).default([...DEFAULT_HOLD_PACKAGES]),
    concurrency: z.number().int('must be a whole number').min(1, 'must be at least 1').default(1),
    maxFailures: z.number().int('must be a whole number').min(0, 'cannot be negative').default(0),
    window: maintenanceWindowSchema.optional(),
    drainTimeoutSeconds: seconds(600),
    readyTimeoutSeconds: seconds(600),
    patchTimeoutSeconds: seconds(1800),
    lockTimeoutSeconds: seconds(600),
    drain: drainSchema.prefault({}),
    retry: retrySchema.prefault({}),
    /** Equality label selector a node must match to be considered. */
    nodeSelector: z.record(z.string(), z.string()).default({}),
    /** Restrict the run to these nodes (by name); every name must exist. */
    nodes: z.array(z.string().min(1)).optional(),
    approval: approvalSchema.prefault({}),
    /** Download packages on every selected node before the first cordon, so each node's maintenance is shorter. */
    prefetch: z.boolean().default(false),
  })
  .transform((plan) => ({
    ...plan,
    labelKey: plan.labelKey ?? (plan.mode === 'palette' ? PALETTE_LABEL_KEY : NATIVE_LABEL_KEY),
  }));

export type PlanInput = z.input<typeof planSchema>;
export type Plan = z.output<typeof planSchema>;

export class PlanError extends Error {
  override readonly name = 'PlanError';
  /** One line per problem: `path: reason`. */
  readonly problems: readonly string[];

  constructor(problems: readonly string[], source = 'plan') {
    super(`invalid ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** Formats a zod issue path the way users write it: `drain.onTimeout`, `holdPackages[2]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

export function describeZodIssues(error: z.ZodError, root = ''): string[] {
  return error.issues.map((issue) => {
    const path = formatPath([...(root ? [root] : []), ...issue.path]) || '(root)';
    if (issue.code === 'unrecognized_keys') return `${path}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    return `${path}: ${issue.message}`;
  });
}

/** Validates and defaults a plan. Throws PlanError naming every offending field. */
export function parsePlan(input: unknown, source = 'plan'): Plan {
  const result = planSchema.safeParse(input ?? {});
  if (!result.success) throw new PlanError(describeZodIssues(result.error), source);
  return result.data;
}
