/**
 * Many scenarios at once, for CI: which files an argument names (a file, a directory, a glob), what each scenario's
 * result becomes as test cases (one per run and stated expectation, and one per invariant checked), and the JUnit XML
 * that CI systems read. Running them in worker threads is src/cli/sim-batch.ts's business; this module is pure.
 */
import { globSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkRun } from './expect.ts';
import type { SimResult } from './runner.ts';
import type { Expectation, Scenario } from './scenario.ts';

export interface TestCase {
  /** The scenario's name (JUnit classname). */
  scenario: string;
  name: string;
  /** Null when the case holds; else the failure message. */
  failure: string | null;
  /** An error that prevented the check (invalid file, a stalled run), as JUnit's <error>. */
  error?: string;
}

export interface ScenarioOutcome {
  file: string;
  scenario: string;
  cases: TestCase[];
  /** Wall-clock seconds the scenario took (reported, never asserted). */
  seconds: number;
  /** The file could not be loaded (missing, not a scenario, invalid): bad input, which the command exits 2 for. */
  invalid?: true;
}

/** Scenario files named by command-line arguments: files as given, directories' *.yaml/*.yml, globs expanded. */
export function expandScenarioArgs(args: readonly string[]): { files: string[]; unmatched: string[] } {
  const files: string[] = [];
  const unmatched: string[] = [];
  const add = (file: string) => {
    if (!files.includes(file)) files.push(file);
  };
  for (const arg of args) {
    const stats = statOrNull(arg);
    if (stats?.isDirectory()) {
      const inside = readdirSync(arg).filter((f) => /\.ya?ml$/.test(f)).sort();
      if (inside.length === 0) unmatched.push(arg);
      inside.forEach((f) => add(join(arg, f)));
    } else if (stats?.isFile()) {
      add(arg);
    } else if (/[*?[{]/.test(arg)) {
      const matched = globSync(arg).filter((f) => statOrNull(f)?.isFile()).sort();
      if (matched.length === 0) unmatched.push(arg);
      matched.forEach(add);
    } else {
      // A plain name that does not exist: the loader names the missing file in its own words.
      add(arg);
    }
  }
  return { files, unmatched };
}

function statOrNull(path: string) {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

const FIELDS = ['outcome', 'reason', 'patched', 'noUpdates', 'failed', 'rebooted', 'rebootPending', 'excluded', 'notSelected', 'notStarted', 'cordonedAtEnd', 'upgraded'] as const;

/** A scenario's result as test cases: per run, one case per expectation it states and one per invariant checked. */
export function scenarioCases(scenario: Scenario, result: SimResult): TestCase[] {
  const cases: TestCase[] = [];
  const name = scenario.name;
  result.runs.forEach((run, i) => {
    const label = `run ${i + 1} (trigger ${run.trigger})`;
    const expected = scenario.expect[i];
    if (expected) {
      for (const field of FIELDS) {
        if (expected[field] === undefined) continue;
        const single = { invariants: [], [field]: expected[field] } as Expectation;
        const failures = checkRun(single, run);
        cases.push({ scenario: name, name: `${label}: ${field}`, failure: failures.length > 0 ? failures.join('\n') : null });
      }
    }
    for (const invariant of run.invariants) {
      // An invariant the scenario requires is an expectation; the others are checked on every run all the same.
      cases.push({ scenario: name, name: `${label}: invariant ${invariant.name}`, failure: invariant.ok ? null : `invariant ${invariant.name} broken: ${invariant.detail}` });
    }
  });
  // Expected runs that never happened.
  for (let i = result.runs.length; i < scenario.expect.length; i++) {
    cases.push({ scenario: name, name: `run ${i + 1}`, failure: `expected a run, but only ${result.runs.length} happened` });
  }
  if (cases.length === 0) cases.push({ scenario: name, name: 'runs to the end', failure: null });
  return cases;
}

/** True when every case holds. */
export function allHold(outcomes: readonly ScenarioOutcome[]): boolean {
  return outcomes.every((o) => o.cases.every((c) => c.failure === null && c.error === undefined));
}

/** XML 1.0 text: the five escapes, and the control characters XML cannot carry at all dropped. */
function xmlText(value: string): string {
  return value
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const firstLine = (text: string) => (text.split('\n')[0] ?? '').slice(0, 500);

/** The JUnit XML (the de-facto schema read by GitHub Actions reporters, Jenkins, GitLab): one suite per scenario. */
export function junitXml(outcomes: readonly ScenarioOutcome[], timestamp: Date): string {
  const count = (o: ScenarioOutcome, what: 'failure' | 'error') => o.cases.filter((c) => (what === 'error' ? c.error !== undefined : c.failure !== null && c.error === undefined)).length;
  const total = outcomes.reduce((n, o) => n + o.cases.length, 0);
  const failures = outcomes.reduce((n, o) => n + count(o, 'failure'), 0);
  const errors = outcomes.reduce((n, o) => n + count(o, 'error'), 0);
  const seconds = outcomes.reduce((n, o) => n + o.seconds, 0);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="patchpilot sim" tests="${total}" failures="${failures}" errors="${errors}" time="${seconds.toFixed(3)}" timestamp="${timestamp.toISOString()}">`,
  ];
  for (const o of outcomes) {
    lines.push(`  <testsuite name="${xmlText(o.scenario)}" file="${xmlText(o.file)}" tests="${o.cases.length}" failures="${count(o, 'failure')}" errors="${count(o, 'error')}" skipped="0" time="${o.seconds.toFixed(3)}">`);
    for (const c of o.cases) {
      const head = `    <testcase classname="${xmlText(c.scenario)}" name="${xmlText(c.name)}" file="${xmlText(o.file)}" time="0"`;
      if (c.error !== undefined) lines.push(`${head}>`, `      <error message="${xmlText(firstLine(c.error))}" type="error">${xmlText(c.error)}</error>`, '    </testcase>');
      else if (c.failure !== null) lines.push(`${head}>`, `      <failure message="${xmlText(firstLine(c.failure))}" type="expectation">${xmlText(c.failure)}</failure>`, '    </testcase>');
      else lines.push(`${head}/>`);
    }
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>', '');
  return lines.join('\n');
}
