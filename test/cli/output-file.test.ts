/** Output paths are checked before any work starts (--report, --record, the sandbox's --kubeconfig). */
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
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

  it.each([
    { name: 'the scenario as --report', options: (f: string) => ({ report: f }), message: /^--report .*s\.yaml is the scenario: writing it there would destroy it; nothing was run$/ },
    { name: 'the scenario as --record', options: (f: string) => ({ record: f }), message: /^--record .*s\.yaml is the scenario/ },
    { name: 'the scenario by another path (a link)', options: (f: string) => ({ report: join(f, '..', 'link.yaml') }), message: /link\.yaml is the scenario/ },
    { name: 'one file as both --report and --record', options: (f: string) => ({ report: join(f, '..', 'out'), record: join(f, '..', 'out') }), message: /^--record .*out is the --report file/ },
  ])('sim refuses $name, and leaves the files as they were', async ({ options, message }) => {
    const dir = scratch();
    const scenario = join(dir, 's.yaml');
    const text = readFileSync('fixtures/scenarios/demo.yaml', 'utf8');
    writeFileSync(scenario, text);
    symlinkSync(scenario, join(dir, 'link.yaml'));
    const io = { out: { write: () => true } } as unknown as Parameters<typeof simCommand>[2];
    await expect(simCommand(scenario, { json: true, ...options(scenario) }, io)).rejects.toThrow(message);
    expect(readFileSync(scenario, 'utf8')).toBe(text);
    expect(existsSync(join(dir, 'out'))).toBe(false);
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
