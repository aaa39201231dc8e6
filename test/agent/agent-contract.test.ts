/** The agent script and the engine agree on the report's error codes (the harness checks the rest on real nodes). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_SCRIPT_PATH } from '../../src/agent/index.ts';
import { AGENT_ERROR_CODES } from '../../src/engine/report.ts';

const script = readFileSync(AGENT_SCRIPT_PATH, 'utf8');

describe('agent script contract', () => {
  it('only reports error codes the engine knows', () => {
    const used = new Set<string>();
    for (const m of script.matchAll(/\bfail(?:_from_log "[^"]+")? ([A-Z][A-Z_]+)\b/g)) used.add(m[1]!);
    for (const m of script.matchAll(/\bcode=([A-Z][A-Z_]+)\b/g)) used.add(m[1]!);
    for (const m of script.matchAll(/emit_report failed ([A-Z][A-Z_]+)/g)) used.add(m[1]!);
    expect(used.size).toBeGreaterThan(8);
    expect([...used].filter((code) => !(AGENT_ERROR_CODES as readonly string[]).includes(code))).toEqual([]);
  });

  it('never talks to a keyserver', () => {
    const code = script.split('\n').filter((line) => !line.trimStart().startsWith('#')).join('\n');
    expect(code).not.toMatch(/apt-key|--recv-keys|keyserver/);
  });
});
