/** The agent script and the engine agree on the report's error codes (the harness checks the rest on real nodes). */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT_SCRIPT_PATH } from '../../src/agent/index.ts';
import { AGENT_ERROR_CODES } from '../../src/engine/report.ts';

const script = readFileSync(AGENT_SCRIPT_PATH, 'utf8');

describe('agent script contract', () => {
  it('reports exactly the error codes the engine knows (the legacy-only one aside)', () => {
    const used = new Set<string>();
    for (const m of script.matchAll(/\bfail(?:_from_log "[^"]+")? ([A-Z][A-Z_]+)\b/g)) used.add(m[1]!);
    for (const m of script.matchAll(/\bcode=([A-Z][A-Z_]+)\b/g)) used.add(m[1]!);
    for (const m of script.matchAll(/emit_report failed ([A-Z][A-Z_]+)/g)) used.add(m[1]!);
    // Every code the engine knows from an agent, but KEYSERVER_UNREACHABLE: only the seed's legacy script reports it
    // (this agent never talks to a keyserver, see below).
    expect([...used].sort()).toEqual(AGENT_ERROR_CODES.filter((code) => code !== 'KEYSERVER_UNREACHABLE').sort());
  });

  it('never talks to a keyserver', () => {
    const code = script.split('\n').filter((line) => !line.trimStart().startsWith('#')).join('\n');
    expect(code).not.toMatch(/apt-key|--recv-keys|keyserver/);
  });
});
