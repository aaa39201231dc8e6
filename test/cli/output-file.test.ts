/** Output paths are checked before any work starts (--report, --record, the sandbox's --kubeconfig). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkOutputFile } from '../../src/cli/output-file.ts';
import { simCommand } from '../../src/cli/sim.ts';
import { UserError } from '../../src/cli/user-error.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('output-file');

describe('checkOutputFile', () => {
  it.each([
    { name: 'a directory', make: (d: string) => mkdirSync(join(d, 'out')), path: 'out', message: /^--report .*out is a directory, not a file$/ },
    { name: 'a path under a file', make: (d: string) => writeFileSync(join(d, 'file'), ''), path: 'file/report.html', message: /cannot write it \(ENOTDIR\)|is a file, not a folder/ },
  ])('refuses $name', ({ make, path, message }) => {
    const dir = scratch();
    make(dir);
    const attempt = () => checkOutputFile(join(dir, path), '--report');
    expect(attempt).toThrow(UserError);
    expect(attempt).toThrow(message);
  });

  it('accepts a new file in folders yet to be made, and an existing file', () => {
    const dir = scratch();
    expect(() => checkOutputFile(join(dir, 'a/b/report.html'), '--report')).not.toThrow();
    writeFileSync(join(dir, 'old.html'), 'x');
    expect(() => checkOutputFile(join(dir, 'old.html'), '--report')).not.toThrow();
  });

  it('sim refuses a directory as --record before running anything', async () => {
    const dir = scratch();
    mkdirSync(join(dir, 'rec'));
    const out: string[] = [];
    const io = { out: { write: (text: string) => out.push(text) } } as unknown as Parameters<typeof simCommand>[2];
    await expect(simCommand('fixtures/scenarios/demo.yaml', { record: join(dir, 'rec'), json: true }, io)).rejects.toThrow(/--record .* is a directory/);
    expect(out).toEqual([]);
  });
});
