/**
 * Fidelity: does the simulator tell the truth? Each fault the harness supports runs twice: on a real node (real
 * apt/dpkg or dnf/rpm, src/harness) and in the simulator's model of the agent (src/sim/agent-model.ts) given the same
 * packages, the same offered updates and the same fault. The two agent reports must agree on what an operator acts on:
 * the result, the error code, whether a reboot is needed, what was upgraded and what was held. Timings differ by
 * design (the harness's packages are tiny) and are not compared.
 */
import { DEFAULT_HOLD_PACKAGES } from '../engine/plan.ts';
import type { AgentReport } from '../engine/report.ts';
import { NO_AGENT_FAULTS, runAgent, type AgentFaults } from '../sim/agent-model.ts';
import { OS_PROFILES } from '../sim/os.ts';
import { Random } from '../sim/random.ts';
import type { Family, Harness, HarnessFault } from './index.ts';

export interface FidelityCase {
  family: Family;
  fault: HarnessFault | null;
  label: string;
  /** apt-lock: how long the real holder keeps the lock after the agent starts. */
  holdSeconds?: number;
  lockTimeoutSeconds: number;
}

const LOCK = 30;

/** Every fault the harness can inject, per family, and a clean run of each. */
export const FIDELITY_CASES: readonly FidelityCase[] = [
  { family: 'apt', fault: null, label: 'no fault', lockTimeoutSeconds: LOCK },
  { family: 'apt', fault: 'apt-lock', label: 'held 3 s < timeout 6 s', holdSeconds: 3, lockTimeoutSeconds: 6 },
  { family: 'apt', fault: 'apt-lock', label: 'held 8 s > timeout 3 s', holdSeconds: 8, lockTimeoutSeconds: 3 },
  { family: 'apt', fault: 'keyserver-unreachable', label: '', lockTimeoutSeconds: LOCK },
  { family: 'apt', fault: 'reboot-required', label: '', lockTimeoutSeconds: LOCK },
  { family: 'apt', fault: 'repo-unreachable', label: '', lockTimeoutSeconds: LOCK },
  { family: 'apt', fault: 'disk-full', label: '', lockTimeoutSeconds: LOCK },
  { family: 'apt', fault: 'dpkg-interrupted', label: '', lockTimeoutSeconds: LOCK },
  { family: 'apt', fault: 'postinst-fails', label: '', lockTimeoutSeconds: LOCK },
  { family: 'dnf', fault: null, label: 'no fault', lockTimeoutSeconds: LOCK },
  { family: 'dnf', fault: 'apt-lock', label: 'rpm lock held 3 s < timeout 6 s', holdSeconds: 3, lockTimeoutSeconds: 6 },
  { family: 'dnf', fault: 'apt-lock', label: 'rpm lock held 8 s > timeout 3 s', holdSeconds: 8, lockTimeoutSeconds: 3 },
  { family: 'dnf', fault: 'reboot-required', label: '', lockTimeoutSeconds: LOCK },
  { family: 'dnf', fault: 'repo-unreachable', label: '', lockTimeoutSeconds: LOCK },
  { family: 'dnf', fault: 'disk-full', label: '', lockTimeoutSeconds: LOCK },
  { family: 'dnf', fault: 'postinst-fails', label: '', lockTimeoutSeconds: LOCK },
];

/** What the comparison looks at. */
export interface ReportSummary {
  result: AgentReport['result'];
  error: string | null;
  rebootRequired: boolean;
  upgraded: string[];
  held: string[];
}

export interface FidelityRow {
  family: Family;
  fault: string;
  label: string;
  real: ReportSummary;
  simulated: ReportSummary;
  differences: string[];
}

export function summarize(report: AgentReport): ReportSummary {
  return {
    result: report.result,
    error: report.error?.code ?? null,
    rebootRequired: report.rebootRequired,
    upgraded: report.upgraded.map((u) => u.name).sort(),
    held: [...report.held].sort(),
  };
}

/**
 * The harness's node as the simulator sees it: the harness's base packages, the updates its repositories offer
 * (security: libfoo, the kube packages, failpkg, and the kernel-like package in the reboot case; bugfix: bar), and the
 * fault translated into the model's terms.
 */
export function simulatedReport(c: FidelityCase, base: Readonly<Record<string, string>>): AgentReport {
  const os = OS_PROFILES[c.family === 'apt' ? 'debian-12' : 'rocky-9'];
  const installed = new Map(Object.entries(base));
  if (c.fault === 'postinst-fails') installed.set('failpkg', c.family === 'apt' ? '1.0' : '1.0-1');
  const security = ['libfoo', 'kubelet', 'kubeadm', 'kubectl', 'failpkg', ...(c.fault === 'reboot-required' ? [os.kernelPackage] : [])];
  const faults: AgentFaults = {
    ...NO_AGENT_FAULTS,
    lockHeldMs: c.fault === 'apt-lock' ? (c.holdSeconds ?? 0) * 1000 : 0,
    keyserverUnreachable: c.fault === 'keyserver-unreachable',
    repoUnreachable: c.fault === 'repo-unreachable',
    diskFull: c.fault === 'disk-full',
    dpkgInterrupted: c.fault === 'dpkg-interrupted' ? { recoverable: true } : null,
    postinstFails: c.fault === 'postinst-fails' ? 'failpkg' : null,
  };
  return runAgent({
    os,
    installed,
    offered: { security: security.filter((p) => p !== 'failpkg' || installed.has('failpkg')), other: ['bar'] },
    agent: 'modern',
    securityOnly: true,
    holdPackages: [...DEFAULT_HOLD_PACKAGES],
    lockTimeoutSeconds: c.lockTimeoutSeconds,
    downloadOnly: false,
    faults,
    random: new Random(`fidelity/${c.family}/${c.fault}`),
  }).report;
}

export function compare(real: ReportSummary, simulated: ReportSummary): string[] {
  const differences: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  for (const key of ['result', 'error', 'rebootRequired', 'upgraded', 'held'] as const) {
    if (!same(real[key], simulated[key])) differences.push(`${key}: real ${JSON.stringify(real[key])}, simulated ${JSON.stringify(simulated[key])}`);
  }
  return differences;
}

/** Runs every case on the harness and in the simulator. */
export async function runFidelity(harness: Harness, onRow?: (row: FidelityRow) => void): Promise<FidelityRow[]> {
  const rows: FidelityRow[] = [];
  for (const c of FIDELITY_CASES) {
    const result = await harness.run({
      family: c.family,
      fault: c.fault,
      ...(c.holdSeconds !== undefined ? { params: { holdSeconds: c.holdSeconds } } : {}),
      agentArgs: ['--lock-timeout', String(c.lockTimeoutSeconds)],
    });
    const real = summarize(result.report);
    const simulated = summarize(simulatedReport(c, harness.base[c.family]));
    const row: FidelityRow = { family: c.family, fault: c.fault ?? '(none)', label: c.label, real, simulated, differences: compare(real, simulated) };
    rows.push(row);
    onRow?.(row);
  }
  return rows;
}

const cell = (s: ReportSummary) =>
  `${s.result}${s.error ? ` ${s.error}` : ''}${s.rebootRequired ? ' reboot' : ''} up=[${s.upgraded.join(',')}] held=[${s.held.join(',')}]`;

/** One line per fault and family: the two reports side by side, then `agree` or `DISAGREE: ...`. */
export function formatRow(row: FidelityRow): string {
  const name = `${row.family} ${row.fault}${row.label && row.label !== 'no fault' ? ` (${row.label})` : ''}`;
  const verdict = row.differences.length === 0 ? 'agree' : `DISAGREE: ${row.differences.join('; ')}`;
  return `${name.padEnd(40)} real: ${cell(row.real).padEnd(62)} sim: ${cell(row.simulated).padEnd(62)} ${verdict}`;
}
