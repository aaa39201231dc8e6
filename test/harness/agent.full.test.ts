/**
 * The node agent (src/agent/patchpilot-agent.sh) against real apt/dpkg and dnf/rpm, in throw-away nodes
 * (src/harness). One file for both families so the node image is built once. Skips, saying why, when the machine
 * cannot run it (not root, no namespaces/overlay/tmpfs, tools missing: bash scripts/setup-test-deps.sh).
 * Asserts on exit codes, the parsed report and the final dpkg/rpm state, never on message text.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatRow, runFidelity } from '../../src/harness/fidelity.ts';
import { harnessAvailable, prepareHarness, type Harness, type RunOptions, type RunResult } from '../../src/harness/index.ts';

const available = harnessAvailable();
if (!available.ok) console.warn(`[harness] SKIPPED: the real-OS harness cannot run here: ${available.reason}`);

const times: { scenario: string; agentMs: number; nodeMs: number }[] = [];
let h: Harness;

/** Results by what was run: the fidelity check at the end reuses the matrix's runs instead of repeating them. */
const results = new Map<string, RunResult>();
const keyOf = (o: RunOptions) => JSON.stringify([o.family, o.fault, o.params ?? {}, o.setup ?? [], o.agentArgs ?? ['--lock-timeout', '30']]);

async function run(scenario: string, opts: RunOptions): Promise<RunResult> {
  const r = await h.run(opts);
  times.push({ scenario, agentMs: r.durationMs, nodeMs: r.nodeMs });
  results.set(keyOf(opts), r);
  return r;
}

const names = (r: RunResult) => r.report.upgraded.map((u) => u.name).sort();
const KUBE = { kubeadm: 'ii', kubectl: 'ii', kubelet: 'ii' };

describe.skipIf(!available.ok)('node agent on real apt/dpkg and dnf/rpm', () => {
  beforeAll(async () => {
    const t = Date.now();
    h = await prepareHarness((m) => console.log(`[harness] ${m}`));
    console.log(`[harness] prepared in ${((Date.now() - t) / 1000).toFixed(1)} s`, h.timings);
  }, 300_000);

  afterAll(async () => {
    await h?.close();
    if (times.length > 0) {
      console.log(
        `[harness] per-scenario times\n${times.map((t) => `  ${t.scenario.padEnd(34)} agent ${(t.agentMs / 1000).toFixed(2).padStart(6)} s   node ${(t.nodeMs / 1000).toFixed(2).padStart(6)} s`).join('\n')}`,
      );
    }
  }, 60_000);

  describe.concurrent('apt (Debian 12 node)', () => {
    it('clean security patch: libfoo 1.0 -> 1.1 from -security, bar stays 1.0 (2.0 is only in -updates)', { timeout: 60_000 }, async () => {
      const r = await run('apt clean', { family: 'apt', fault: null });
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.report.upgraded).toEqual([{ name: 'libfoo', from: '1.0', to: '1.1' }]);
      expect(r.report.held).toEqual(['kubeadm', 'kubectl', 'kubelet']);
      expect(r.report.rebootRequired).toBe(false);
      expect(r.state.packages).toMatchObject({ libfoo: '1.1', bar: '1.0', kubelet: '1.30.0', kubeadm: '1.30.0', kubectl: '1.30.0', 'linux-image-amd64': '1.0' });
      expect(r.state.status).toMatchObject(KUBE); // holds released
      expect(r.state.held).toEqual([]);
    });

    it('held kube packages stay at 1.30.0 and the previous hold state is restored (kubectl was held before)', { timeout: 60_000 }, async () => {
      const r = await run('apt held kube (pre-held kubectl)', { family: 'apt', fault: null, setup: ['pre-held'] });
      expect(r.exitCode).toBe(0);
      expect(r.report.held).toEqual(['kubeadm', 'kubectl', 'kubelet']);
      expect(r.state.packages).toMatchObject({ kubelet: '1.30.0', kubeadm: '1.30.0', kubectl: '1.30.0', libfoo: '1.1' });
      expect(r.state.held).toEqual(['kubectl']);
      expect(r.state.status).toMatchObject({ kubectl: 'hi', kubelet: 'ii', kubeadm: 'ii' });
    });

    it('hold patterns: kube* and lib[f]oo hold the installed matches (dpkg-query); libfoo stays 1.0', { timeout: 60_000 }, async () => {
      const r = await run('apt hold patterns', { family: 'apt', fault: null, agentArgs: ['--lock-timeout', '30', '--hold', 'kube* lib[f]oo'] });
      expect(r.exitCode).toBe(0);
      // kube* is a pattern, so it holds every installed package it matches: kubectx (the node has it) as well.
      expect([...r.report.held].sort()).toEqual(['kubeadm', 'kubectl', 'kubectx', 'kubelet', 'libfoo']);
      expect(names(r)).toEqual([]);
      expect(r.state.packages).toMatchObject({ libfoo: '1.0', kubelet: '1.30.0' });
      expect(r.state.held).toEqual([]);
    });

    it('deb822-only sources (Ubuntu 24.04 style): security suite picked out of a multi-suite stanza', { timeout: 60_000 }, async () => {
      const r = await run('apt deb822 sources', { family: 'apt', fault: null, setup: ['deb822-sources'] });
      expect(r.exitCode).toBe(0);
      expect(names(r)).toEqual(['libfoo']);
      expect(r.state.packages).toMatchObject({ libfoo: '1.1', bar: '1.0', kubelet: '1.30.0' });
    });

    it('kubernetes.list is not used and left byte-for-byte unchanged', { timeout: 60_000 }, async () => {
      const r = await run('apt kubernetes.list', { family: 'apt', fault: null, setup: ['kubernetes-list'] });
      expect(r.exitCode).toBe(0);
      expect(names(r)).toEqual(['libfoo']);
      expect(r.state.packages).toMatchObject({ kubectx: '1.0', kubelet: '1.30.0' });
      expect(r.observations.kubernetesListBefore).toBeTruthy();
      expect(r.observations.kubernetesListAfter).toBe(r.observations.kubernetesListBefore);
    });

    it('--all takes every source (bar 1.0 -> 2.0 from -updates) and still holds the kube packages', { timeout: 60_000 }, async () => {
      const r = await run('apt --all', { family: 'apt', fault: null, agentArgs: ['--lock-timeout', '30', '--all'] });
      expect(r.exitCode).toBe(0);
      expect(names(r)).toEqual(['bar', 'libfoo']);
      expect(r.state.packages).toMatchObject({ bar: '2.0', libfoo: '1.1', kubelet: '1.30.0', kubeadm: '1.30.0', kubectl: '1.30.0' });
      expect(r.state.held).toEqual([]);
    });

    it('--download-only installs nothing and sets no hold', { timeout: 60_000 }, async () => {
      const r = await run('apt --download-only', { family: 'apt', fault: null, agentArgs: ['--lock-timeout', '30', '--security-only', '--download-only'] });
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('no-updates');
      expect(r.report.upgraded).toEqual([]);
      expect(r.state.packages).toMatchObject({ libfoo: '1.0', bar: '1.0', kubelet: '1.30.0' });
      expect(r.state.held).toEqual([]);
    });

    it('--dry-run lists the would-be upgrades and changes nothing', { timeout: 60_000 }, async () => {
      const r = await run('apt dry-run', { family: 'apt', fault: null, agentArgs: ['--dry-run'] });
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.report.upgraded).toEqual([{ name: 'libfoo', from: '1.0', to: '1.1' }]);
      for (const [name, version] of Object.entries(h.base.apt)) expect(r.state.packages[name], name).toBe(version);
      expect(r.state.held).toEqual([]);
      expect(r.state.status).toMatchObject(KUBE);
    });

    it('--dry-run with a kernel update offered: says the upgrade would need a reboot (the scan before cordon)', { timeout: 60_000 }, async () => {
      const r = await run('apt dry-run kernel', { family: 'apt', fault: 'reboot-required', agentArgs: ['--dry-run'] });
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.report.upgraded.map((u) => u.name)).toContain('linux-image-amd64');
      expect(r.report).toMatchObject({ rebootRequired: true, rebootPackages: expect.arrayContaining(['linux-image-amd64']) });
      for (const [name, version] of Object.entries(h.base.apt)) expect(r.state.packages[name], name).toBe(version);
    });

    it('unsupported OS (ID=alpine): UNSUPPORTED_OS, changes nothing', { timeout: 30_000 }, async () => {
      const r = await run('apt unsupported-os', { family: 'apt', fault: null, setup: ['unsupported-os'] });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('UNSUPPORTED_OS');
      expect(r.state.packages.libfoo).toBe('1.0');
    });

    it('not root: NOT_ROOT', { timeout: 30_000 }, async () => {
      const r = await run('apt not-root', { family: 'apt', fault: null, setup: ['not-root'] });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('NOT_ROOT');
      expect(r.state.packages.libfoo).toBe('1.0');
    });

    it('apt-lock held 3 s, lock timeout 6 s: waits for the real apt holder, then patches', { timeout: 60_000 }, async () => {
      const r = await run('apt-lock 3s < timeout 6s', { family: 'apt', fault: 'apt-lock', params: { holdSeconds: 3 }, agentArgs: ['--lock-timeout', '6'] });
      expect(r.observations.lockHolder).toMatch(/\d/); // a real process held lock-frontend
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.durationMs).toBeGreaterThanOrEqual(2_500);
      expect(r.state.packages).toMatchObject({ libfoo: '1.1', kubelet: '1.30.0' });
      expect(r.state.held).toEqual([]);
    });

    it('apt-lock held 8 s, lock timeout 3 s: LOCK_TIMEOUT after about 3 s, nothing changed', { timeout: 60_000 }, async () => {
      const r = await run('apt-lock 8s > timeout 3s', { family: 'apt', fault: 'apt-lock', params: { holdSeconds: 8 }, agentArgs: ['--lock-timeout', '3'] });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('LOCK_TIMEOUT');
      expect(r.durationMs).toBeGreaterThanOrEqual(2_500);
      expect(r.durationMs).toBeLessThan(7_500);
      expect(r.state.packages.libfoo).toBe('1.0');
      expect(r.state.held).toEqual([]);
    });

    it('SIGTERM while waiting for the lock: one AGENT_CRASHED report, exit 143, temporary files gone, nothing changed', { timeout: 60_000 }, async () => {
      const r = await run('apt SIGTERM mid-run', {
        family: 'apt',
        fault: 'apt-lock',
        params: { holdSeconds: 6 },
        agentArgs: ['--lock-timeout', '30'],
        signal: { name: 'TERM', afterMs: 1500 },
      });
      expect(r.exitCode).toBe(143);
      expect(r.report.result).toBe('failed');
      expect(r.report.error?.code).toBe('AGENT_CRASHED');
      expect(r.stdout.trim().split('\n')).toHaveLength(1);
      expect(r.observations.leftoverTempDirs).toBe('0');
      expect(r.state.held).toEqual([]);
      expect(r.state.packages).toMatchObject({ libfoo: '1.0', kubelet: '1.30.0' });
    });

    it.each(['404', 'hang'] as const)('keyserver-unreachable (the stub answers %s): patched, no connection', { timeout: 60_000 }, async (mode) => {
      const r = await run(`apt keyserver ${mode}`, { family: 'apt', fault: 'keyserver-unreachable', params: { keyserver: mode } });
      expect(r.exitCode).toBe(0);
      expect(names(r)).toEqual(['libfoo']);
      expect(r.observations.hkpConnections).toBe('0');
      // gpg itself fails there: "No data" on a 404; on a stub that never answers it is still waiting when killed.
      if (mode === '404') expect(r.observations.keyserverProbe).toMatch(/keyserver receive failed/);
      else expect(r.observations.keyserverProbe).toBe('');
    });

    it('keyserver-unreachable: patched, and the agent never connects to a keyserver', { timeout: 60_000 }, async () => {
      const r = await run('apt keyserver-unreachable', { family: 'apt', fault: 'keyserver-unreachable' });
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.observations.hkpConnections).toBe('0');
      expect(r.observations.keyserverProbe).toMatch(/keyserver receive failed/); // the fault is live for anyone who tries
    });

    it('reboot-required: the kernel-like linux-image-amd64 sets /var/run/reboot-required', { timeout: 60_000 }, async () => {
      const r = await run('apt reboot-required', { family: 'apt', fault: 'reboot-required' });
      expect(r.exitCode).toBe(0);
      expect(names(r)).toEqual(['libfoo', 'linux-image-amd64']);
      expect(r.report.rebootRequired).toBe(true);
      expect(r.report.rebootPackages).toEqual(['linux-image-amd64']);
      expect(r.state.rebootRequired).toBe(true);
    });

    it('repo-unreachable: REPO_UNREACHABLE (apt-get update --error-on=any), nothing changed, holds restored', { timeout: 60_000 }, async () => {
      const r = await run('apt repo-unreachable', { family: 'apt', fault: 'repo-unreachable' });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('REPO_UNREACHABLE');
      expect(r.state.packages.libfoo).toBe('1.0');
      expect(r.state.held).toEqual([]);
    });

    it('disk-full (64 KiB archive cache, --min-free-mb 0): the download-size preflight says DISK_FULL', { timeout: 60_000 }, async () => {
      const r = await run('apt disk-full (download size)', { family: 'apt', fault: 'disk-full', agentArgs: ['--min-free-mb', '0'] });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('DISK_FULL');
      expect(r.state.packages.libfoo).toBe('1.0');
      expect(r.state.held).toEqual([]);
    });

    it('disk-full with the default --min-free-mb floor: DISK_FULL before anything runs', { timeout: 60_000 }, async () => {
      const r = await run('apt disk-full (floor)', { family: 'apt', fault: 'disk-full' });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('DISK_FULL');
      expect(r.state.packages.libfoo).toBe('1.0');
    });

    it('dpkg-interrupted: the agent runs dpkg --configure -a and patches', { timeout: 60_000 }, async () => {
      const r = await run('apt dpkg-interrupted', { family: 'apt', fault: 'dpkg-interrupted' });
      expect(Number(r.observations.dpkgAuditBefore)).toBeGreaterThan(0);
      expect(r.observations.pendingStatusBefore).toBe('iU');
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.state.status.pending).toBe('ii');
      expect(r.state.packages.libfoo).toBe('1.1');
    });

    it('postinst-fails: POSTINST_FAILED; failpkg left half-configured, the other upgrade completed', { timeout: 60_000 }, async () => {
      const r = await run('apt postinst-fails', { family: 'apt', fault: 'postinst-fails' });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('POSTINST_FAILED');
      expect(r.state.packages.failpkg).toBe('1.1');
      expect(r.state.status.failpkg).toBe('iF');
      expect(names(r)).toEqual(['libfoo']); // failpkg is not fully installed, so not in `upgraded`
      expect(r.state.held).toEqual([]);
    });
  });

  describe.concurrent('dnf (Rocky 9 style node: dnf/rpm in the Debian image, /etc/os-release faked)', () => {
    it('clean security patch from updateinfo: libfoo 1.1, bar stays 1.0 (bugfix only), kube packages excluded', { timeout: 60_000 }, async () => {
      const r = await run('dnf clean', { family: 'dnf', fault: null });
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.report.upgraded).toEqual([{ name: 'libfoo', from: '1.0-1', to: '1.1-1' }]);
      expect(r.report.held).toEqual(['kubeadm', 'kubectl', 'kubelet']);
      expect(r.state.packages).toMatchObject({ libfoo: '1.1-1', bar: '1.0-1', kubelet: '1.30.0-1', kubeadm: '1.30.0-1', kubectl: '1.30.0-1', kernel: '5.14.0-1' });
      expect(r.report.rebootRequired).toBe(false);
    });

    it('hold patterns: dnf gets --exclude=lib[f]oo as written; libfoo stays 1.0-1, the kube* packages excluded', { timeout: 60_000 }, async () => {
      const r = await run('dnf hold patterns', { family: 'dnf', fault: null, agentArgs: ['--lock-timeout', '30', '--hold', 'kube* lib[f]oo'] });
      expect(r.exitCode).toBe(0);
      expect([...r.report.held].sort()).toEqual(['kubeadm', 'kubectl', 'kubelet', 'libfoo']);
      expect(names(r)).toEqual([]);
      expect(r.state.packages).toMatchObject({ libfoo: '1.0-1', kubelet: '1.30.0-1' });
    });

    it('apt-lock (a real rpm transaction holding the rpm lock) 3 s, timeout 6 s: waits, then patches', { timeout: 60_000 }, async () => {
      const r = await run('dnf lock 3s < timeout 6s', { family: 'dnf', fault: 'apt-lock', params: { holdSeconds: 3 }, agentArgs: ['--lock-timeout', '6'] });
      expect(r.exitCode).toBe(0);
      expect(names(r)).toEqual(['libfoo']);
      expect(r.durationMs).toBeGreaterThan(2_000);
      expect(r.observations.lockHolder).not.toBe('');
    });

    it('apt-lock (rpm lock) 8 s, timeout 3 s: LOCK_TIMEOUT, nothing changed', { timeout: 60_000 }, async () => {
      const r = await run('dnf lock 8s > timeout 3s', { family: 'dnf', fault: 'apt-lock', params: { holdSeconds: 8 }, agentArgs: ['--lock-timeout', '3'] });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('LOCK_TIMEOUT');
      expect(r.state.packages).toMatchObject({ libfoo: '1.0-1' });
    });

    it('reboot-required: install-only kernel 5.14.1 installed beside 5.14.0; needs-restarting -r says reboot', { timeout: 60_000 }, async () => {
      const r = await run('dnf reboot-required', { family: 'dnf', fault: 'reboot-required' });
      expect(r.exitCode).toBe(0);
      expect(r.report.upgraded).toContainEqual({ name: 'kernel', from: '5.14.0-1', to: '5.14.1-1' });
      expect(r.report.rebootRequired).toBe(true);
      expect(r.report.rebootPackages).toContain('kernel');
      expect(r.state.allVersions.kernel).toEqual(['5.14.0-1', '5.14.1-1']);
      expect(r.state.rebootRequired).toBe(true);
    });

    it('postinst-fails: dnf exits 0 and installs the package; the agent reports POSTINST_FAILED', { timeout: 60_000 }, async () => {
      const r = await run('dnf postinst-fails', { family: 'dnf', fault: 'postinst-fails' });
      expect(r.stderr).toMatch(/dnf upgrade exited 0/); // what real dnf does (recorded for the fidelity check)
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('POSTINST_FAILED');
      expect(r.state.packages.failpkg).toBe('1.1-1');
      expect(names(r)).toEqual(['failpkg', 'libfoo']);
    });

    it('repo-unreachable: REPO_UNREACHABLE, nothing changed', { timeout: 60_000 }, async () => {
      const r = await run('dnf repo-unreachable', { family: 'dnf', fault: 'repo-unreachable' });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('REPO_UNREACHABLE');
      expect(r.state.packages.libfoo).toBe('1.0-1');
    });

    it('disk-full (64 KiB /var/cache/dnf, --min-free-mb 0): DISK_FULL, nothing changed', { timeout: 60_000 }, async () => {
      const r = await run('dnf disk-full', { family: 'dnf', fault: 'disk-full', agentArgs: ['--min-free-mb', '0'] });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('DISK_FULL');
      expect(r.state.packages.libfoo).toBe('1.0-1');
    });

    it('--all upgrades bugfix errata too (bar 2.0) and still excludes kubelet; --download-only installs nothing', { timeout: 60_000 }, async () => {
      const all = await run('dnf --all', { family: 'dnf', fault: null, agentArgs: ['--lock-timeout', '30', '--all'] });
      expect(all.exitCode).toBe(0);
      expect(names(all)).toEqual(['bar', 'libfoo']);
      expect(all.state.packages).toMatchObject({ bar: '2.0-1', libfoo: '1.1-1', kubelet: '1.30.0-1' });
      const download = await run('dnf --download-only', { family: 'dnf', fault: null, agentArgs: ['--lock-timeout', '30', '--download-only'] });
      expect(download.exitCode).toBe(0);
      expect(download.report.result).toBe('no-updates');
      expect(download.state.packages).toMatchObject({ libfoo: '1.0-1', bar: '1.0-1' });
    });

    it('--dry-run lists the would-be upgrades and changes nothing', { timeout: 60_000 }, async () => {
      const r = await run('dnf dry-run', { family: 'dnf', fault: null, agentArgs: ['--dry-run'] });
      expect(r.exitCode).toBe(0);
      expect(r.report.result).toBe('patched');
      expect(r.report.upgraded).toEqual([{ name: 'libfoo', from: '1.0-1', to: '1.1-1' }]);
      for (const [name, version] of Object.entries(h.base.dnf)) expect(r.state.packages[name], name).toBe(version);
    });

    it('unsupported OS: UNSUPPORTED_OS', { timeout: 30_000 }, async () => {
      const r = await run('dnf unsupported-os', { family: 'dnf', fault: null, setup: ['unsupported-os'] });
      expect(r.exitCode).toBe(1);
      expect(r.report.error?.code).toBe('UNSUPPORTED_OS');
    });
  });
  describe('fidelity: the simulator agrees with real apt and dnf (npm run fidelity)', () => {
    it('every fault the harness supports gives the same result, error, reboot, upgraded and held packages in both', { timeout: 180_000 }, async () => {
      const reusing: Harness = {
        workDir: h.workDir,
        timings: h.timings,
        base: h.base,
        run: async (o) => results.get(keyOf(o)) ?? run(`fidelity ${o.family} ${o.fault}`, o),
        close: () => h.close(),
      };
      const rows = await runFidelity(reusing);
      console.log(`[harness] fidelity\n${rows.map((r) => `  ${formatRow(r)}`).join('\n')}`);
      expect(rows.length).toBeGreaterThanOrEqual(14);
      expect(rows.filter((r) => r.differences.length > 0).map(formatRow)).toEqual([]);
    });
  });
});
