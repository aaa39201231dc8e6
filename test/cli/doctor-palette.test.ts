/**
 * `patchpilot doctor` as a Palette user runs it: the real CLI (a child process) against a Palette-managed sandbox
 * served from this process. A healthy cluster exits 0 with nothing false said; a fault exits 1 naming the seed's row and
 * the fix. (Every fault is covered in-process by test/service/doctor-palette.test.ts; these are the CLI's end to end.)
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { kubeconfig } from '../../src/sim/kube-api/index.ts';
import { sandboxTarget, type SandboxTarget } from '../helpers/sandbox-target.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const BIN = join(process.cwd(), 'bin', 'patchpilot.js');
const dirs = scratchDirs('cli-doctor-palette');
let bench: SandboxTarget | undefined;

afterEach(async () => {
  await bench?.close();
  bench = undefined;
});

async function doctorOn(scenario: string): Promise<{ code: number; out: string; err: string }> {
  bench = await sandboxTarget(`palette-managed/${scenario}.yaml`);
  const dir = dirs();
  const config = join(dir, 'sandbox.kubeconfig');
  writeFileSync(config, kubeconfig(bench.server.url));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PALETTE_') && k !== 'KUBECONFIG'));
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'doctor', '--kubeconfig', config, '--cluster', 'palette-demo'], { cwd: dir, env, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 99) : 0, out: stdout, err: stderr }),
    );
  });
}

describe('patchpilot doctor on a Palette-managed cluster', () => {
  it('healthy: exit 0, Palette\'s task, Jobs and agent read and found well', { timeout: 60_000 }, async () => {
    const r = await doctorOn('healthy');
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).not.toContain('[PROBLEM]');
    expect(r.out).toMatch(/\[ok\] No Palette patch in progress\n {3}- SpectroSystemTask os-patch\/on-demand-os-patch: version on-demand-\d+, hash \w+…, Complete;/);
    expect(r.out).toContain("[ok] Palette's crony Jobs: 4 succeeded, 0 running");
    expect(r.out).toContain("[ok] Palette's agent pods are Ready");
    expect(r.out).toContain("[warning] Every node Palette's task selects already carries its hash");
    expect(r.out).not.toContain('Not a Palette-managed cluster');
    expect(r.out.trim().split('\n').at(-1)).toMatch(/^no problem found/);
  });

  it('keyserver EOF in a crony log: exit 1, the seed\'s section and patchpilot\'s agent as the fix', { timeout: 60_000 }, async () => {
    const r = await doctorOn('keyserver-eof');
    expect(r.err).toBe('');
    expect(r.code).toBe(1);
    const block = r.out.split(/\n(?=\d+\. )/).find((b) => b.includes("Palette's patch script cannot reach the GPG keyserver"))!;
    expect(block).toMatch(/^\d+\. \[PROBLEM\] /);
    expect(block).toContain('worker-2: [');
    expect(block).toContain('gpg: keyserver receive failed: End of file');
    expect(block).toContain("patchpilot's agent never contacts a keyserver: npx patchpilot run --cluster palette-demo patches them");
    expect(block).toContain('   seed: Patching Fails with GPG Keyserver Errors');
  });
});
