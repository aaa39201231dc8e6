/**
 * The node agent: one bash script for the apt and dnf families (patchpilot-agent.sh, next to this file). It prints
 * exactly one JSON line, the agent report (src/engine/report.ts); see the script's header for its options and exit
 * codes. The Kubernetes objects that deliver and run it are the adapter's (src/cluster/kube/job-manifest.ts): this
 * module knows nothing of clusters.
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
