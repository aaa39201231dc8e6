/**
 * The node agent: one bash script for the apt and dnf families (patchpilot-agent.sh, next to this file). The Job
 * builder pipes it to `bash -s -- <options>` on the node; it prints exactly one JSON line, the agent report
 * (src/engine/report.ts). See the header of patchpilot-agent.sh for its options and exit codes.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Absolute path of the agent script. */
export const AGENT_SCRIPT_PATH: string = fileURLToPath(new URL('./patchpilot-agent.sh', import.meta.url));

let cached: string | undefined;

/** The agent script's text (read once). */
export function agentScript(): string {
  cached ??= readFileSync(AGENT_SCRIPT_PATH, 'utf8');
  return cached;
}

/** Exit codes of the agent script. */
export const AGENT_EXIT_CODES = { ok: 0, failed: 1, usage: 2 } as const;
