/** Asynchronous process helpers for the harness (the repository server runs in the same process, so never block). */
import { spawn } from 'node:child_process';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Kill the process (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
}

export function exec(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs a bash script; throws with its output when it fails. */
export async function bash(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
  const r = await exec('bash', ['--norc', '-euo', 'pipefail', '-c', script], opts);
  if (r.code !== 0) {
    const tail = (s: string) => s.split('\n').slice(-25).join('\n');
    throw new Error(`harness command failed (exit ${r.code}): ${script.slice(0, 300)}\n--- stdout\n${tail(r.stdout)}\n--- stderr\n${tail(r.stderr)}`);
  }
  return r;
}

/** Quotes a string for bash. */
export const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
