/**
 * `patchpilot sim A.yaml B.yaml --junit out.xml` as CI runs it: the real bin, scenarios in worker threads, the exit
 * code, and the JUnit file read by a parser no one here wrote (Python's xml.etree from Debian's /usr/bin/python3).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { junitXml } from '../../src/sim/batch.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/patchpilot.js');
const SCENARIOS = join(ROOT, 'fixtures/scenarios');
const PYTHON = '/usr/bin/python3';
const hasPython = existsSync(PYTHON);
const scratch = scratchDirs('sim-batch');
if (!hasPython) console.warn(`sim-batch.test.ts: the JUnit files are checked by patchpilot's own reading only: ${PYTHON} is not installed`);

function cli(cwd: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

interface ParsedCase {
  classname: string;
  name: string;
  failure: string | null;
  message: string | null;
  error: string | null;
}

/** The JUnit file as Python's standard XML parser reads it. */
function parseJunit(file: string): { tests: number; failures: number; errors: number; cases: ParsedCase[] } {
  const script = `
import json, sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == 'testsuites', root.tag
cases = []
for suite in root.findall('testsuite'):
    assert int(suite.get('tests')) == len(suite.findall('testcase'))
    for case in suite.findall('testcase'):
        f = case.find('failure'); e = case.find('error')
        cases.append({'classname': case.get('classname'), 'name': case.get('name'),
                      'failure': f.text if f is not None else None, 'message': (f if f is not None else e).get('message') if (f is not None or e is not None) else None,
                      'error': e.text if e is not None else None})
print(json.dumps({'tests': int(root.get('tests')), 'failures': int(root.get('failures')), 'errors': int(root.get('errors')), 'cases': cases}))
`;
  const run = spawnSync(PYTHON, ['-c', script, file], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`python3 could not read ${file}: ${run.stderr}`);
  return JSON.parse(run.stdout) as ReturnType<typeof parseJunit>;
}

const BROKEN_EXPECTATION = `
name: wrong-expectation
seed: 3
cluster:
  nodes:
    - { name: worker, os: ubuntu-22.04, count: 2 }
updates: { security: [openssl] }
plan: { concurrency: 1 }
faults:
  - { node: worker-2, kind: disk-full }
expect:
  outcome: succeeded
  patched: [worker-1, worker-2]
  invariants: [no-node-left-cordoned]
`;

describe('patchpilot sim with many scenarios', () => {
  it.skipIf(!hasPython)(`writes JUnit XML with one case per run and expectation, and exits 2 when a file is invalid${hasPython ? '' : ' (skipped: no /usr/bin/python3)'}`, { timeout: 120_000 }, () => {
    const cwd = scratch();
    writeFileSync(join(cwd, 'wrong.yaml'), BROKEN_EXPECTATION);
    writeFileSync(join(cwd, 'invalid.yaml'), 'name: invalid\ncluster: {}\n');
    const run = cli(cwd, 'sim', join(SCENARIOS, 'demo.yaml'), join(SCENARIOS, 'pdb-*.yaml'), 'wrong.yaml', 'invalid.yaml', '--junit', 'reports/sim.xml', '--jobs', '2');
    // The invalid file makes it 2 (bad input), though the other scenarios all ran and were reported.
    expect(run.code, run.stderr).toBe(2);
    expect(run.stderr).toBe('error: a file is not a valid scenario: invalid.yaml (the others ran)\n');
    expect(run.stdout).toMatch(/✓ demo \(.*demo\.yaml\): (\d+)\/\1 hold/);
    expect(run.stdout).toMatch(/✗ wrong-expectation/);
    const report = parseJunit(join(cwd, 'reports/sim.xml'));
    const suites = new Set(report.cases.map((c) => c.classname));
    expect([...suites].sort()).toEqual(['demo', 'invalid.yaml', 'pdb-blocks-drain', 'pdb-blocks-drain-briefly', 'wrong-expectation']);
    expect(report.tests).toBe(report.cases.length);
    const wrong = report.cases.filter((c) => c.classname === 'wrong-expectation');
    expect(wrong.map((c) => c.name)).toEqual(expect.arrayContaining(['run 1 (trigger t1): outcome', 'run 1 (trigger t1): patched', 'run 1 (trigger t1): invariant no-node-left-cordoned']));
    const outcome = wrong.find((c) => c.name.endsWith(': outcome'));
    expect(outcome?.failure).toMatch(/^outcome is (partial|halted|failed).*, expected succeeded/);
    expect(outcome?.message).toBe(outcome?.failure?.split('\n')[0]);
    expect(wrong.find((c) => c.name.endsWith(': patched'))?.failure).toMatch(/missing worker-2/);
    expect(wrong.find((c) => c.name.endsWith('no-node-left-cordoned'))?.failure).toBeNull();
    const invalid = report.cases.filter((c) => c.classname === 'invalid.yaml');
    expect(invalid).toHaveLength(1);
    expect(invalid[0]?.error).toMatch(/invalid\.yaml/);
    expect(report.errors).toBe(1);
    expect(report.failures).toBe(report.cases.filter((c) => c.failure !== null).length);
    expect(report.cases.filter((c) => c.classname === 'demo').every((c) => c.failure === null)).toBe(true);
  });

  it('exits 0 when every scenario of a directory holds', { timeout: 120_000 }, () => {
    const cwd = scratch();
    const run = cli(cwd, 'sim', join(SCENARIOS, 'reboot-*.yaml'), join(SCENARIOS, 'exclude-disabled.yaml'), '--junit', 'out.xml');
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/3 scenario\(s\), \d+ check\(s\), 0 failing/);
    if (hasPython) expect(parseJunit(join(cwd, 'out.xml')).failures).toBe(0);
  });

  it('names an argument that matches nothing, exit 2', () => {
    const run = cli(scratch(), 'sim', 'nothing/*.yaml', '--junit', 'x.xml');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: no scenario file matches "nothing\/\*\.yaml"/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it.skipIf(!hasPython)('escapes what XML cannot carry as it is', () => {
    const file = join(scratch(), 'escape.xml');
    const nasty = 'node <a> & "b" \'c\' \u0001 ]]> end';
    writeFileSync(file, junitXml([{ file: 'f&.yaml', scenario: 's<1>', seconds: 0.5, cases: [{ scenario: 's<1>', name: 'n"1', failure: `${nasty}\nsecond line` }] }], new Date(0)));
    const report = parseJunit(file);
    expect(report.cases[0]).toMatchObject({ classname: 's<1>', name: 'n"1', failure: 'node <a> & "b" \'c\'  ]]> end\nsecond line', message: 'node <a> & "b" \'c\'  ]]> end' });
    expect(readFileSync(file, 'utf8')).not.toContain('\u0001');
  });
});
