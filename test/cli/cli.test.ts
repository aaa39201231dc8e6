/**
 * The CLI as a user meets it: the real `bin/patchpilot.js` in a scratch directory, judged by exit codes and output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { until } from '../helpers/until.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
const scratch = scratchDirs('cli');

function cli(cwd: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at .+\(.+:\d+:\d+\)/);

describe('patchpilot demo (npm start)', () => {
  it('patches the demo cluster, records it, and the audit log verifies', () => {
    const cwd = scratch();
    const run = cli(cwd, 'demo', '--json');
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { outcome: string; runId: string; tally: Record<string, number>; nodes: { node: string; result: string; error: { code: string } | null; rebooted: boolean }[] };
    expect(result.outcome).toBe('partial');
    expect(result.tally).toMatchObject({ patched: 5, failed: 1 });
    expect(result.nodes.find((n) => n.node === 'worker-4')?.error?.code).toBe('DRAIN_TIMEOUT');
    expect(result.nodes.find((n) => n.node === 'worker-1')?.rebooted).toBe(true);
    expect(result.nodes.map((n) => n.node)).not.toContain('win-1');

    const runs = cli(cwd, 'runs');
    expect(runs.code).toBe(0);
    expect(runs.stdout).toContain(result.runId);
    expect(runs.stdout).toMatch(/done\s+partial/);
    const show = cli(cwd, 'runs', 'show', result.runId);
    expect(show.stdout).toMatch(/worker-4\s+failed\s+drain\s+DRAIN_TIMEOUT: drain did not finish within 300s/);

    const verify = cli(cwd, 'audit', 'verify');
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/^audit log intact: \d+ records/);
  });

  it('prints plain lines, one per event, when stdout is not a terminal', () => {
    const run = cli(scratch(), 'demo');
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).not.toContain('\u001b[');
    expect(run.stdout).toMatch(/^\d\d:\d\d:\d\d {2}worker-1 +reboot$/m);
    expect(run.stdout).toMatch(/^run run-\S+: PARTIAL \(5 patched, 0 without updates, 1 failed\)$/m);
  });
});

describe('one process per run, on one database', () => {
  function start(cwd: string, ...args: string[]) {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, NO_COLOR: '1' } });
    const output = { out: '', err: '' };
    child.stdout.on('data', (chunk: Buffer) => (output.out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output.err += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    return { child, output, exited };
  }

  it('runs two demos on one database side by side: each its own run and cluster file, neither crashes', async () => {
    const cwd = scratch();
    const [a, b] = [start(cwd, 'demo', '--db', 'f.db'), start(cwd, 'demo', '--db', 'f.db')];
    expect([await a.exited, await b.exited], `${a.output.err}\n${b.output.err}`).toEqual([0, 0]);
    expect(a.output.err + b.output.err).not.toContain('ENOENT');
    const runs = cli(cwd, 'runs', '--db', 'f.db').stdout;
    expect(runs.match(/partial/g)).toHaveLength(2);
    expect(cli(cwd, 'audit', 'verify', '--db', 'f.db').code).toBe(0);
  });

  it('refuses to resume a demo run whose process is alive (exit 3, naming it), and takes it over once that process is killed', async () => {
    const cwd = scratch();
    // One virtual second per real second: the run is far from done while the others try to resume it.
    const owner = start(cwd, 'demo', '--speed', '1');
    const runId = await until('the demo to announce its run', () => /run (run-\S+): patching/.exec(owner.output.out)?.[1], { context: () => owner.output.err });
    const refused = cli(cwd, 'demo', '--resume', runId);
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toContain(`error: run ${runId} is being driven by process ${owner.child.pid} on `);
    noStackTrace(refused.stderr);
    owner.child.kill('SIGKILL');
    await owner.exited;
    const resumed = cli(cwd, 'demo', '--resume', runId);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`run ${runId}: PARTIAL (5 patched, 0 without updates, 1 failed)`);
    const audit = cli(cwd, 'audit', 'show', '--run', runId).stdout;
    expect(audit).toMatch(/run\.resumed/);
    expect(cli(cwd, 'audit', 'verify').code).toBe(0);
  });
});

describe('audit verify', () => {
  it('exits 1 and names the record when someone edits the audit log', () => {
    const cwd = scratch();
    expect(cli(cwd, 'demo', '--json').code).toBe(0);
    const db = new Database(join(cwd, '.patchpilot', 'patchpilot.db'));
    db.exec('DROP TRIGGER audit_no_update');
    db.prepare("UPDATE audit SET actor = 'mallory' WHERE seq = 5").run();
    db.close();
    const verify = cli(cwd, 'audit', 'verify');
    expect(verify.code).toBe(1);
    expect(verify.stdout).toMatch(/^audit log TAMPERED: 1 problem\(s\)/);
    expect(verify.stdout).toContain('#5:');
  });
});

describe('user mistakes get one clear message and exit 2', () => {
  it.each([
    { name: 'an unknown command', args: ['frobnicate'], message: "error: unknown command 'frobnicate'" },
    { name: 'a bad option value', args: ['runs', '--limit', 'ten'], message: 'expected a whole number from 1 to' },
    // {dir} is the test's own scratch directory: a path outside it might exist on some machine.
    { name: 'a database in a missing directory', args: ['runs', '--db', '{dir}/missing/x.db'], message: 'directory {dir}/missing does not exist' },
    { name: 'an unknown run', args: ['runs', 'show', 'run-nope'], message: 'Run run-nope not found' },
    { name: 'an empty run id (an unset shell variable)', args: ['runs', 'show', ''], message: 'error: no run id given' },
    { name: 'the audit trail of an unknown run (not "the audit log is empty")', args: ['audit', 'show', '--run', 'run-nope'], message: 'Run run-nope not found' },
    { name: 'resuming a demo that never ran', args: ['demo', '--resume', 'run-nope'], message: 'no demo cluster to resume' },
  ])('$name', ({ args, message }) => {
    const dir = scratch();
    const result = cli(dir, ...args.map((arg) => arg.replace('{dir}', dir)));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(message.replace('{dir}', dir));
    noStackTrace(result.stderr);
  });

  it('a file that is not a patchpilot database is refused and left untouched', () => {
    const cwd = scratch();
    const path = join(cwd, 'notes.db');
    writeFileSync(path, 'these are my notes\n');
    const result = cli(cwd, 'runs', '--db', path);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/not a (SQLite|patchpilot) database/i);
    noStackTrace(result.stderr);
  });
});

describe('plan check', () => {
  it.each([
    {
      name: 'a valid plan shows the resolved plan, its schedule and hash',
      text: 'cluster: prod-east\nconcurrency: 2\ntrigger: { kind: preset, preset: monthly, timeZone: Europe/Berlin }\n',
      code: 0,
      out: [/valid/, /trigger: .*1st/i, /a run started now begins: \d{4}-\d\d-\d\dT\d\d:00:00\.000Z/, /next fire times: \d{4}-\d\d-\d\dT/, /version hash for trigger "preset@\d{4}-\d\d-\d\dT[\d:.]+Z": [0-9a-f]{20}/, /holdPackages:/],
    },
    {
      name: 'an on-demand time already in the past is refused, as Palette refuses it',
      text: 'trigger: { kind: on-demand, notBefore: "2020-01-01T00:00:00Z" }\n',
      code: 2,
      out: [/2020-01-01T00:00:00.000Z is in the past/],
    },
    { name: 'a field error names the field', text: 'concurrency: 0\n', code: 2, out: [/concurrency: must be at least 1/] },
    { name: 'an unknown field is named', text: 'concurency: 2\n', code: 2, out: [/unknown field\(s\) "concurency"/] },
    { name: 'a YAML syntax error names the line', text: 'cluster: a\nconcurrency: 2\n\tmode: native\n', code: 2, out: [/line 3, column 1: Tabs are not allowed as indentation$/m] },
  ])('$name', ({ text, code, out }) => {
    const cwd = scratch();
    writeFileSync(join(cwd, 'plan.yaml'), text);
    const result = cli(cwd, 'plan', 'check', 'plan.yaml');
    expect(result.code, result.stderr).toBe(code);
    const shown = code === 0 ? result.stdout : result.stderr;
    for (const pattern of out) expect(shown).toMatch(pattern);
    noStackTrace(result.stderr);
  });
});
