/** The small contracts other parts rely on: the agent report line, and patch Job names. */
import { describe, expect, it } from 'vitest';
import { patchJobName } from '../../src/cluster/jobs.ts';
import { parseAgentReport } from '../../src/engine/report.ts';

const report = {
  result: 'patched',
  upgraded: [{ name: 'openssl', from: '3.0.2-0ubuntu1.17', to: '3.0.2-0ubuntu1.18' }],
  held: ['kubelet'],
  rebootRequired: false,
  rebootPackages: [],
  error: null,
  durationSeconds: 42,
};

describe('parseAgentReport: the last line the agent prints', () => {
  it('reads the report after any amount of logging', () => {
    expect(parseAgentReport(`Reading package lists...\nDone\n${JSON.stringify(report)}\n\n`)).toEqual(report);
  });

  it.each([
    { name: 'nothing printed', output: '', error: 'agent printed nothing' },
    { name: 'a last line that is not JSON', output: 'E: Could not get lock', error: "agent's last line is not JSON: E: Could not get lock" },
    { name: 'a missing field', output: JSON.stringify({ ...report, held: undefined }), error: 'agent report invalid at held' },
    { name: 'an unknown result', output: JSON.stringify({ ...report, result: 'maybe' }), error: 'agent report invalid at result' },
    { name: 'a failure without an error', output: JSON.stringify({ ...report, result: 'failed' }), error: 'agent report invalid at error' },
    { name: 'an error on a success', output: JSON.stringify({ ...report, error: { code: 'LOCK_TIMEOUT', message: 'x' } }), error: 'agent report invalid at error' },
  ])('refuses $name', ({ output, error }) => {
    expect(() => parseAgentReport(output)).toThrow(error);
  });
});

describe('patchJobName: one valid DNS-1123 label per node and hash', () => {
  const hash = '0a436363a5cd9980e2cc';
  const dns1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

  it.each([
    { name: 'Palette names, as the seed documents them', mode: 'palette' as const, node: 'worker-1', expected: 'apply-on-demand-os-patch-on-worker-1' },
    { name: 'our names carry the hash', mode: 'native' as const, node: 'worker-1', expected: `apply-os-patch-on-worker-1-with-${hash}` },
  ])('$name', ({ mode, node, expected }) => {
    expect(patchJobName(mode, node, hash)).toBe(expected);
  });

  it.each([
    { name: 'a long cloud node name', node: 'ip-10-0-142-17.eu-central-1.compute.internal' },
    { name: 'upper case', node: 'Worker-ONE' },
    { name: 'a 253-character name', node: `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(70)}` },
  ])('stays a valid label of at most 63 characters for $name', ({ node }) => {
    for (const mode of ['native', 'palette'] as const) {
      const name = patchJobName(mode, node, hash);
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(dns1123);
    }
  });

  it('gives names that clean up to the same text different Jobs', () => {
    expect(patchJobName('palette', 'node.a', hash)).not.toBe(patchJobName('palette', 'node-a', hash));
    expect(patchJobName('native', 'node-a', hash)).not.toBe(patchJobName('native', 'node-a', 'ffffffffffffffffffff'));
    expect(patchJobName('native', 'n', hash, { downloadOnly: true })).toMatch(/^prefetch-os-patch-on-n-with-/);
  });
});
