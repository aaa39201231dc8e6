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

/** More nodes than any cluster has (Kubernetes supports 5,000; the simulator's benchmark runs 100,000). */
export const MAX_CONCURRENCY = 100_000;

/**
 * A label key as the API server validates it (IsQualifiedName): an optional DNS-subdomain prefix of at most 253
 * characters and a slash, then a name of at most 63 characters, alphanumeric at both ends.
 */
function kubernetesLabelKey() {
  return z.string().refine((key) => {
    const slash = key.lastIndexOf('/');
    const [prefix, name] = slash < 0 ? [null, key] : [key.slice(0, slash), key.slice(slash + 1)];
    if (prefix !== null && (prefix.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(prefix))) return false;
    return name.length <= 63 && /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(name);
  }, 'not a valid Kubernetes label key');
}

/** A label value as the API server validates it (IsValidLabelValue): empty, or at most 63 characters, alphanumeric at both ends. */
const labelValue = z.string().regex(/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/, 'not a valid Kubernetes label value').max(63, 'not a valid Kubernetes label value (at most 63 characters)');

/**
 * The label patchpilot writes its hash to. Kubernetes reserves the kubernetes.io and k8s.io prefixes (and their
 * subdomains) for its own labels: `kubernetes.io/os` there would overwrite the node's OS label with the hash (every
 * Linux-only workload then loses the node, and the next run no longer sees a Linux node).
 */
const labelKey = kubernetesLabelKey()
  .refine((key) => !/^([^/]*\.)?(kubernetes\.io|k8s\.io)\//.test(key), {
    error: (issue) => `${String(issue.input).split('/')[0]}/ is a prefix Kubernetes reserves for its own labels (patchpilot would overwrite one); use a key of your own, e.g. example.com/os-patch`,
  });

const seconds = (fallback: number) => z.number().int('must be a whole number of seconds').positive('must be > 0').default(fallback);

export const approvalSchema = z.strictObject({
  required: z.boolean().default(false),
  /** Slack user IDs (or any identity string the front end uses) allowed to approve; empty means anyone but the requester. */
  approvers: z.array(z.string().min(1)).default([]),
  /** The requester may not approve their own run. */
  twoPersonRule: z.boolean().default(true),
});

/** Kubernetes label selector syntax (equality and set-based), as `kubectl get pods -l` takes it. */
const SELECTOR_TERM = /^\s*!?[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?\s*((==?|!=)\s*[A-Za-z0-9]?([-A-Za-z0-9_.]*[A-Za-z0-9])?\s*|\s+(in|notin)\s*\(\s*[-A-Za-z0-9_.,\s]*\)\s*)?$/;
const labelSelector = z.string().refine((s) => s.trim() === '' || splitSelector(s).every((term) => SELECTOR_TERM.test(term)), 'not a valid label selector (e.g. "app=backup,tier in (db)")');

export const drainSchema = z.strictObject({
  /** -1 keeps each pod's own terminationGracePeriodSeconds, as `kubectl drain` does. */
  gracePeriodSeconds: z.number().int().min(-1).default(-1),
  /** Only evict pods matching this label selector (kubectl syntax); empty evicts all but DaemonSet and mirror pods. */
  podSelector: labelSelector.default(''),
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

/**
 * A count, or a percentage of the selected nodes as SSM's MaxConcurrency/MaxErrors and system-upgrade-controller users
 * write it ("25%"). Resolved against the selection by `resolveLimits`, when the run knows how many nodes it has.
 */
const PERCENT = /^(100(\.0+)?|[1-9]?[0-9](\.[0-9]+)?)%$/;
const countOrPercent = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.union([z.number(), z.string()], { error: 'must be a whole number or a percentage such as "25%"' }).superRefine((value, ctx) => {
    if (typeof value === 'number') {
      if (!Number.isInteger(value)) ctx.addIssue({ code: 'custom', message: 'must be a whole number' });
      else if (value < min) ctx.addIssue({ code: 'custom', message: min === 0 ? 'cannot be negative' : `must be at least ${min}` });
      else if (value > max) ctx.addIssue({ code: 'custom', message: `must be at most ${max}` });
    } else if (!PERCENT.test(value)) {
      ctx.addIssue({ code: 'custom', message: `must be a whole number or a percentage such as "25%" (0% to 100%), got ${JSON.stringify(value)}` });
    } else if (min > 0 && Number.parseFloat(value) === 0) {
      ctx.addIssue({ code: 'custom', message: 'must be more than 0%' });
    }
  });
export type CountOrPercent = number | string;

export const healthGateSchema = z.strictObject({
  /** Nodes other than those being patched that may be NotReady when the next node starts. */
  maxNotReady: z.number().int('must be a whole number').min(0, 'cannot be negative').default(0),
  /** How long the run may wait in `blocked` (health gate or blockers) before it halts with BLOCKED_TIMEOUT. */
  blockedTimeoutSeconds: seconds(3600),
});

export const canarySchema = z.strictObject({
  /** The first N nodes of the queue, patched one at a time before any other. */
  nodes: z.number().int('must be a whole number').min(0, 'cannot be negative').default(0),
  /** After the last canary, nothing starts for this long while the canaries' health is watched. */
  soakSeconds: z.number().int('must be a whole number of seconds').min(0, 'cannot be negative').default(0),
});

/** Splits a selector at the commas outside parentheses. */
export function splitSelector(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of selector) {
    if (ch === '(') depth += 1;
    if (ch === ')') depth -= 1;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  return terms;
}

export const blockersSchema = z.strictObject({
  /** While any pod in the cluster matching this selector is running, no node starts (kured's --blocking-pod-selector). */
  podSelector: labelSelector.default(''),
  prometheus: z
    .strictObject({
      /** Base URL of the Prometheus HTTP API; its /api/v1/alerts is asked before each node starts. */
      url: z
        .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
        // fetch() refuses a URL with credentials, and the plan is printed and recorded: a password would leak.
        .refine((u) => {
          const url = new URL(u);
          return url.username === '' && url.password === '';
        }, 'must not carry a user or password (fetch refuses them, and the plan is printed and recorded)'),
      /** Regular expression over alert names: firing alerts whose name matches block; empty: every firing alert. */
      alertFilter: z
        .string()
        .default('')
        .refine((r) => {
          try {
            new RegExp(r);
            return true;
          } catch {
            return false;
          }
        }, 'not a valid regular expression'),
    })
    .optional(),
});

/**
 * What `nodes:` may name: a Kubernetes node name is a DNS-1123 subdomain. Anything else matches no node, and a 1 MB
 * "name" was accepted and echoed whole. One check (not max() and regex()) so a bad name gets one line.
 */
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const nodeName = z.string().refine((name) => name.length <= 253 && DNS_SUBDOMAIN.test(name), 'not a Kubernetes node name (lowercase letters, digits, "-" and ".", at most 253 characters)');

/**
 * A package to hold, or a pattern of them (`kernel*`, `kernel-[0-9]*`) as dnf's --exclude and dpkg-query match:
 * `*`, `?` and `[...]` classes. The agent takes the list split on spaces and passes each entry to rpm, dnf and
 * dpkg-query as one argument, so a space or a shell character ("kubelet; rm -rf /", "$(reboot)") must never get
 * there, nor a leading "-" (an option). Debian names are [a-z0-9][a-z0-9+.-]+; RPM names add capitals and "_"; ":"
 * takes an apt architecture (containerd:amd64). A pattern names at least one letter or digit: `*` would hold
 * everything and patch nothing.
 */
const NAME_CHAR = 'A-Za-z0-9_+.:';
const GLOB_CLASS = `\\[[!^]?[${NAME_CHAR}-]+\\]`;
const PACKAGE_PATTERN = new RegExp(`^(?:[${NAME_CHAR.replace('+.:', '')}*?]|${GLOB_CLASS})(?:[${NAME_CHAR}*?-]|${GLOB_CLASS})*$`);
const packageName = z
  .string()
  .refine(
    (name) => name.length <= 255 && PACKAGE_PATTERN.test(name) && /[A-Za-z0-9]/.test(name.replace(/\[[^\]]*\]/g, '')),
    'not a package name or pattern (letters, digits, "+ . _ - :" and the globs "* ? [...]", starting with a letter, digit or glob, naming at least one letter or digit; at most 255 characters)',
  );

/** Whether a hold entry is a pattern (kernel*, kernel-[0-9]*) rather than one package's name. */
export function isHoldPattern(entry: string): boolean {
  return /[*?[]/.test(entry);
}

/** Each pattern's regex, built once: the simulator asks for every installed package of every node it patches. */
const holdRegexes = new Map<string, RegExp>();

/** Whether a hold entry (a name or a pattern) matches an installed package's name, as fnmatch does for dpkg and rpm. */
export function holdMatches(pattern: string, name: string): boolean {
  if (!isHoldPattern(pattern)) return pattern === name;
  let regex = holdRegexes.get(pattern);
  if (regex === undefined) {
    regex = holdRegex(pattern);
    holdRegexes.set(pattern, regex);
  }
  return regex.test(name);
}

function holdRegex(pattern: string): RegExp {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') source += '.*';
    else if (c === '?') source += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      const body = pattern.slice(i + 1, end);
      source += `[${body.startsWith('!') ? `^${body.slice(1)}` : body}]`;
      i = end;
    } else source += c.replace(/[.+]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

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
    holdPackages: z.array(packageName).default([...DEFAULT_HOLD_PACKAGES]),
    /** Nodes in maintenance at once: a count, or a percentage of the selected nodes (at least 1). */
    concurrency: countOrPercent(1, MAX_CONCURRENCY).default(1),
    /** The error budget: a count, or a percentage of the selected nodes (rounded down). */
    maxFailures: countOrPercent(0).default(0),
    window: maintenanceWindowSchema.optional(),
    drainTimeoutSeconds: seconds(600),
    readyTimeoutSeconds: seconds(600),
    patchTimeoutSeconds: seconds(1800),
    lockTimeoutSeconds: seconds(600),
    drain: drainSchema.prefault({}),
    retry: retrySchema.prefault({}),
    /** Equality label selector a node must match to be considered. */
    // A key or value no node can carry would select nothing, silently: refused as the API server would refuse it.
    nodeSelector: z.record(kubernetesLabelKey(), labelValue).default({}),
    /** Restrict the run to these nodes (by name); every name must exist. */
    nodes: z
      .array(nodeName)
      .min(1, 'must name at least one node (leave it out to consider every node)')
      // A name twice is a typo for another node (worker-1, worker-1 for worker-1, worker-2), which the run would skip.
      .superRefine((names, ctx) => {
        const first = new Map<string, number>();
        names.forEach((name, i) => {
          const earlier = first.get(name);
          if (earlier === undefined) first.set(name, i);
          else ctx.addIssue({ code: 'custom', path: [i], message: `${name.length <= 63 ? JSON.stringify(name) : 'this node'} is listed twice (also nodes[${earlier}]): a typo for another node?` });
        });
      })
      .optional(),
    approval: approvalSchema.prefault({}),
    /** Download packages on every selected node before the first cordon, so each node's maintenance is shorter. */
    prefetch: z.boolean().default(false),
    /** Scan each node (the agent's dry run) before cordoning it: a node with nothing to apply is never drained. */
    scanFirst: z.boolean().default(true),
    healthGate: healthGateSchema.prefault({}),
    canary: canarySchema.prefault({}),
    /** After uncordon, the node must stay Ready and its pods return to Ready for this long (AKS's nodeSoakDuration). */
    soakSeconds: z.number().int('must be a whole number of seconds').min(0, 'cannot be negative').default(0),
    blockers: blockersSchema.prefault({}),
  })
  .transform((plan) => ({
    ...plan,
    labelKey: plan.labelKey ?? (plan.mode === 'palette' ? PALETTE_LABEL_KEY : NATIVE_LABEL_KEY),
  }));

/** A count or percentage resolved against `total` selected nodes; percentages round down. */
export function resolveCount(value: CountOrPercent, total: number): number {
  if (typeof value === 'number') return value;
  return Math.floor((Number.parseFloat(value) / 100) * total);
}

/** The run's concurrency and error budget as numbers, once it knows how many nodes it selected. */
export function resolveLimits(plan: Pick<Plan, 'concurrency' | 'maxFailures'>, selected: number): { concurrency: number; maxFailures: number } {
  return { concurrency: Math.max(1, resolveCount(plan.concurrency, selected)), maxFailures: resolveCount(plan.maxFailures, selected) };
}

/**
 * Patch on join (trigger on-boot): the run for a node that joined without the current hash. That node alone, cordoned
 * at once, before the scheduler places workloads on it: no scan first (an empty node costs nothing to cordon, and
 * the minute a scan takes is when workloads land), and no canary (it is one node).
 */
export function joinPlan(plan: Plan, node: string): Plan {
  return { ...plan, nodes: [node], scanFirst: false, canary: { nodes: 0, soakSeconds: 0 } };
}

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
    // A record's key that its key schema refused: zod says only "Invalid key in record"; the key's own issue says why.
    if (issue.code === 'invalid_key') {
      const key = issue.path.at(-1);
      const parent = formatPath([...(root ? [root] : []), ...issue.path.slice(0, -1)]) || '(root)';
      return `${parent}: key ${JSON.stringify(String(key))}: ${issue.issues[0]?.message ?? issue.message}`;
    }
    return `${path}: ${issue.message}`;
  });
}

/** Validates and defaults a plan. Throws PlanError naming every offending field. */
export function parsePlan(input: unknown, source = 'plan'): Plan {
  const result = planSchema.safeParse(input ?? {});
  if (!result.success) throw new PlanError(describeZodIssues(result.error), source);
  return result.data;
}
