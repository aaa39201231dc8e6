/**
 * The agent report: the one JSON line a node agent (real or simulated) prints when it finishes.
 * The engine, the simulator and the real agent all share this contract (DESIGN.md, "The node agent").
 */
import { z } from 'zod';

/** Error codes the agent itself can report. */
export const AGENT_ERROR_CODES = [
  'LOCK_TIMEOUT',
  'KEYSERVER_UNREACHABLE',
  'REPO_UNREACHABLE',
  'DISK_FULL',
  'DPKG_INTERRUPTED',
  'POSTINST_FAILED',
  'UNSUPPORTED_OS',
  'NOT_ROOT',
  'AGENT_CRASHED',
  /** apt: no -security suite in any source: the agent refuses to fall back to every source, as the seed's script does. */
  'NO_SECURITY_SOURCES',
  /** The package manager failed in a way none of the codes above describes (the message says how). */
  'PACKAGE_MANAGER_FAILED',
  /** The agent was called with options it does not know. */
  'USAGE',
] as const;

/** Error codes the engine raises around the agent. */
export const ENGINE_ERROR_CODES = [
  'DRAIN_TIMEOUT',
  'REJOIN_TIMEOUT',
  'NODE_NOT_READY',
  'NODE_GONE',
  'KUBELET_CHANGED',
  'JOB_FAILED',
  'API_ERROR',
  'CANCELLED',
  'WINDOW_CLOSED',
  /** The node (or a canary) went NotReady, or its pods did not return to Ready, during its soak. */
  'SOAK_FAILED',
  /** The health gate or a blocker held the run back longer than healthGate.blockedTimeoutSeconds. */
  'BLOCKED_TIMEOUT',
] as const;

export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];
export type EngineErrorCode = (typeof ENGINE_ERROR_CODES)[number];
export type ErrorCode = AgentErrorCode | EngineErrorCode;

const packageChange = z.object({ name: z.string().min(1), from: z.string(), to: z.string() }).strict();

export const agentReportSchema = z
  .object({
    result: z.enum(['patched', 'no-updates', 'failed']),
    upgraded: z.array(packageChange),
    held: z.array(z.string()),
    rebootRequired: z.boolean(),
    rebootPackages: z.array(z.string()),
    error: z.object({ code: z.string().min(1), message: z.string() }).strict().nullable(),
    durationSeconds: z.number().nonnegative(),
  })
  .strict()
  .refine((r) => (r.result === 'failed') === (r.error !== null), {
    message: 'error must be set exactly when result is "failed"',
    path: ['error'],
  });

export type AgentReport = z.infer<typeof agentReportSchema>;
export type PackageChange = z.infer<typeof packageChange>;

/**
 * Parses the last non-empty line of an agent's output as its report.
 * Agents may log freely before it; the report is always the final line.
 */
export function parseAgentReport(output: string): AgentReport {
  const lines = output.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  const last = lines.at(-1);
  if (last === undefined) throw new Error('agent printed nothing: expected a JSON report as its last line');
  let json: unknown;
  try {
    json = JSON.parse(last);
  } catch {
    throw new Error(`agent's last line is not JSON: ${last.slice(0, 200)}`);
  }
  const parsed = agentReportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`agent report invalid at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'unknown'}`);
  }
  return parsed.data;
}
