import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { jsonPieces, writeJson } from '../../src/cli/json-stream.ts';

const same = (value: unknown) => expect([...jsonPieces(value)].join('')).toBe(JSON.stringify(value, null, 2));

describe('the streamed JSON', () => {
  it('is JSON.stringify(value, null, 2), byte for byte', () => {
    same({ a: 1, b: [1, 2, { c: undefined, d: () => 1, e: null }], f: 'x\ny "quoted"' });
    same([]);
    same({});
    same('text');
    same(3);
    same(null);
    // Large containers are walked piece by piece: holes, undefined, functions and toJSON as JSON.stringify has them.
    same({
      nodes: Array.from({ length: 100 }, (_, i) => ({
        name: `n${i}`,
        timeline: Array.from({ length: i % 40 }, (_, j) => ({ step: 'drain', start: j, end: undefined })),
        at: new Date(i * 1000),
        odd: [undefined, () => 1, Symbol('s')],
      })),
    });
    same(Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? undefined : i % 3 === 1 ? [] : {})));
    same(Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, i % 2 ? { deep: Array.from({ length: 70 }, (_, j) => j) } : undefined])));
    same({ all: Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${i}`, undefined])) });
  });

  it('waits for a slow reader instead of piling the document up', async () => {
    const out = new PassThrough({ highWaterMark: 1024 });
    const value = { nodes: Array.from({ length: 2000 }, (_, i) => ({ name: `node-${i}`, steps: ['cordon', 'drain', 'patch'] })) };
    let buffered = 0;
    const chunks: string[] = [];
    const writing = writeJson(out, value, 4096);
    out.on('data', (chunk: Buffer) => {
      buffered = Math.max(buffered, out.writableLength);
      chunks.push(chunk.toString('utf8'));
    });
    await writing;
    out.end();
    await new Promise((resolve) => out.on('end', resolve));
    expect(chunks.join('')).toBe(`${JSON.stringify(value, null, 2)}\n`);
    expect(buffered).toBeLessThan(2 * 4096);
  });

  it('goes straight to a file standard output was redirected to, byte for byte, after what was written before', () => {
    // The direct path (no Buffer per chunk) is taken only for a file or /dev/null behind process.stdout.
    const dir = mkdtempSync(join(tmpdir(), 'patchpilot-json-'));
    try {
      const file = join(dir, 'out.json');
      const fd = openSync(file, 'w');
      const code = `
        const { writeJson } = await import('./src/cli/json-stream.ts');
        process.stdout.write('before\\n');
        const value = { nodes: Array.from({ length: 3000 }, (_, i) => ({ name: 'node-' + i, note: i % 7 ? null : 'ünïcödé ✓' })) };
        await writeJson(process.stdout, value, 4096);
        process.stdout.write('after\\n');`;
      const child = spawnSync(process.execPath, ['--input-type=module', '-e', code], { cwd: join(import.meta.dirname, '..', '..'), stdio: ['ignore', fd, 'pipe'], encoding: 'utf8' });
      closeSync(fd);
      expect(child.stderr).toBe('');
      const value = { nodes: Array.from({ length: 3000 }, (_, i) => ({ name: `node-${i}`, note: i % 7 ? null : 'ünïcödé ✓' })) };
      expect(readFileSync(file, 'utf8')).toBe(`before\n${JSON.stringify(value, null, 2)}\nafter\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
