/**
 * `patchpilot demo` interrupted with Ctrl-C at 60 virtual seconds per real second, then resumed: a real process paced
 * on the wall clock, so it runs in the heavy suite (`npm run test:full`); cli.test.ts keeps the rest of the demo.
 */
import { spawn, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
const scratch = scratchDirs('cli-interrupt');

function cli(cwd: string, ...args: string[]) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('patchpilot demo (npm start)', () => {
  it('survives Ctrl-C: the interrupted run resumes where it stopped and finishes the same way', { timeout: 120_000 }, async () => {
    const cwd = scratch();
    // 60 virtual seconds per real second: the interrupt lands well before the ~10 virtual minutes of the run end.
    const child = spawn(process.execPath, [BIN, 'demo', '--speed', '60'], { cwd, env: { ...process.env, NO_COLOR: '1' } });
    let out = '';
    await new Promise<void>((done) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (!child.killed && /worker-2 +drain$/m.test(out)) child.kill('SIGINT');
      });
      child.on('exit', () => done());
    });
    expect(child.exitCode).toBe(130);
    const runId = /resume it with: npx patchpilot demo --resume (\S+)/.exec(out)?.[1];
    expect(runId, out).toBeDefined();
    expect(cli(cwd, 'runs').stdout).toMatch(/rolling|paused/);
    // An interrupted run shows each node where it stopped.
    const show = cli(cwd, 'runs', 'show', runId!).stdout;
    expect(show).toMatch(/cp-1\s+patched\s+done/);
    expect(show).toMatch(/worker-2\s+in-progress\s+drain/);
    expect(show).toMatch(/worker-5\s+pending\s+queued/);

    const resumed = cli(cwd, 'demo', '--resume', runId!);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`run ${runId}: PARTIAL (5 patched, 0 without updates, 1 failed)`);
    const verify = cli(cwd, 'audit', 'verify');
    expect(verify.code).toBe(0);
    const audit = cli(cwd, 'audit', 'show', '--run', runId!).stdout;
    expect(audit).toContain('run.resumed');
    for (const node of ['cp-1', 'worker-1', 'worker-2', 'worker-3', 'worker-4', 'worker-5']) {
      expect(audit.match(new RegExp(`node.finished +${node} `, 'g')), node).toHaveLength(1);
    }
  });
});
