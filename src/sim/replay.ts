/**
 * Recordings and replay. A recording is JSONL: a header with the scenario (cluster, plan, faults, triggers, events),
 * then every engine event and every observation of a node (how long its drain took and what blocked it, the agent
 * report and how long the Job ran, how long its reboot took and whether it came back, which API calls failed), then
 * the result. A replay rebuilds the scenario from the header, applies `--set` changes to the plan, and makes every node
 * do what it was recorded doing: the engine's decisions are the only thing that can differ.
 */
import { MAX_RECORDING_BYTES, readUserFile, UserFileError } from '../io/user-file.ts';
import { z } from 'zod';
import { DocumentError, parseJsonText, parseYamlScalar } from '../engine/documents.ts';
import { describeZodIssues, parsePlan, PlanError } from '../engine/plan.ts';
import { agentReportSchema } from '../engine/report.ts';
import { OS_IDS } from './os.ts';
import { CLUSTER_WIDE, type Observation, type RecordedBehaviour } from './cluster-state.ts';
import type { SimResult } from './runner.ts';
import { recordingHeader } from './runner.ts';
import { FAULT_KINDS, ScenarioError, type Scenario } from './scenario.ts';

type Header = ReturnType<typeof recordingHeader>;

/** A duration or time in a recording: a whole number of milliseconds, at most a year (an edited 1e300 is no run). */
const millis = z.number().int().min(0).max(366 * 86_400_000);

/**
 * The observations a replay imposes on its nodes, checked as the header is: an edited report ("result": "exploded")
 * or duration ("ms": "abc") would otherwise make the replay fail inside the engine, or quietly run other durations.
 * Lines of other types (node-state, fault) are read only for the timeline and pass as they are.
 */
const observationSchema = z.discriminatedUnion('type', [
  z.looseObject({
    type: z.literal('drain'),
    at: millis,
    node: z.string().min(1),
    ms: millis,
    blocked: z.array(z.looseObject({ pod: z.string(), namespace: z.string(), reason: z.string() })),
    blockedForMs: millis.nullable(),
  }),
  z.looseObject({
    type: z.literal('patch'),
    at: millis,
    node: z.string().min(1),
    job: z.string(),
    ms: millis,
    report: agentReportSchema,
    diesWithoutReport: z.boolean(),
    downloadOnly: z.boolean(),
    reportOnly: z.boolean().optional(),
  }),
  z.looseObject({ type: z.literal('reboot'), at: millis, node: z.string().min(1), shutdownMs: millis, bootMs: millis.nullable() }),
  z.looseObject({ type: z.literal('api-error'), at: millis, node: z.string().min(1), call: z.string(), ordinal: z.number().int().min(0), status: z.number().int().min(100).max(599) }),
  z.looseObject({ type: z.literal('node-state'), at: millis }),
  z.looseObject({ type: z.literal('fault'), at: millis }),
]);

/** The shape a header must have before a replay trusts it (a hand-edited or damaged file is a user mistake). */
const headerSchema = z.looseObject({
  name: z.string(),
  description: z.string().optional(),
  seed: z.number().int(),
  startAt: z.string().refine((text) => !Number.isNaN(Date.parse(text)), 'not a date'),
  clusterName: z.string(),
  nodes: z.array(
    z.looseObject({
      name: z.string().min(1),
      os: z.enum(OS_IDS),
      role: z.enum(['control-plane', 'worker']),
      zone: z.string(),
      labels: z.record(z.string(), z.string()),
      kubeletVersion: z.string(),
      pods: z.looseObject({ deployment: z.number().int().min(0), daemonset: z.number().int().min(0), static: z.number().int().min(0) }),
      packages: z.array(z.string()),
      unschedulable: z.boolean(),
    }),
  ),
  updates: z.looseObject({ security: z.array(z.string()), other: z.array(z.string()) }),
  plan: z.record(z.string(), z.unknown()),
  faults: z.array(z.looseObject({ kind: z.enum(FAULT_KINDS), node: z.string().optional(), at: z.number().optional() })),
  triggers: z.array(z.looseObject({ at: z.number(), kind: z.enum(['on-demand', 'unstick']), by: z.string() })),
  events: z.array(z.looseObject({ at: z.number(), kind: z.string() })),
  expect: z.array(z.looseObject({})),
});

export interface Recording {
  header: Header;
  observations: Observation[];
  result: SimResult | null;
}

export function readRecording(file: string): Recording {
  let text: string;
  try {
    text = readUserFile(file, 'recording', MAX_RECORDING_BYTES);
  } catch (err) {
    if (err instanceof UserFileError) throw new ScenarioError(file, [`${file}: ${err.reason}`]);
    throw err;
  }
  return parseRecording(text, file);
}

export function parseRecording(text: string, source = 'recording'): Recording {
  let header: Header | null = null;
  const observations: Observation[] = [];
  /** The line of each observation naming a node, to check the name once the header is known. */
  const namedAt: Array<{ node: string; line: number }> = [];
  let result: SimResult | null = null;
  let resultLine = 0;
  const lines = text.split('\n');
  for (const [i, raw] of lines.entries()) {
    if (raw.trim() === '') continue;
    let line: { line?: string } & Record<string, unknown>;
    try {
      line = parseJsonText(raw) as typeof line;
    } catch {
      throw new ScenarioError(source, [`${source}:${i + 1}: not a JSON line${i === lines.length - 1 ? ' (the recording is cut short)' : ''}`]);
    }
    if (line === null || typeof line !== 'object' || Array.isArray(line)) throw new ScenarioError(source, [`${source}:${i + 1}: not a recording line (a JSON object)`]);
    if (line.line === 'header') {
      if (line.format !== 'patchpilot-recording/1') {
        throw new ScenarioError(source, [`${source}:${i + 1}: format: "${String(line.format)}" is not a recording this version can replay (patchpilot-recording/1)`]);
      }
      const checked = headerSchema.safeParse(line.scenario);
      if (!checked.success) throw new ScenarioError(source, [`${source}:${i + 1}: header: ${describeZodIssues(checked.error, 'scenario')[0]}`]);
      header = line.scenario as Header;
    } else if (line.line === 'observe') {
      const { line: _kind, ...observation } = line;
      const checked = observationSchema.safeParse(observation);
      if (!checked.success) throw new ScenarioError(source, [`${source}:${i + 1}: observation: ${describeZodIssues(checked.error)[0]}`]);
      const node = (observation as { node?: unknown }).node;
      if (typeof node === 'string') namedAt.push({ node, line: i + 1 });
      observations.push(observation as unknown as Observation);
    } else if (line.line === 'result') {
      result = line.result as SimResult;
      resultLine = i + 1;
    }
  }
  if (!header) throw new ScenarioError(source, [`${source}:1: no header line: this is not a patchpilot recording`]);
  // An observation of a node the cluster never had (an edited name) would be ignored, and the replay differ silently.
  const nodes = new Set([
    CLUSTER_WIDE,
    ...header.nodes.map((n) => n.name),
    ...header.events.flatMap((e) => (e.kind === 'node-added' ? [String((e as { node?: { name?: unknown } }).node?.name)] : [])),
  ]);
  const stranger = namedAt.find((o) => !nodes.has(o.node));
  if (stranger) throw new ScenarioError(source, [`${source}:${stranger.line}: observation: node ${JSON.stringify(stranger.node)} is not in the recorded cluster`]);
  // A recording is written as the run goes and ends with its result: without one it was cut short (a full disk, an
  // interrupted run, a partial copy), and a replay of part of a run would compare against nothing.
  if (!result) throw new ScenarioError(source, [`${source}:${lines.length}: no result line: the recording is incomplete (truncated, or its run was interrupted)`]);
  // Lines of two recordings pasted together: the replay would compare one scenario's run against another's result.
  const { scenario, seed } = (result ?? {}) as { scenario?: unknown; seed?: unknown };
  if (scenario !== header.name || seed !== header.seed) {
    throw new ScenarioError(source, [`${source}:${resultLine}: the result is of scenario ${JSON.stringify(scenario)} with seed ${JSON.stringify(seed)}, but the header of ${JSON.stringify(header.name)} with seed ${header.seed}: lines of two recordings were put together`]);
  }
  return { header, observations, result };
}

/** Each node's first recorded drain, patch, reboot, and every API error it met. */
export function recordedBehaviours(observations: readonly Observation[]): Map<string, RecordedBehaviour> {
  const byNode = new Map<string, RecordedBehaviour>();
  const of = (node: string) => {
    let b = byNode.get(node);
    if (!b) byNode.set(node, (b = {}));
    return b;
  };
  for (const o of observations) {
    switch (o.type) {
      case 'drain':
        of(o.node).drain ??= { ms: o.ms, blocked: o.blocked, blockedForMs: o.blockedForMs };
        break;
      case 'patch':
        if (!o.downloadOnly && !o.reportOnly) of(o.node).patch ??= { report: o.report, durationMs: o.ms, diesWithoutReport: o.diesWithoutReport };
        break;
      case 'reboot':
        of(o.node).reboot ??= { shutdownMs: o.shutdownMs, bootMs: o.bootMs };
        break;
      case 'api-error': {
        const b = of(o.node);
        b.apiErrors ??= new Map();
        b.apiErrors.set(`${o.call}#${o.ordinal}`, o.status);
        break;
      }
      case 'node-state':
      case 'fault':
        break;
    }
  }
  return byNode;
}

/**
 * The plan settings whose keys are the user's own (label keys, which hold dots): after one of them, the rest of the
 * path is one key, so `nodeSelector.kubernetes.io/os=linux` selects on the label `kubernetes.io/os`.
 */
const KEYED_BY_LABEL = new Set(['nodeSelector']);

function settingPath(key: string): string[] {
  const parts = key.split('.');
  const keyed = parts.findIndex((part) => KEYED_BY_LABEL.has(part));
  return keyed < 0 || keyed === parts.length - 1 ? parts : [...parts.slice(0, keyed + 1), parts.slice(keyed + 1).join('.')];
}

/** `concurrency=2`, `drain.onTimeout=keep-cordoned`: values are YAML scalars (numbers, booleans, strings), read as plan files are. */
export function applySettings(plan: Record<string, unknown>, settings: readonly string[]): Record<string, unknown> {
  const next = structuredClone(plan);
  for (const setting of settings) {
    const eq = setting.indexOf('=');
    if (eq <= 0) throw new PlanError([`--set ${setting}: expected key=value (for example concurrency=2)`], '--set');
    const path = settingPath(setting.slice(0, eq));
    // A key like __proto__ would reach Object.prototype (and change every object in the process), not the plan.
    const unsafe = path.find((key) => key === '__proto__' || key === 'constructor' || key === 'prototype' || key === '');
    if (unsafe !== undefined) throw new PlanError([`--set ${setting}: "${unsafe}" is not a plan setting`], '--set');
    let value: unknown;
    try {
      value = parseYamlScalar(setting.slice(eq + 1), path.join('.'));
    } catch (err) {
      if (err instanceof DocumentError) throw new PlanError([`--set ${setting}: ${err.message}`], '--set');
      throw err;
    }
    let target = next;
    for (const key of path.slice(0, -1)) {
      const child = target[key];
      target = (target[key] = child && typeof child === 'object' && !Array.isArray(child) ? child : {}) as Record<string, unknown>;
    }
    target[path.at(-1)!] = value;
  }
  return next;
}

/** The scenario a recording was made from, with the plan changed by `--set`. */
export function scenarioFromRecording(recording: Recording, settings: readonly string[] = [], source = 'recording'): Scenario {
  const h = recording.header;
  const planInput = applySettings(h.plan, settings);
  const plan = parsePlan(planInput, settings.length > 0 ? `plan after --set ${settings.join(' ')}` : `plan in ${source}`);
  return {
    name: h.name,
    description: h.description,
    seed: h.seed,
    startAt: Date.parse(h.startAt),
    clusterName: h.clusterName,
    nodes: h.nodes,
    updates: h.updates,
    plan,
    planInput,
    faults: h.faults,
    triggers: h.triggers,
    events: h.events,
    // A replay with another policy answers "what would have happened"; the original expectations need not hold.
    expect: settings.length === 0 ? h.expect : [],
    source,
  };
}
