/**
 * The files `patchpilot sandbox` writes beside each other (a kubeconfig and its plan) are deleted when it stops, so it
 * writes only where nothing of anyone else's is: a user's own kubeconfig, or the files of a sandbox still running, are
 * refused and left as they are; files a killed sandbox left behind are taken over. Folders it creates for them go with
 * them, and a sandbox that dies of an uncaught error removes them too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { describeUserError } from '../../src/cli/main.ts';
import { sandboxCommand } from '../../src/cli/sandbox.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('sandbox-files');
const SCENARIO = resolve(import.meta.dirname, '../../fixtures/scenarios/demo.yaml');
const quiet = () => new Writable({ write: (_chunk, _encoding, done) => done() });

/** Starts the sandbox with `kubeconfig`; resolves with what it wrote once it is ready, then stops it. */
async function sandboxAt(kubeconfig: string): Promise<{ code: number; kubeconfigText: string; planText: string }> {
  let stop!: (reason: string) => void;
  const stopped = new Promise<string>((resolve) => (stop = resolve));
  let texts = { kubeconfigText: '', planText: '' };
  const code = await sandboxCommand(
    { scenario: SCENARIO, port: 0, kubeconfig, quiet: true },
    {
      out: quiet(),
      stopped,
      onReady: (info) => {
        texts = { kubeconfigText: readFileSync(info.kubeconfig, 'utf8'), planText: readFileSync(info.plan, 'utf8') };
        stop('test');
      },
    },
  );
  return { code, ...texts };
}

const refusal = (kubeconfig: string) => sandboxCommand({ scenario: SCENARIO, port: 0, kubeconfig, quiet: true }, { out: quiet(), stopped: new Promise(() => {}) }).then(
  () => 'started',
  (err: unknown) => describeUserError(err) ?? String(err),
);

describe('patchpilot sandbox --kubeconfig', () => {
  it('refuses a kubeconfig of the user\'s and leaves it as it was', async () => {
    const path = join(scratch(), 'config');
    writeFileSync(path, 'apiVersion: v1\nkind: Config\n# mine\n');
    expect(await refusal(path)).toMatch(/^error: --kubeconfig .*config already exists and was not written by patchpilot sandbox: it is left as it is\nhint: /);
    expect(readFileSync(path, 'utf8')).toBe('apiVersion: v1\nkind: Config\n# mine\n');
    expect(existsSync(join(path, '..', 'config.plan.yaml'))).toBe(false);
  });

  it('refuses when the plan file beside it is someone else\'s, and writes neither', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'sb.plan.yaml'), 'cluster: mine\n');
    expect(await refusal(join(dir, 'sb.kubeconfig'))).toContain('--kubeconfig (its plan file beside it)');
    expect(readFileSync(join(dir, 'sb.plan.yaml'), 'utf8')).toBe('cluster: mine\n');
    expect(existsSync(join(dir, 'sb.kubeconfig'))).toBe(false);
  });

  it('refuses a FIFO at its path without waiting on it', async () => {
    const path = join(scratch(), 'sb.kubeconfig');
    execFileSync('mkfifo', [path]);
    expect(await refusal(path)).toMatch(/exists and is not a regular file: it is left as it is/);
  });

  it('refuses the files of a sandbox that is still running', async () => {
    const path = join(scratch(), 'sb.kubeconfig');
    // pid 1 always runs: the files belong to a live sandbox.
    writeFileSync(path, '# written by patchpilot sandbox (pid 1); removed when it stops\napiVersion: v1\n');
    expect(await refusal(path)).toMatch(/belongs to a sandbox that is still running \(pid 1\)/);
    expect(readFileSync(path, 'utf8')).toContain('(pid 1)');
  });

  it('takes over the files a killed sandbox left, and removes its own when it stops', async () => {
    const path = join(scratch(), 'sb.kubeconfig');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(path, `# written by patchpilot sandbox (pid ${dead}); removed when it stops\napiVersion: v1\n`);
    const run = await sandboxAt(path);
    expect(run.code).toBe(0);
    expect(run.kubeconfigText).toContain(`(pid ${process.pid})`);
    expect(run.kubeconfigText).toMatch(/server: http:\/\/127\.0\.0\.1:\d+/);
    expect(run.planText).toMatch(/^# written by patchpilot sandbox [^\n]*\n[^]*\ncluster: /);
    expect(existsSync(path)).toBe(false);
    expect(existsSync(path.replace('.kubeconfig', '.plan.yaml'))).toBe(false);
  });

  it('creates the missing folders of --kubeconfig and removes them when it stops', async () => {
    const root = scratch();
    const run = await sandboxAt(join(root, 'some/nonexistent/dir/kc'));
    expect(run.code).toBe(0);
    expect(run.kubeconfigText).toContain('(pid ');
    expect(readdirSync(root)).toEqual([]);
    // Only what it created: a folder that was there stays.
    mkdirSync(join(root, 'mine'));
    expect((await sandboxAt(join(root, 'mine/new/kc'))).code).toBe(0);
    expect(readdirSync(root)).toEqual(['mine']);
    expect(readdirSync(join(root, 'mine'))).toEqual([]);
  });

  it('keeps a folder it created once something else is in it, and the folders above it', async () => {
    const root = scratch();
    let stop!: (reason: string) => void;
    const stopped = new Promise<string>((resolve) => (stop = resolve));
    const code = await sandboxCommand(
      { scenario: SCENARIO, port: 0, kubeconfig: join(root, 'a/b/kc'), quiet: true },
      {
        out: quiet(),
        stopped,
        onReady: () => {
          writeFileSync(join(root, 'a/notes.txt'), 'mine\n');
          stop('test');
        },
      },
    );
    expect(code).toBe(0);
    expect(readdirSync(join(root, 'a'))).toEqual(['notes.txt']);
  });

  it('removes its files and folders when it dies of an uncaught error', () => {
    const root = scratch();
    const kubeconfig = join(root, 'made/kc');
    const script = [
      `import { Writable } from 'node:stream';`,
      `import { sandboxCommand } from ${JSON.stringify(resolve(import.meta.dirname, '../../src/cli/sandbox.ts'))};`,
      `const out = new Writable({ write: (_chunk, _encoding, done) => done() });`,
      `await sandboxCommand({ scenario: ${JSON.stringify(SCENARIO)}, port: 0, kubeconfig: ${JSON.stringify(kubeconfig)}, quiet: true }, {`,
      `  out, stopped: new Promise(() => {}),`,
      `  onReady: (info) => setTimeout(() => { console.log(JSON.stringify(info)); throw new Error('boom'); }, 50),`,
      `});`,
    ].join('\n');
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(result.status, result.stderr).toBe(1);
    expect(result.stderr).toContain('boom');
    expect(JSON.parse(result.stdout).kubeconfig).toBe(kubeconfig);
    expect(readdirSync(root)).toEqual([]);
  });
});
