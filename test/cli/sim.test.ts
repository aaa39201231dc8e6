/**
 * `patchpilot sim` and `patchpilot replay` as a user meets them: the real bin in a scratch directory, judged by exit
 * codes (0 expectations hold, 1 they do not, 2 invalid input), output and the files written.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/patchpilot.js');
const DEMO = join(ROOT, 'fixtures/scenarios/demo.yaml');
const scratch = scratchDirs('cli-sim');

function cli(cwd: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);

interface JsonResult {
  scenario: string;
  seed: number;
  ok: boolean;
  failedExpectations: string[];
  runs: Array<{
    trigger: string;
    outcome: string;
    makespanSeconds: number;
    lowerBoundSeconds: number;
    nodes: Array<{ name: string; os: string; result: string; error: string | null; upgraded: string[]; held: string[]; rebooted: boolean; rebootPending: boolean; cordonedAtEnd: boolean; phases: Record<string, number> }>;
  }>;
}

describe('patchpilot sim', () => {
  it('runs the demo (what npm start runs): plain lines when piped, a summary, expectations held, a recording written', () => {
    const cwd = scratch();
    const run = cli(cwd, 'sim', DEMO, '--speed', '120');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('\u001b[');
    expect(run.stdout).toMatch(/^\d\d:\d\d:\d\d {2}ubuntu-2 +reboot$/m);
    expect(run.stdout).toMatch(/^rocky-2 +rocky-9 +failed +REJOIN_TIMEOUT/m);
    expect(run.stdout).toContain('✓ all expectations hold (1 run)');
    const recording = join(cwd, '.patchpilot/recordings/demo.jsonl');
    expect(existsSync(recording)).toBe(true);
    const lines = readFileSync(recording, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { line: string });
    expect(lines[0]!.line).toBe('header');
    expect(lines.at(-1)!.line).toBe('result');
    expect(lines.filter((l) => l.line === 'observe').length).toBeGreaterThan(5);
  });

  it('the replay the hint after a replay suggests runs, recording beside it instead of over it', () => {
    const cwd = scratch();
    expect(cli(cwd, 'sim', DEMO, '--json').code).toBe(0);
    const first = cli(cwd, 'replay', '.patchpilot/recordings/demo.jsonl');
    expect(first.code, first.stderr).toBe(0);
    const suggested = first.stdout.match(/replay it with another policy: npx patchpilot replay (\S+)/)?.[1];
    expect(suggested).toBe('.patchpilot/recordings/demo.replay.jsonl');
    const replayed = readFileSync(join(cwd, suggested!), 'utf8');
    const second = cli(cwd, 'replay', suggested!);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('recording: .patchpilot/recordings/demo.replay2.jsonl');
    expect(readFileSync(join(cwd, suggested!), 'utf8'), 'the replayed recording is left as it was').toBe(replayed);
  });

  it('prints the JSON document of DESIGN.md with --json, and --seed overrides the seed', () => {
    const run = cli(scratch(), 'sim', DEMO, '--json', '--seed', '99', '--record', '-');
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as JsonResult;
    expect(result).toMatchObject({ scenario: 'demo', seed: 99, ok: true, failedExpectations: [] });
    const node = result.runs[0]!.nodes.find((n) => n.name === 'rocky-2')!;
    expect(node).toMatchObject({ os: 'rocky-9', result: 'failed', error: 'REJOIN_TIMEOUT', rebooted: true, cordonedAtEnd: true });
    expect(Object.keys(node.phases).sort()).toEqual(['drain', 'patch', 'reboot', 'rejoin', 'scan', 'soak']);
    expect(node.held).toContain('kubelet');
    expect(result.runs[0]!.makespanSeconds).toBeGreaterThanOrEqual(result.runs[0]!.lowerBoundSeconds);
  });

  it('exits 1 and names each expectation that does not hold', () => {
    const cwd = scratch();
    const file = join(cwd, 'wrong.yaml');
    writeFileSync(file, readFileSync(DEMO, 'utf8').replace('outcome: partial', 'outcome: succeeded'));
    const run = cli(cwd, 'sim', file, '--record', '-');
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('✗ 1 expectation(s) failed:');
    expect(run.stdout).toMatch(/run 1 \(trigger t1\): outcome is partial, expected succeeded/);
  });

  it('exits 2 on invalid input, naming the file, the line and the field, without a stack trace', () => {
    const cwd = scratch();
    const file = join(cwd, 'bad.yaml');
    writeFileSync(file, 'name: bad\ncluster:\n  nodes:\n    - { name: a, os: ubuntu-22.04 }\n    - { name: a, os: rocky-9 }\nfaults:\n  - { node: b, kind: meteor }\n');
    const run = cli(cwd, 'sim', file);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`${file}:5: cluster.nodes[1].name: duplicate node name "a"`);
    expect(run.stderr).toContain(`${file}:7: faults[0].kind: unknown fault kind`);
    noStackTrace(run.stderr);
    writeFileSync(file, 'name: bad\ncluster: [\n');
    const syntax = cli(cwd, 'sim', file);
    expect(syntax.code).toBe(2);
    expect(syntax.stderr).toMatch(/bad\.yaml:\d+: YAML syntax/);
    const missing = cli(cwd, 'sim', 'nope.yaml');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.yaml: does not exist');
  });

  it('writes a self-contained HTML report with --report', () => {
    const cwd = scratch();
    const run = cli(cwd, 'sim', DEMO, '--report', 'out/demo.html', '--record', '-');
    expect(run.code, run.stderr).toBe(0);
    const html = readFileSync(join(cwd, 'out/demo.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('REJOIN_TIMEOUT');
    expect(html).not.toMatch(/<link|src="http/);
  });
});

describe('patchpilot replay', () => {
  it('replays a recording with another policy and says what changed; bad settings exit 2', () => {
    const cwd = scratch();
    expect(cli(cwd, 'sim', DEMO, '--record', 'demo.jsonl').code).toBe(0);
    const same = cli(cwd, 'replay', 'demo.jsonl', '--record', '-');
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/t1: outcome partial -> partial; makespan (\S+) -> \1/);
    const serial = cli(cwd, 'replay', 'demo.jsonl', '--set', 'concurrency=1', '--json', '--record', '-');
    expect(serial.code, serial.stderr).toBe(0);
    const result = JSON.parse(serial.stdout) as JsonResult & { runs: Array<{ concurrency: number }> };
    expect(result.runs[0]!.concurrency).toBe(1);
    const bad = cli(cwd, 'replay', 'demo.jsonl', '--set', 'concurrency=0');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/concurrency: must be at least 1/);
    noStackTrace(bad.stderr);
    const notRecording = cli(cwd, 'replay', DEMO);
    expect(notRecording.code).toBe(2);
    expect(notRecording.stderr).toMatch(/not a JSON line/);
  });
});
