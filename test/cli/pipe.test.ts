/**
 * A reader that closes the pipe early (`patchpilot sim ... | head -1`) does not crash the command with an EPIPE stack
 * trace: the rest of the output is dropped and the command finishes, with the exit code it would have had.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

describe('output into a pipe closed early', () => {
  it('sim finishes with its own exit code and no stack trace', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'bin/patchpilot.js'), 'sim', join(ROOT, 'fixtures/scenarios/demo.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // Like `head -1`: read the first chunk, then close the reading end.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(stderr).not.toMatch(/EPIPE|^\s+at /m);
    expect(code).toBe(0);
  });
});
