/**
 * What a scenario says must happen, checked against what did: the outcome, which nodes ended how, and the safety
 * invariants (the properties an operator relies on whatever goes wrong). Every failed expectation is one sentence.
 */
import { resolveLimits } from '../engine/plan.ts';
import type { Plan } from '../engine/plan.ts';
import type { SimCluster } from './cluster.ts';
import type { SimNodeResult, SimRunResult } from './runner.ts';
import type { Expectation, Invariant, Scenario } from './scenario.ts';

export interface InvariantResult {
  name: Invariant;
  ok: boolean;
  detail: string;
}

/**
 * Failures after which the engine keeps a healthy node cordoned on purpose, for a human. Stated here again rather than
 * imported from the node machine on purpose: an oracle that reads the implementation's list cannot catch it growing.
 */
const KEPT_CORDONED = new Set(['DPKG_INTERRUPTED', 'KUBELET_CHANGED']);

/**
 * The invariants of one run. "one-node-at-a-time" is a requirement only where the plan asks for one node at a time
 * (or the scenario names it), so it is left out of runs with a higher concurrency.
 */
export function checkInvariants(plan: Plan, nodes: readonly SimNodeResult[], stats: SimCluster['stats'], requested: readonly Invariant[] = []): InvariantResult[] {
  const result = (name: Invariant, ok: boolean, good: string, bad: string): InvariantResult => ({ name, ok, detail: ok ? good : bad });
  const leftCordoned = nodes.filter((n) => {
    if (!n.cordonedAtEnd) return false;
    if (n.error === 'REJOIN_TIMEOUT' || n.error === 'NODE_NOT_READY') return false;
    if (n.error !== null && KEPT_CORDONED.has(n.error)) return false;
    if (n.error === 'DRAIN_TIMEOUT' && plan.drain.onTimeout === 'keep-cordoned') return false;
    return true;
  });
  // Percentages are of the nodes the run selected (every node it considered, patched or not).
  const selected = nodes.filter((n) => n.result !== 'not-selected' && n.result !== 'excluded').length;
  const { concurrency } = resolveLimits(plan, selected);
  const cordonedWithout = nodes.filter((n) => n.result === 'no-updates' && n.timeline.some((e) => e.step === 'cordon')).map((n) => n.name);
  const twice = [...stats.patchJobs.entries()].filter(([, count]) => count > 1).map(([key]) => key);
  const k8s = [...new Set([...stats.kubernetesUpgraded, ...stats.heldUpgraded])];
  const all = [
    result(
      'no-node-left-cordoned',
      leftCordoned.length === 0,
      'no healthy node was left cordoned by patchpilot',
      `left cordoned by patchpilot while healthy: ${leftCordoned.map((n) => n.name).join(', ')}`,
    ),
    result('k8s-packages-unchanged', k8s.length === 0, 'no Kubernetes, runtime or held package was upgraded', `upgraded anyway: ${k8s.join(', ')}`),
    result(
      'one-node-at-a-time',
      stats.maxCordonedByUs <= 1,
      'never more than one node cordoned by patchpilot at once',
      `${stats.maxCordonedByUs} nodes were cordoned by patchpilot at once`,
    ),
    result(
      'concurrency-respected',
      stats.maxCordonedByUs <= concurrency,
      `at most ${concurrency} node(s) in maintenance at once`,
      `${stats.maxCordonedByUs} nodes were cordoned by patchpilot at once (concurrency ${plan.concurrency})`,
    ),
    result(
      'control-plane-one-at-a-time',
      stats.maxControlPlanesCordoned <= 1,
      'never more than one control-plane node in maintenance',
      `${stats.maxControlPlanesCordoned} control-plane nodes were in maintenance at once`,
    ),
    result('patched-at-most-once', twice.length === 0, 'every node was patched at most once for this hash', `patched twice for one hash: ${twice.join(', ')}`),
    result(
      'no-updates-never-cordoned',
      cordonedWithout.length === 0,
      'no node without updates was cordoned',
      `cordoned although nothing applied: ${cordonedWithout.join(', ')}`,
    ),
    result(
      'cordoned-before-workloads',
      stats.workloadsBeforeCordon.length === 0,
      'every node that joined was cordoned before workloads landed on it',
      `workloads landed before the cordon on: ${stats.workloadsBeforeCordon.join(', ')}`,
    ),
  ];
  return all.filter((i) => i.name !== 'one-node-at-a-time' || concurrency === 1 || requested.includes(i.name));
}

export function checkExpectations(scenario: Scenario, runs: readonly SimRunResult[]): string[] {
  const failures: string[] = [];
  scenario.expect.forEach((expected, i) => {
    const run = runs[i];
    const label = `run ${i + 1}${run ? ` (trigger ${run.trigger})` : ''}`;
    if (!run) {
      failures.push(`${label}: expected a run, but only ${runs.length} happened`);
      return;
    }
    failures.push(...checkRun(expected, run).map((f) => `${label}: ${f}`));
  });
  return failures;
}

const LISTS: ReadonlyArray<[keyof Expectation & string, (n: SimNodeResult) => boolean]> = [
  ['patched', (n) => n.result === 'patched'],
  ['noUpdates', (n) => n.result === 'no-updates'],
  ['rebooted', (n) => n.rebooted],
  ['rebootPending', (n) => n.rebootPending],
  ['excluded', (n) => n.result === 'excluded'],
  ['notSelected', (n) => n.result === 'not-selected'],
  ['notStarted', (n) => n.result === 'not-started'],
  ['cordonedAtEnd', (n) => n.cordonedAtEnd],
];

/** One run against one expectation (also used per field by the JUnit report, src/sim/batch.ts). */
export function checkRun(expected: Expectation, run: SimRunResult): string[] {
  const failures: string[] = [];
  if (expected.outcome !== undefined && expected.outcome !== run.outcome) {
    failures.push(`outcome is ${run.outcome}${run.reason ? ` (${run.reason})` : ''}, expected ${expected.outcome}`);
  }
  if (expected.reason !== undefined && !(run.reason ?? '').includes(expected.reason)) {
    failures.push(`reason is ${run.reason === null ? 'empty' : `"${run.reason}"`}, expected it to mention "${expected.reason}"`);
  }
  for (const [key, has] of LISTS) {
    const want = expected[key] as string[] | undefined;
    if (want === undefined) continue;
    const got = run.nodes.filter(has).map((n) => n.name);
    const missing = want.filter((n) => !got.includes(n));
    const extra = got.filter((n) => !want.includes(n));
    if (missing.length > 0 || extra.length > 0) {
      const parts = [missing.length ? `missing ${missing.join(', ')}` : '', extra.length ? `unexpected ${extra.join(', ')}` : ''].filter(Boolean);
      failures.push(`${key} is [${got.join(', ')}], expected [${want.join(', ')}] (${parts.join('; ')})`);
    }
  }
  if (expected.failed !== undefined) {
    const got = new Map(run.nodes.filter((n) => n.result === 'failed').map((n) => [n.name, n.error ?? '?']));
    for (const [name, code] of Object.entries(expected.failed)) {
      const actual = got.get(name);
      if (actual === undefined) failures.push(`${name} did not fail (it ended ${run.nodes.find((n) => n.name === name)?.result ?? 'absent'}), expected ${code}`);
      else if (actual !== code) failures.push(`${name} failed with ${actual}, expected ${code}`);
    }
    for (const [name, code] of got) if (!(name in expected.failed)) failures.push(`${name} failed with ${code}, which the scenario does not expect`);
  }
  if (expected.upgraded !== undefined) {
    for (const node of run.nodes.filter((n) => n.result === 'patched')) {
      const missing = expected.upgraded.filter((p) => !node.upgraded.some((u) => u === p || u.startsWith(`${p}-`) || (p === 'linux-image' && (u === 'kernel' || u.startsWith('linux-image')))));
      if (missing.length > 0) failures.push(`${node.name} did not upgrade ${missing.join(', ')} (upgraded: ${node.upgraded.join(', ') || 'nothing'})`);
    }
  }
  for (const name of expected.invariants) {
    const invariant = run.invariants.find((i) => i.name === name);
    if (invariant && !invariant.ok) failures.push(`invariant ${name} broken: ${invariant.detail}`);
  }
  return failures;
}

