/**
 * Scenario files (fixtures/scenarios/*.yaml): a cluster, the updates its repositories offer, a plan, faults, triggers,
 * cluster events and what must happen. The contract between the simulator, CI and users (DESIGN.md).
 *
 * Loading validates everything before anything runs, and every problem names the file, the line and the field:
 * `fixtures/scenarios/x.yaml:14: faults[1].node: no node named "worker-9"`.
 */
import { DocumentError, parseYamlText, type ParsedYaml } from '../engine/documents.ts';
import { MAX_SCENARIO_BYTES, readUserFile, UserFileError } from '../io/user-file.ts';
import { isMap, isSeq, LineCounter, type Document, type Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { formatPath, planSchema, type Plan } from '../engine/plan.ts';
import { durationMs, secondsParam } from './duration.ts';
import { KERNEL_ALIASES, OS_IDS, type OsId } from './os.ts';
import { PALETTE_FAULT_KINDS, PALETTE_RUN_STOPPERS, paletteFaultSchemas, paletteScenarioSchema, type PaletteScenario } from './palette-faults.ts';

export const FAULT_KINDS = [
  'apt-lock',
  'keyserver-unreachable',
  'reboot-required',
  'rejoin-fails',
  'rejoin-slow',
  'disk-full',
  'repo-unreachable',
  'postinst-fails',
  'dpkg-interrupted',
  'pdb-blocks-drain',
  'pod-stuck-terminating',
  'node-not-ready',
  'api-errors',
  'agent-crash',
  'orchestrator-crash',
  'palette-stale-timestamp',
  ...PALETTE_FAULT_KINDS,
  'alert-firing',
  'blocking-pod',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const OUTCOMES = ['succeeded', 'partial', 'halted', 'failed', 'cancelled', 'not-triggered'] as const;
export const INVARIANTS = [
  'no-node-left-cordoned',
  'k8s-packages-unchanged',
  'one-node-at-a-time',
  'concurrency-respected',
  'control-plane-one-at-a-time',
  'patched-at-most-once',
  /** A node the scan found nothing for was never cordoned. */
  'no-updates-never-cordoned',
  /** A node that joined under an on-boot plan was cordoned before the scheduler placed workloads on it. */
  'cordoned-before-workloads',
] as const;
export type Invariant = (typeof INVARIANTS)[number];

/** Steps a fault without `at` can be tied to (orchestrator-crash). */
const STEPS = ['preflight', 'cordon', 'drain', 'patch', 'reboot', 'rejoin', 'uncordon', 'mark'] as const;

const nodeName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a valid Kubernetes node name (lower case letters, digits, "-" and ".")')
  .max(63);

const podsSchema = z.strictObject({
  deployment: z.number().int().min(0).default(2),
  daemonset: z.number().int().min(0).default(1),
  static: z.number().int().min(0).default(0),
  /** Pods no controller owns: a drain refuses them unless the plan says drain.force. */
  bare: z.number().int().min(0).default(0),
  /** Deployment pods with an emptyDir volume: a drain refuses them unless the plan says drain.deleteEmptyDirData. */
  emptyDir: z.number().int().min(0).default(0),
});

/**
 * Labels as the API server validates them (a qualified key, a value of at most 63 characters): the sandbox serves
 * these nodes and pods through its Kubernetes API, which refuses anything else at start-up.
 */
const labelValue = z
  .string()
  .max(63, 'a label value has at most 63 characters')
  .regex(/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/, 'not a valid label value');
const kubeLabels = z.record(
  z
    .string()
    .regex(/^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/, 'not a valid label key')
    .refine((key) => key.split('/').at(-1)!.length <= 63 && (key.includes('/') ? key.split('/')[0]!.length <= 253 : true), 'not a valid label key (name at most 63 characters, prefix at most 253)'),
  labelValue,
);

const nodeSpecSchema = z.strictObject({
  name: nodeName,
  os: z.enum(OS_IDS, { error: `must be one of ${OS_IDS.join(', ')}` }),
  role: z.enum(['control-plane', 'worker']).default('worker'),
  /** `worker` with count 3 is worker-1, worker-2, worker-3. */
  count: z.number().int().min(1).max(100_000).optional(),
  zone: labelValue.min(1).optional(),
  labels: kubeLabels.default({}),
  kubeletVersion: z.string().default('v1.30.4'),
  pods: podsSchema.optional(),
  /** Extra installed packages. */
  packages: z.array(z.string().min(1)).default([]),
  /** Updates offered to this node instead of the cluster-wide `updates`. */
  updates: z.lazy(() => updatesSchema).optional(),
  /** Someone else has cordoned it (maintenance); patchpilot must leave their cordon alone. */
  unschedulable: z.boolean().default(false),
});

const updatesSchema = z.strictObject({
  security: z.array(z.string().min(1)).default([]),
  other: z.array(z.string().min(1)).default([]),
});

const common = {
  node: nodeName.optional(),
  /** Virtual time at which the fault starts; without it, it strikes when the engine reaches the step it concerns. */
  at: durationMs.optional(),
};

export const faultSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ ...common, kind: z.literal('apt-lock'), holdSeconds: secondsParam.default(120) }),
    z.strictObject({ ...common, kind: z.literal('keyserver-unreachable') }),
    z.strictObject({ ...common, kind: z.literal('reboot-required'), package: z.string().min(1).default('linux-image') }),
    z.strictObject({ ...common, kind: z.literal('rejoin-fails') }),
    z.strictObject({ ...common, kind: z.literal('rejoin-slow'), delaySeconds: secondsParam.default(900) }),
    z.strictObject({ ...common, kind: z.literal('disk-full') }),
    z.strictObject({ ...common, kind: z.literal('repo-unreachable') }),
    z.strictObject({ ...common, kind: z.literal('postinst-fails'), package: z.string().min(1).optional() }),
    /** recoverable: `dpkg --configure -a` repairs it (the modern agent runs it first); false: that repair fails too. */
    z.strictObject({ ...common, kind: z.literal('dpkg-interrupted'), recoverable: z.boolean().default(true) }),
    z.strictObject({ ...common, kind: z.literal('pdb-blocks-drain'), forSeconds: secondsParam.optional() }),
    z.strictObject({ ...common, kind: z.literal('pod-stuck-terminating'), forSeconds: secondsParam.optional() }),
    z.strictObject({ ...common, kind: z.literal('node-not-ready'), forSeconds: secondsParam.optional() }),
    z.strictObject({
      ...common,
      kind: z.literal('api-errors'),
      rate: z.number().min(0, 'must be between 0 and 1').max(1, 'must be between 0 and 1').default(0.2),
      status: z.union([z.literal(429), z.literal(500), z.literal(409)]).default(500),
      forSeconds: secondsParam.optional(),
    }),
    z.strictObject({ ...common, kind: z.literal('agent-crash') }),
    z.strictObject({ ...common, kind: z.literal('orchestrator-crash'), step: z.enum(STEPS).default('patch') }),
    z.strictObject({ ...common, kind: z.literal('palette-stale-timestamp') }),
    ...paletteFaultSchemas(common),
    /** A Prometheus alert named `name` fires from `at` (default 0) for `forSeconds` (default: until the end). */
    z.strictObject({
      ...common,
      kind: z.literal('alert-firing'),
      name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a Prometheus alert name (letters, digits, "_")'),
      forSeconds: secondsParam.optional(),
    }),
    /** A pod with these labels runs (on `node`, default the first) from `at` for `forSeconds` (blockers.podSelector). */
    z.strictObject({
      ...common,
      kind: z.literal('blocking-pod'),
      labels: kubeLabels.refine((l) => Object.keys(l).length > 0, 'a blocking pod needs at least one label'),
      forSeconds: secondsParam.optional(),
    }),
  ],
  { error: (issue) => (issue.code === 'invalid_union' ? `unknown fault kind; known kinds: ${FAULT_KINDS.join(', ')}` : undefined) },
);

export type Fault = z.output<typeof faultSchema>;

const triggerSchema = z.discriminatedUnion('kind', [
  z.strictObject({ at: durationMs.default(0), kind: z.literal('on-demand'), id: z.string().min(1).optional(), by: z.string().default('sim') }),
  /** patchpilot's `unstick`: clears a stale onDemandPatchAfter. */
  z.strictObject({ at: durationMs.default(0), kind: z.literal('unstick'), by: z.string().default('sim') }),
]);

const eventSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    at: durationMs.default(0),
    kind: z.literal('node-added'),
    node: nodeSpecSchema.omit({ count: true }),
  }),
  /** Sets the node's task label to "disabled". */
  z.strictObject({ at: durationMs.default(0), kind: z.literal('exclude'), node: nodeName }),
  /** Someone else cordons the node (maintenance). */
  z.strictObject({ at: durationMs.default(0), kind: z.literal('cordon'), node: nodeName }),
  /** An operator's command to the active run. */
  z.strictObject({ at: durationMs.default(0), kind: z.enum(['pause', 'resume', 'cancel', 'approve', 'reject']), by: z.string().default('sim') }),
]);

const failedExpectation = z.record(nodeName, z.string().min(1));

export const expectationSchema = z.strictObject({
  outcome: z.enum(OUTCOMES).optional(),
  /** A substring of the run's reason ("no matching nodes"). */
  reason: z.string().optional(),
  patched: z.array(nodeName).optional(),
  noUpdates: z.array(nodeName).optional(),
  failed: failedExpectation.optional(),
  rebooted: z.array(nodeName).optional(),
  rebootPending: z.array(nodeName).optional(),
  excluded: z.array(nodeName).optional(),
  notSelected: z.array(nodeName).optional(),
  notStarted: z.array(nodeName).optional(),
  cordonedAtEnd: z.array(nodeName).optional(),
  /** Packages that must appear in every patched node's upgrades (names as the scenario writes them). */
  upgraded: z.array(z.string()).optional(),
  invariants: z.array(z.enum(INVARIANTS)).default([]),
});
export type Expectation = z.output<typeof expectationSchema>;

/** The plan as scenarios write it: any plan key; `cluster` comes from the scenario. */
const scenarioPlanSchema = z.record(z.string(), z.unknown()).default({});

/**
 * `expect` is one expectation or a list: when neither fits, zod says only "Invalid input". Name the first problem of the
 * shape that was written instead (an object: its first issue; a list: the first issue of its elements).
 */
function explainExpectation(issue: { code?: string; input?: unknown; errors?: ReadonlyArray<ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>> }): string | undefined {
  if (issue.code !== 'invalid_union') return undefined;
  const first = issue.errors?.[Array.isArray(issue.input) ? 1 : 0]?.[0];
  if (first === undefined) return undefined;
  const where = first.path.map((key) => (typeof key === 'number' ? `[${key}]` : `.${String(key)}`)).join('');
  return `${where === '' ? '' : `${where.replace(/^\./, '')}: `}${first.message}`;
}

export const scenarioFileSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][-a-z0-9_.]*$/, 'must be a short slug (lower case letters, digits, "-", "_", ".")'),
  description: z.string().default(''),
  seed: z.number().int().min(0).default(1),
  /** Wall-clock time at virtual 0 (ISO 8601). Windows and schedules are evaluated against it. */
  startAt: z.iso.datetime({ offset: true }).default('2026-01-05T01:00:00Z'),
  cluster: z.strictObject({ name: z.string().min(1).optional(), nodes: z.array(nodeSpecSchema).min(1, 'a cluster needs at least one node') }),
  updates: updatesSchema.prefault({}),
  plan: scenarioPlanSchema,
  faults: z.array(faultSchema).default([]),
  /** The sandbox plays a Palette-managed cluster: Palette's task, crony Jobs and node marks (src/sim/sandbox/palette.ts). */
  palette: paletteScenarioSchema.optional(),
  triggers: z.array(triggerSchema).optional(),
  events: z.array(eventSchema).default([]),
  expect: z.union([expectationSchema, z.array(expectationSchema)], { error: explainExpectation }).optional(),
  /**
   * API chaos when the scenario is served by the sandbox (`patchpilot sandbox`, the equivalence suite): this share of
   * API requests fails transiently (429 with Retry-After, 500, 409 on Node writes) and of watches is dropped. The
   * simulator's own runs are unaffected: the outcomes must be the same.
   */
  apiChaos: z.number().min(0).max(0.5).optional(),
});

type NodeSpecOutput = z.output<typeof nodeSpecSchema>;
export type Updates = z.output<typeof updatesSchema>;

/** One node of the simulated cluster, after `count` is expanded. */
export interface SimNodeSpec {
  name: string;
  os: OsId;
  role: 'control-plane' | 'worker';
  zone: string;
  labels: Record<string, string>;
  kubeletVersion: string;
  pods: { deployment: number; daemonset: number; static: number; bare: number; emptyDir: number };
  packages: string[];
  updates: Updates | null;
  unschedulable: boolean;
}

export type Trigger = z.output<typeof triggerSchema>;
export type ScenarioEvent =
  | { at: number; kind: 'node-added'; node: SimNodeSpec }
  | { at: number; kind: 'exclude' | 'cordon'; node: string }
  | { at: number; kind: 'pause' | 'resume' | 'cancel' | 'approve' | 'reject'; by: string };

export interface Scenario {
  name: string;
  description: string;
  seed: number;
  /** Epoch milliseconds of virtual time 0. */
  startAt: number;
  clusterName: string;
  nodes: SimNodeSpec[];
  updates: Updates;
  plan: Plan;
  /** The plan as written (for recordings and `replay --set`). */
  planInput: Record<string, unknown>;
  faults: Fault[];
  /** Set when the sandbox plays a Palette-managed cluster. */
  palette?: PaletteScenario | null;
  triggers: Trigger[];
  events: ScenarioEvent[];
  /** One per on-demand trigger, in order; empty when the file states no expectations. */
  expect: Expectation[];
  /** Where it came from, for messages. */
  source: string;
  /** The share of API requests the sandbox fails transiently (src/sim/kube-api/chaos.ts); unset is none. */
  apiChaos?: number;
}

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  /** `file:line: field: reason`, one per problem. */
  readonly problems: readonly string[];

  constructor(source: string, problems: readonly string[]) {
    super(`invalid scenario ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** Reads and validates a scenario file. Throws ScenarioError naming the file, line and field of every problem. */
export function loadScenario(file: string, overrides: { seed?: number } = {}): Scenario {
  let text: string;
  try {
    text = readUserFile(file, 'scenario', MAX_SCENARIO_BYTES);
  } catch (err) {
    if (err instanceof UserFileError) throw new ScenarioError(file, [`${file}: ${err.reason}`]);
    throw err;
  }
  return parseScenario(text, file, overrides);
}

export function parseScenario(text: string, source = 'scenario', overrides: { seed?: number } = {}): Scenario {
  let yaml: ParsedYaml;
  try {
    yaml = parseYamlText(text);
  } catch (err) {
    if (err instanceof DocumentError) throw new ScenarioError(source, [`${source}:${err.line ?? 1}: ${err.syntax ? 'YAML syntax: ' : ''}${err.message}`]);
    throw err;
  }
  const { doc, lineCounter } = yaml;
  const locate = locator(doc, lineCounter, source);
  const raw: unknown = yaml.value;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ScenarioError(source, [`${source}:1: the file must be a YAML mapping (name, cluster, plan, faults, expect)`]);
  }
  const parsed = scenarioFileSchema.safeParse(raw);
  // The plan is checked even when the rest is wrong, so that one pass reports every problem.
  const rawPlan = (raw as { plan?: unknown }).plan;
  const rawCluster = (raw as { cluster?: { name?: unknown } }).cluster;
  const planInput = {
    ...(rawPlan && typeof rawPlan === 'object' ? (rawPlan as Record<string, unknown>) : {}),
    cluster: typeof rawCluster?.name === 'string' ? rawCluster.name : String((raw as { name?: unknown }).name ?? 'sim'),
  };
  const planResult = planSchema.safeParse(planInput);
  const planProblems = planResult.success
    ? []
    : planResult.error.issues.map(
        (issue) =>
          `${locate(['plan', ...issue.path])}: ${issue.code === 'unrecognized_keys' ? `unknown plan key(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}` : issue.message}`,
      );
  if (!parsed.success) {
    throw new ScenarioError(source, [
      ...duplicateNamesInRaw(raw, locate),
      ...parsed.error.issues.map((issue) => {
        if (issue.code === 'unrecognized_keys') {
          return `${locate(issue.path, issue.keys[0])}: unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
        }
        return `${locate(issue.path)}: ${issue.message}`;
      }),
      ...planProblems,
    ]);
  }
  const file = parsed.data;
  const problems: string[] = [...planProblems];
  const plan: Plan | null = planResult.success ? planResult.data : null;

  const nodes: SimNodeSpec[] = [];
  const seen = new Map<string, string>();
  const addNode = (spec: SimNodeSpec, path: PropertyKey[]) => {
    const earlier = seen.get(spec.name);
    if (earlier) problems.push(`${locate(path)}: duplicate node name "${spec.name}" (also ${earlier})`);
    else seen.set(spec.name, formatPath(path));
  };
  file.cluster.nodes.forEach((spec, i) => {
    const expanded = expandNode(spec, nodes.length);
    for (const node of expanded) addNode(node, ['cluster', 'nodes', i, 'name']);
    nodes.push(...expanded);
  });
  const events: ScenarioEvent[] = file.events.map((event, i) => {
    if (event.kind === 'node-added') {
      const node = toSimNode(event.node, event.node.name, nodes.length + i);
      addNode(node, ['events', i, 'node', 'name']);
      return { at: event.at, kind: 'node-added', node };
    }
    if (event.kind === 'exclude' || event.kind === 'cordon') return { at: event.at, kind: event.kind, node: event.node };
    return { at: event.at, kind: event.kind, by: event.by };
  });

  const known = (name: string) => seen.has(name);
  const listNames = () => summarizeNames([...seen.keys()]);
  const requireNode = (name: string | undefined, path: PropertyKey[]) => {
    if (name !== undefined && !known(name)) problems.push(`${locate(path)}: no node named "${name}" (nodes: ${listNames()})`);
  };
  file.events.forEach((event, i) => {
    if (event.kind === 'exclude' || event.kind === 'cordon') requireNode(event.node, ['events', i, 'node']);
  });
  const NODELESS: ReadonlySet<FaultKind> = new Set(['api-errors', 'orchestrator-crash', 'palette-stale-timestamp', 'palette-agent-not-ready', 'palette-no-matching-nodes', 'alert-firing', 'blocking-pod']);
  const palettePlayed = file.palette?.managed === true;
  file.faults.forEach((fault, i) => {
    requireNode(fault.node, ['faults', i, 'node']);
    if ((PALETTE_FAULT_KINDS as readonly string[]).includes(fault.kind) && !palettePlayed) {
      problems.push(`${locate(['faults', i, 'kind'])}: a ${fault.kind} fault needs a Palette-managed cluster: add "palette: { managed: true }" to the scenario`);
    } else if ((PALETTE_RUN_STOPPERS.has(fault.kind) || fault.kind === 'palette-reboot-pending') && file.palette?.lastRun === 'none') {
      problems.push(`${locate(['faults', i, 'kind'])}: a ${fault.kind} fault needs a Palette run, but palette.lastRun is "none": leave lastRun out (default "completed")`);
    }
    if (fault.node === undefined && !NODELESS.has(fault.kind)) problems.push(`${locate(['faults', i])}: a ${fault.kind} fault needs a "node"`);
    // A fault that cannot strike in this scenario would let it pass while testing nothing.
    if (fault.kind === 'reboot-required' && !KERNEL_ALIASES.has(fault.package)) {
      problems.push(`${locate(['faults', i, 'package'])}: "${fault.package}": the simulated node needs a reboot for a kernel update only (${[...KERNEL_ALIASES].join(', ')}); leave package out`);
    }
    if (fault.kind === 'postinst-fails' && fault.package !== undefined) {
      const spec = nodes.find((n) => n.name === fault.node);
      const offered = spec?.updates ?? file.updates;
      const names = [...offered.security, ...offered.other];
      if (!names.includes(fault.package)) {
        problems.push(`${locate(['faults', i, 'package'])}: "${fault.package}" is not an update ${fault.node ?? 'the node'} is offered (${names.join(', ') || 'none'}): its postinst would never run`);
      }
    }
    if (fault.kind === 'palette-stale-timestamp' && plan !== null && plan.mode !== 'palette') {
      problems.push(`${locate(['faults', i, 'kind'])}: a palette-stale-timestamp fault needs plan.mode: palette (only Palette's On-Demand timestamp can be stuck)`);
    }
    if (fault.kind === 'orchestrator-crash' && fault.node === undefined && fault.at === undefined) {
      problems.push(`${locate(['faults', i])}: an orchestrator-crash needs a time ("at") or a node and step to crash at`);
    }
  });

  const stoppers = file.faults.map((f, i) => [f, i] as const).filter(([f]) => PALETTE_RUN_STOPPERS.has(f.kind));
  if (stoppers.length > 1) {
    problems.push(
      `${locate(['faults', stoppers[1]![1]])}: ${stoppers.map(([f]) => `${f.kind} on ${f.node ?? '?'}`).join(' and ')}: Palette patches one node at a time, so its run stops at one node; keep one of them`,
    );
  }
  const stopped = stoppers[0]?.[0].node;
  file.faults.forEach((fault, i) => {
    if (fault.kind === 'palette-reboot-pending' && fault.node !== undefined && fault.node === stopped) {
      problems.push(`${locate(['faults', i, 'node'])}: palette-reboot-pending on ${fault.node}, where Palette's run stopped (${stoppers[0]![0].kind}): a reboot is pending only on a node whose Job completed`);
    }
  });

  const written: Trigger[] = file.triggers ?? [{ at: 0, kind: 'on-demand', by: 'sim' }];
  const triggers: Trigger[] = written.map((t, i) =>
    t.kind === 'on-demand' ? { ...t, id: t.id ?? `t${i + 1}` } : t,
  );
  // Under an on-boot plan every node that joins gets a run of its own (patch on join), after the triggers' runs.
  const joinRuns = plan?.trigger.kind === 'on-boot' ? events.filter((e) => e.kind === 'node-added').length : 0;
  const runs = triggers.filter((t) => t.kind === 'on-demand').length + joinRuns;
  if (runs === 0) problems.push(`${locate(['triggers'])}: at least one on-demand trigger is needed`);
  const expect = file.expect === undefined ? [] : Array.isArray(file.expect) ? file.expect : [file.expect];
  if (expect.length > 0 && expect.length !== runs) {
    problems.push(
      joinRuns === 0
        ? `${locate(['expect'])}: ${expect.length} expectation(s) for ${runs} on-demand trigger(s): give one per trigger, in order`
        : `${locate(['expect'])}: ${expect.length} expectation(s) for ${runs} run(s) (the on-demand triggers', then one per node joining under the on-boot plan): give one per run, in order`,
    );
  }
  expect.forEach((e, i) => {
    const path = Array.isArray(file.expect) ? ['expect', i] : ['expect'];
    for (const key of ['patched', 'noUpdates', 'rebooted', 'rebootPending', 'excluded', 'notSelected', 'notStarted', 'cordonedAtEnd'] as const) {
      (e[key] ?? []).forEach((name, j) => requireNode(name, [...path, key, j]));
    }
    for (const name of Object.keys(e.failed ?? {})) requireNode(name, [...path, 'failed', name]);
  });

  if (problems.length > 0 || !plan) throw new ScenarioError(source, problems);
  return {
    name: file.name,
    description: file.description,
    seed: overrides.seed ?? file.seed,
    startAt: Date.parse(file.startAt),
    clusterName: plan.cluster,
    nodes,
    updates: file.updates,
    plan,
    planInput,
    faults: file.faults,
    palette: file.palette?.managed === true ? file.palette : null,
    triggers,
    events: events.sort((a, b) => a.at - b.at),
    expect,
    source,
    ...(file.apiChaos === undefined ? {} : { apiChaos: file.apiChaos }),
  };
}

/** Duplicate node names, read from the raw file: reported with the schema's problems, so one pass shows them all. */
function duplicateNamesInRaw(raw: unknown, locate: (path: readonly PropertyKey[]) => string): string[] {
  const nodes = (raw as { cluster?: { nodes?: unknown } }).cluster?.nodes;
  if (!Array.isArray(nodes)) return [];
  const seen = new Map<string, number>();
  const problems: string[] = [];
  nodes.forEach((node, i) => {
    const { name, count } = (node ?? {}) as { name?: unknown; count?: unknown };
    if (typeof name !== 'string') return;
    const valid = typeof count === 'number' && Number.isInteger(count) && count > 0 && count <= 100_000;
    for (const n of expandedNames(name, valid ? count : undefined)) {
      const earlier = seen.get(n);
      if (earlier !== undefined) problems.push(`${locate(['cluster', 'nodes', i, 'name'])}: duplicate node name "${n}" (also cluster.nodes[${earlier}].name)`);
      else seen.set(n, i);
    }
  });
  return problems;
}

const ZONES = ['zone-a', 'zone-b', 'zone-c'];

// Shared by every node that states no pods of its own (frozen: a node's spec is never changed).
const DEFAULT_PODS = {
  'control-plane': Object.freeze({ deployment: 1, daemonset: 2, static: 4, bare: 0, emptyDir: 0 }),
  worker: Object.freeze({ deployment: 2, daemonset: 1, static: 0, bare: 0, emptyDir: 0 }),
};

function toSimNode(spec: Omit<NodeSpecOutput, 'count'>, name: string, index: number): SimNodeSpec {
  return {
    name,
    os: spec.os,
    role: spec.role,
    zone: spec.zone ?? ZONES[index % ZONES.length]!,
    labels: spec.labels,
    kubeletVersion: spec.kubeletVersion,
    pods: spec.pods ?? DEFAULT_PODS[spec.role],
    packages: spec.packages,
    updates: spec.updates ?? null,
    unschedulable: spec.unschedulable,
  };
}

/** `worker` with count 3: worker-1, worker-2, worker-3. */
function expandedNames(name: string, count: number | undefined): string[] {
  return count === undefined ? [name] : Array.from({ length: count }, (_, i) => `${name}-${i + 1}`);
}

function expandNode(spec: NodeSpecOutput, offset: number): SimNodeSpec[] {
  return expandedNames(spec.name, spec.count).map((name, i) => toSimNode(spec, name, offset + i));
}

/** `cp-1, worker-1 … worker-9 (10 nodes)` rather than a wall of names. */
function summarizeNames(names: string[]): string {
  if (names.length <= 8) return names.join(', ');
  return `${names.slice(0, 6).join(', ')} … ${names.at(-1)} (${names.length} nodes)`;
}

/** Maps a zod path to `file:line: field`, using the deepest part of the path present in the YAML. */
function locator(doc: Document, lines: LineCounter, source: string) {
  return (path: readonly PropertyKey[], key?: string): string => {
    const field = formatPath(key === undefined ? path : [...path, key]) || '(root)';
    let node: YamlNode | null = doc.contents as YamlNode | null;
    let offset = node?.range?.[0] ?? 0;
    for (const part of key === undefined ? path : [...path, key]) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (p.key as { value?: unknown } | null)?.value === part);
        if (!pair) break;
        offset = (pair.key as YamlNode).range?.[0] ?? offset;
        node = pair.value as YamlNode | null;
        if (node?.range && key === undefined) offset = node.range[0];
      } else if (isSeq(node) && typeof part === 'number') {
        const item = node.items[part] as YamlNode | undefined;
        if (!item) break;
        node = item;
        offset = item.range?.[0] ?? offset;
      } else break;
    }
    return `${source}:${lines.linePos(offset).line}: ${field}`;
  };
}
