import { describe, expect, it } from 'vitest';
import { NO_AGENT_FAULTS, runAgent, type AgentRunInput } from '../../src/sim/agent-model.ts';
import { installedPackages, OS_PROFILES, versionsOf, type OsId } from '../../src/sim/os.ts';
import { Random } from '../../src/sim/random.ts';
import { DEFAULT_HOLD_PACKAGES } from '../../src/engine/plan.ts';
import { agentReportSchema } from '../../src/engine/report.ts';

function input(os: OsId, over: Partial<AgentRunInput> = {}): AgentRunInput {
  const profile = OS_PROFILES[os];
  return {
    os: profile,
    installed: new Map(installedPackages(profile).map((p) => [p, versionsOf(profile, p).from])),
    offered: { security: ['openssl', 'containerd', 'kubelet'], other: ['vim'] },
    agent: 'modern',
    securityOnly: true,
    holdPackages: [...DEFAULT_HOLD_PACKAGES],
    lockTimeoutSeconds: 600,
    downloadOnly: false,
    faults: { ...NO_AGENT_FAULTS },
    random: new Random(1),
    ...over,
  };
}

describe('the simulated agent', () => {
  it('upgrades only security updates and holds the installed Kubernetes and runtime packages', () => {
    const run = runAgent(input('ubuntu-22.04'));
    expect(agentReportSchema.safeParse(run.report).success).toBe(true);
    expect(run.report.result).toBe('patched');
    expect(run.report.upgraded.map((u) => u.name)).toEqual(['openssl']);
    expect(run.report.held).toEqual([...DEFAULT_HOLD_PACKAGES]);
    expect(run.report.rebootRequired).toBe(false);
  });

  it('holds every installed package a pattern matches, as the agent does with dpkg-query and rpm', () => {
    const profile = OS_PROFILES['ubuntu-22.04'];
    const run = runAgent(input('ubuntu-22.04', { offered: { security: ['openssl', profile.kernelPackage], other: [] }, holdPackages: ['linux-image*', 'kube[ac]*'] }));
    expect(run.report.upgraded.map((u) => u.name)).toEqual(['openssl']);
    expect(run.report.held).toEqual([profile.kernelPackage, 'kubeadm', 'kubectl']);
  });

  it('waits out a lock held for less than its timeout, and reports LOCK_TIMEOUT after it otherwise', () => {
    const free = runAgent(input('ubuntu-22.04'));
    const waited = runAgent(input('ubuntu-22.04', { faults: { ...NO_AGENT_FAULTS, lockHeldMs: 120_000 } }));
    expect(waited.report.result).toBe('patched');
    expect(waited.durationMs - free.durationMs).toBe(120_000);
    const timedOut = runAgent(input('ubuntu-22.04', { lockTimeoutSeconds: 60, faults: { ...NO_AGENT_FAULTS, lockHeldMs: 120_000 } }));
    expect(timedOut.report.error?.code).toBe('LOCK_TIMEOUT');
    expect(timedOut.report.error?.message).toContain('lock-frontend');
  });

  it('gives the legacy script five tries 30 s apart against a held lock', () => {
    const legacy = (ms: number) => runAgent(input('ubuntu-22.04', { agent: 'legacy', faults: { ...NO_AGENT_FAULTS, lockHeldMs: ms } }));
    expect(legacy(100_000).report.result).toBe('patched');
    expect(legacy(121_000).report.error?.code).toBe('LOCK_TIMEOUT');
  });

  it('never touches a keyserver, unlike the legacy script on apt nodes', () => {
    const faults = { ...NO_AGENT_FAULTS, keyserverUnreachable: true };
    expect(runAgent(input('ubuntu-22.04', { faults })).report.result).toBe('patched');
    expect(runAgent(input('ubuntu-22.04', { agent: 'legacy', faults })).report.error?.code).toBe('KEYSERVER_UNREACHABLE');
    expect(runAgent(input('rocky-9', { agent: 'legacy', faults })).report.result).toBe('patched');
  });

  it('reproduces the legacy script upgrading containerd (it holds only four packages) and everything on deb822 systems', () => {
    const jammy = runAgent(input('ubuntu-22.04', { agent: 'legacy' }));
    expect(jammy.report.upgraded.map((u) => u.name).sort()).toEqual(['containerd', 'openssl']);
    const noble = runAgent(input('ubuntu-24.04', { agent: 'legacy' }));
    expect(noble.report.upgraded.map((u) => u.name).sort()).toEqual(['containerd', 'openssl', 'vim']);
  });

  it('needs a reboot for a kernel update, and on dnf for what needs-restarting -r names', () => {
    const apt = runAgent(input('debian-12', { offered: { security: ['linux-image-amd64', 'openssl'], other: [] } }));
    expect(apt.report.rebootRequired).toBe(true);
    expect(apt.report.rebootPackages).toEqual(['linux-image-amd64']);
    const dnf = runAgent(input('rocky-9', { offered: { security: ['glibc', 'openssl'], other: [] }, installed: new Map([['glibc', '2.34-100.el9'], ['openssl', '3.0.7-1.el9']]) }));
    expect(dnf.report.rebootPackages).toEqual(['glibc']);
  });

  it('turns an unreachable repository into REPO_UNREACHABLE, where the legacy script silently sees no updates', () => {
    const faults = { ...NO_AGENT_FAULTS, repoUnreachable: true };
    expect(runAgent(input('ubuntu-22.04', { faults })).report.error?.code).toBe('REPO_UNREACHABLE');
    expect(runAgent(input('ubuntu-22.04', { agent: 'legacy', faults })).report.result).toBe('no-updates');
  });

  it('reports disk, dpkg and maintainer-script failures with the real tools\' words', () => {
    expect(runAgent(input('ubuntu-22.04', { faults: { ...NO_AGENT_FAULTS, diskFull: true } })).report.error?.message).toContain('enough free space');
    expect(runAgent(input('ubuntu-22.04', { faults: { ...NO_AGENT_FAULTS, dpkgInterrupted: { recoverable: false } } })).report.error?.code).toBe('DPKG_INTERRUPTED');
    const postinst = runAgent(input('ubuntu-22.04', { faults: { ...NO_AGENT_FAULTS, postinstFails: 'openssl' } }));
    expect(postinst.report.error?.code).toBe('POSTINST_FAILED');
    expect(postinst.report.error?.message).toContain('post-installation script');
  });

  it('dies without a report when the agent crashes, and refuses non-Linux nodes', () => {
    expect(runAgent(input('ubuntu-22.04', { offered: { security: ['openssl', 'curl'], other: [] }, faults: { ...NO_AGENT_FAULTS, agentCrash: true } })).diesWithoutReport).toBe(true);
    expect(runAgent(input('windows-2022')).report.error?.code).toBe('UNSUPPORTED_OS');
  });

  it('repairs an interrupted dpkg with dpkg --configure -a first; the legacy script cannot', () => {
    const faults = { ...NO_AGENT_FAULTS, dpkgInterrupted: { recoverable: true } };
    const clean = runAgent(input('ubuntu-22.04'));
    const repaired = runAgent(input('ubuntu-22.04', { faults }));
    expect(repaired.report.result).toBe('patched');
    expect(repaired.durationMs).toBeGreaterThan(clean.durationMs);
    expect(runAgent(input('ubuntu-22.04', { agent: 'legacy', faults })).report.error?.code).toBe('DPKG_INTERRUPTED');
  });

  it('is a pure function of its inputs and seed', () => {
    expect(runAgent(input('rocky-9', { random: new Random('x') }))).toEqual(runAgent(input('rocky-9', { random: new Random('x') })));
  });
});
