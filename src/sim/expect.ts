/**
 * What a scenario says must happen, checked against what did: the outcome, which nodes ended how, and the safety
 * invariants a scenario names (judged in invariants.ts). Every failed expectation is one sentence.
 */
import type { SimNodeResult, SimRunResult } from './runner.ts';
import type { Expectation, Scenario } from './scenario.ts';

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

