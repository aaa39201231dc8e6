/** The fidelity comparison itself (no harness needed): it must see a difference when there is one. */
import { describe, expect, it } from 'vitest';
import { compare, FIDELITY_CASES, formatRow, simulatedReport, summarize } from '../../src/harness/fidelity.ts';
import { APT_BASE, RPM_BASE } from '../../src/harness/repos.ts';

describe('fidelity comparison', () => {
  it('maps every harness fault into the simulator and gets a report of the agent contract', () => {
    for (const c of FIDELITY_CASES) {
      const report = simulatedReport(c, c.family === 'apt' ? APT_BASE : RPM_BASE);
      expect(report.held.sort()).toEqual(['kubeadm', 'kubectl', 'kubelet']);
      if (c.fault === 'reboot-required') expect(report.rebootRequired).toBe(true);
    }
  });

  it('says DISAGREE and names the field when the two reports differ', () => {
    const apt = FIDELITY_CASES.find((c) => c.family === 'apt' && c.fault === 'postinst-fails')!;
    const simulated = summarize(simulatedReport(apt, APT_BASE));
    const real = { ...simulated, upgraded: ['failpkg', 'libfoo'] };
    const differences = compare(real, simulated);
    expect(differences).toEqual(['upgraded: real ["failpkg","libfoo"], simulated ["libfoo"]']);
    expect(formatRow({ family: 'apt', fault: 'postinst-fails', label: '', real, simulated, differences })).toMatch(/DISAGREE: upgraded: real/);
    expect(compare(simulated, simulated)).toEqual([]);
  });
});
