/**
 * `patchpilot run` as a user meets it: the real bin/patchpilot.js, judged by exit code and output. Every refusal is one
 * message and a hint, exit 2, and nothing changed.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
const scratch = scratchDirs('run-cli');

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asynchronous, so that an API server in this process can answer the child. */
export function runCli(args: string[], env: NodeJS.ProcessEnv, cwd = scratch()): Promise<CliResult> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: { PATH: process.env.PATH, NO_COLOR: '1', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

export function writeKubeconfig(dir: string, server: string, token: string): string {
  const path = join(dir, 'kubeconfig.yaml');
  writeFileSync(
    path,
    [
      'apiVersion: v1',
      'kind: Config',
      `clusters:\n- name: test\n  cluster:\n    server: ${server}\n    insecure-skip-tls-verify: true`,
      `users:\n- name: patchpilot\n  user:\n    token: ${token}`,
      'contexts:\n- name: test\n  context:\n    cluster: test\n    user: patchpilot',
      'current-context: test',
    ].join('\n'),
  );
  return path;
}

const noStackTrace = (text: string) => expect(text).not.toMatch(/\n\s+at .+:\d+:\d+\)?/);

describe('patchpilot run: refusals before anything changes', () => {
  it('says there is no kubeconfig instead of trying localhost:8080', async () => {
    const home = scratch();
    const result = await runCli(['run'], { HOME: home });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: no kubeconfig: KUBECONFIG is not set, ${join(home, '.kube', 'config')} does not exist, and this is not running in a pod`);
    expect(result.stderr).toContain('hint: pass --kubeconfig PATH');
    expect(result.stderr).not.toContain('localhost:8080');
    noStackTrace(result.stderr);
  });

  it('names the API server it cannot reach', async () => {
    const port = await closedPort();
    const dir = scratch();
    const kubeconfig = writeKubeconfig(dir, `http://127.0.0.1:${port}`, 'token');
    const result = await runCli(['run', '--kubeconfig', kubeconfig, '--db', join(dir, 'pp.db')], { HOME: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`error: cannot reach the Kubernetes API server at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(result.stderr).toContain(`hint: check that the cluster is running and that ${kubeconfig}`);
    noStackTrace(result.stderr);
  });
});

/** A port nothing listens on: bound, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const address = server.address();
  await new Promise<void>((closed) => server.close(() => closed()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
