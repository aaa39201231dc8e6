/**
 * What the node agent does on a simulated node: the same decisions as the real agent (src/agent), and the seed's
 * legacy script where a scenario asks for `agent: legacy`, with the time each part takes. It returns the agent
 * report the real agent would print, so the engine cannot tell the simulator from a real node.
 *
 * Faithful to the real tools (notes/os-harness.md):
 * - modern apt: `DPkg::Lock::Timeout` waits on lock-frontend up to lockTimeoutSeconds, then LOCK_TIMEOUT; an
 *   interrupted dpkg is repaired with `dpkg --configure -a` before anything else;
 *   `apt-get update --error-on=any` turns an unreachable repository into REPO_UNREACHABLE; no keyserver access.
 * - legacy apt (the seed's script): fetches a GPG key first (KEYSERVER_UNREACHABLE where keyservers are blocked);
 *   polls only /var/lib/dpkg/lock, which apt releases while hooks run, so it runs apt-get into a held lock-frontend
 *   and relies on `retry_command` (5 tries, 30 s apart); a plain `apt-get update` exits 0 when a repository is
 *   unreachable, so it silently finds nothing to do; it holds only kubeadm/kubectl/kubelet/kubernetes-cni, and on
 *   deb822 systems (Ubuntu 24.04) finds no "security" line in sources.list and upgrades from every source.
 * - dnf: `--security` from updateinfo; dnf waits on the rpm lock (the modern agent bounds the wait); reboot needed
 *   when `needs-restarting -r` would say so (kernel, glibc, systemd, ...).
 */
import type { AgentReport, ErrorCode, PackageChange } from '../engine/report.ts';
import { holdMatches, isHoldPattern } from '../engine/plan.ts';
import type { OsProfile } from './os.ts';
import { versionsOf } from './os.ts';
import type { Random } from './random.ts';

/** The packages the seed's script holds (apt-mark hold) or excludes (yum --exclude). */
export const LEGACY_HOLDS = ['kubeadm', 'kubectl', 'kubelet', 'kubernetes-cni'] as const;

/** Packages after whose update `needs-restarting -r` asks for a reboot. */
const DNF_REBOOT_PACKAGES: ReadonlySet<string> = new Set(['kernel', 'kernel-core', 'glibc', 'linux-firmware', 'systemd', 'dbus', 'microcode_ctl']);

const LEGACY_RETRIES = 5;
const LEGACY_RETRY_DELAY_MS = 30_000;

export interface AgentFaults {
  /** Milliseconds another package manager process still holds the lock when the agent starts (0: free). */
  lockHeldMs: number;
  keyserverUnreachable: boolean;
  repoUnreachable: boolean;
  diskFull: boolean;
  /** The package whose maintainer script fails, or null. */
  postinstFails: string | null;
  /** A dpkg run was interrupted earlier; `recoverable`: `dpkg --configure -a` repairs it. */
  dpkgInterrupted: { recoverable: boolean } | null;
  /** The agent's pod is killed (OOMKilled) before it prints a report. */
  agentCrash: boolean;
}

export const NO_AGENT_FAULTS: AgentFaults = {
  lockHeldMs: 0,
  keyserverUnreachable: false,
  repoUnreachable: false,
  diskFull: false,
  postinstFails: null,
  dpkgInterrupted: null,
  agentCrash: false,
};

export interface AgentRunInput {
  os: OsProfile;
  /** Installed packages and their versions. */
  installed: { has(name: string): boolean; get(name: string): string | undefined; keys(): Iterable<string> };
  /** Updates the node's repositories offer, by distribution package name. */
  offered: { security: readonly string[]; other: readonly string[] };
  agent: 'modern' | 'legacy';
  securityOnly: boolean;
  holdPackages: readonly string[];
  lockTimeoutSeconds: number;
  downloadOnly: boolean;
  /** The dry run (scan): what would be upgraded and whether a reboot would follow; nothing changes. */
  reportOnly?: boolean;
  /** A download-only run already put the packages in the cache: the patch skips their download. */
  prefetched?: boolean;
  faults: AgentFaults;
  random: Random;
}

export interface AgentRun {
  report: AgentReport;
  /** How long the Job runs until it prints the report (or dies). */
  durationMs: number;
  /** The pod dies without a report (the engine sees JOB_FAILED). */
  diesWithoutReport: boolean;
}

export function runAgent(input: AgentRunInput): AgentRun {
  const { os, random, faults } = input;
  let t = random.int(3_000, 8_000); // pod scheduled, image present, host namespaces entered
  const apt = os.family === 'apt';
  // The scan is patchpilot's own dry run whatever agent patches (the seed's script has no report-only mode).
  const legacy = input.agent === 'legacy' && input.reportOnly !== true;
  const fail = (code: ErrorCode, message: string, upgraded: PackageChange[] = [], held: string[] = []): AgentRun => ({
    report: { result: 'failed', upgraded, held, rebootRequired: false, rebootPackages: [], error: { code, message }, durationSeconds: secondsOf(t) },
    durationMs: t,
    diesWithoutReport: false,
  });

  if (os.family === 'none') return fail('UNSUPPORTED_OS', `unsupported operating system: ${os.osImage}`);

  if (legacy && apt) {
    // The seed's script: `apt-key adv --keyserver keyserver.ubuntu.com --recv-keys ...` before anything else.
    if (faults.keyserverUnreachable) {
      t += random.int(10_000, 30_000);
      return fail('KEYSERVER_UNREACHABLE', 'gpg: keyserver receive failed: End of file (keyserver.ubuntu.com unreachable)');
    }
    t += random.int(1_000, 3_000);
  }

  const installed = input.installed;
  const holdList = legacy ? LEGACY_HOLDS : input.holdPackages;
  // As the agent does: a name is held when installed, a pattern (kernel*) holds every installed package it matches.
  const held = [...new Set(holdList.flatMap((p) => (installed.has(p) ? [p] : isHoldPattern(p) ? [...installed.keys()].filter((name) => holdMatches(p, name)) : [])))];
  // The seed's script greps "security" out of /etc/apt/sources.list; deb822 systems have none there, so it falls
  // back to every source. The modern agent reads deb822 and classic sources alike.
  const allSources = !input.securityOnly || (legacy && apt && os.deb822Sources);
  const wanted = [...input.offered.security, ...(allSources ? input.offered.other : [])];
  const candidates = [...new Set(wanted)].filter((p) => installed.has(p) || p === os.kernelPackage);
  const upgrades = candidates.filter((p) => !held.includes(p));

  const rebootPackagesOf = (names: readonly string[]) => names.filter((name) => (apt ? name === os.kernelPackage : DNF_REBOOT_PACKAGES.has(name)));
  if (input.reportOnly) {
    // The agent's --dry-run: package lists into a private directory (no lock, no dpkg repair, no disk check), then
    // apt-get -s / dnf check-update lists what would change. The scan is always the modern agent's.
    t += apt ? random.int(8_000, 20_000) : random.int(15_000, 35_000);
    if (faults.repoUnreachable) {
      t += apt ? random.int(6_000, 9_000) : random.int(500, 2_000);
      return fail(
        'REPO_UNREACHABLE',
        apt ? 'E: Failed to fetch http://security.ubuntu.com/ubuntu/dists/jammy-security/InRelease  Could not connect' : "Error: Failed to download metadata for repo 'baseos': Cannot download repomd.xml",
        [],
        held,
      );
    }
    const wouldUpgrade: PackageChange[] = upgrades.map((name) => {
      const versions = versionsOf(os, name);
      return { name, from: installed.get(name) ?? versions.from, to: versions.to };
    });
    const rebootPackages = rebootPackagesOf(upgrades);
    return {
      report: {
        result: wouldUpgrade.length > 0 ? 'patched' : 'no-updates',
        upgraded: wouldUpgrade,
        held,
        rebootRequired: rebootPackages.length > 0,
        rebootPackages,
        error: null,
        durationSeconds: secondsOf(t),
      },
      durationMs: t,
      diesWithoutReport: false,
    };
  }

  // Waiting for the package manager's lock (unattended-upgrades, dnf-automatic, a human).
  if (faults.lockHeldMs > 0 && !input.downloadOnly) {
    const lockTimeoutMs = input.lockTimeoutSeconds * 1000;
    if (legacy && apt) {
      // retry_command: an attempt every 30 s; each fails at once while lock-frontend is held.
      const attemptsNeeded = Math.ceil(faults.lockHeldMs / LEGACY_RETRY_DELAY_MS);
      if (attemptsNeeded >= LEGACY_RETRIES) {
        t += LEGACY_RETRIES * LEGACY_RETRY_DELAY_MS;
        return fail('LOCK_TIMEOUT', 'E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 2318 (unattended-upgr) (gave up after 5 retries)', [], held);
      }
      t += attemptsNeeded * LEGACY_RETRY_DELAY_MS;
    } else if (legacy) {
      t += faults.lockHeldMs; // dnf waits for the rpm lock as long as it takes
    } else if (faults.lockHeldMs > lockTimeoutMs) {
      t += lockTimeoutMs;
      return fail(
        'LOCK_TIMEOUT',
        apt
          ? `E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 2318 (unattended-upgr) (waited ${input.lockTimeoutSeconds}s)`
          : `dnf: waited ${input.lockTimeoutSeconds}s for the rpm lock held by process 2318 (dnf-automatic)`,
        [],
        held,
      );
    } else {
      t += faults.lockHeldMs;
    }
  }

  if (faults.dpkgInterrupted && apt && !input.downloadOnly) {
    const message = "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.";
    if (legacy) {
      t += LEGACY_RETRIES * LEGACY_RETRY_DELAY_MS;
      return fail('DPKG_INTERRUPTED', message, [], held);
    }
    // The modern agent finishes the interrupted configuration first, as the message asks.
    t += random.int(5_000, 15_000);
    if (!faults.dpkgInterrupted.recoverable) {
      return fail('DPKG_INTERRUPTED', `dpkg --configure -a could not repair the interrupted dpkg run: ${message}`, [], held);
    }
  }

  // Refreshing package lists. After a prefetch (which refreshed the same security-only lists into the node's own
  // lists directory) every source answers "Hit" / metadata not changed: seconds, not tens of seconds.
  t += input.prefetched && !input.downloadOnly ? random.int(1_000, 3_000) : apt ? random.int(8_000, 20_000) : random.int(15_000, 35_000);
  if (faults.repoUnreachable) {
    if (legacy && apt) {
      // apt-get update exits 0 with "W: Failed to fetch": the stale lists offer nothing new.
      return {
        report: { result: 'no-updates', upgraded: [], held, rebootRequired: false, rebootPackages: [], error: null, durationSeconds: secondsOf(t) },
        durationMs: t,
        diesWithoutReport: false,
      };
    }
    // Measured on real apt (connection refused, with apt's own retries) about 7 s; dnf gives up at once.
    t += apt ? random.int(6_000, 9_000) : random.int(500, 2_000);
    return fail(
      'REPO_UNREACHABLE',
      apt ? 'E: Failed to fetch http://security.ubuntu.com/ubuntu/dists/jammy-security/InRelease  Could not connect' : "Error: Failed to download metadata for repo 'baseos': Cannot download repomd.xml",
      [],
      held,
    );
  }

  if (upgrades.length === 0) {
    return {
      report: { result: 'no-updates', upgraded: [], held, rebootRequired: false, rebootPackages: [], error: null, durationSeconds: secondsOf(t) },
      durationMs: t,
      diesWithoutReport: false,
    };
  }

  // apt checks the free space against the download size before fetching anything; dnf finds out while downloading.
  if (faults.diskFull && apt) return fail('DISK_FULL', "E: You don't have enough free space in /var/cache/apt/archives/.", [], held);
  // Downloading (draws taken either way, so a prefetch changes the time and nothing else the node does).
  for (const name of upgrades) {
    const downloadMs = name === os.kernelPackage ? random.int(8_000, 15_000) : random.int(1_000, 4_000);
    if (!input.prefetched || input.downloadOnly) t += downloadMs;
  }
  if (faults.diskFull) return fail('DISK_FULL', 'Curl error (23): Failed writing received data to disk', [], held);
  if (input.downloadOnly) {
    return {
      report: { result: 'no-updates', upgraded: [], held, rebootRequired: false, rebootPackages: [], error: null, durationSeconds: secondsOf(t) },
      durationMs: t,
      diesWithoutReport: false,
    };
  }

  // Installation. A crash stops it part-way. A failing maintainer script does not stop the others (real dpkg goes on
  // configuring them, leaving that one half-configured; rpm installs it and only warns): the run still fails.
  const upgraded: PackageChange[] = [];
  const crashAfter = faults.agentCrash ? Math.floor(upgrades.length / 2) : -1;
  for (const [i, name] of upgrades.entries()) {
    if (i === crashAfter) {
      // Killed mid-transaction: what was installed stays installed, and on apt dpkg is left interrupted for the next run.
      return { report: fail('AGENT_CRASHED', 'killed', upgraded, held).report, durationMs: t, diesWithoutReport: true };
    }
    t += name === os.kernelPackage ? random.int(20_000, 40_000) : random.int(2_000, 6_000);
    const versions = versionsOf(os, name);
    // dpkg leaves the failing package half-configured (not upgraded); rpm has installed it all the same.
    if (faults.postinstFails === name && apt) continue;
    upgraded.push({ name, from: installed.get(name) ?? versions.from, to: versions.to });
  }
  if (faults.postinstFails !== null && upgrades.includes(faults.postinstFails)) {
    const name = faults.postinstFails;
    return fail(
      'POSTINST_FAILED',
      apt
        ? `dpkg: error processing package ${name} (--configure): installed ${name} package post-installation script subprocess returned error exit status 1`
        : `Error in POSTIN scriptlet in rpm package ${name}`,
      upgraded,
      held,
    );
  }
  const rebootPackages = rebootPackagesOf(upgraded.map((u) => u.name));
  t += random.int(1_000, 3_000); // holds released, kubernetes.list restored, reboot check
  return {
    report: { result: 'patched', upgraded, held, rebootRequired: rebootPackages.length > 0, rebootPackages, error: null, durationSeconds: secondsOf(t) },
    durationMs: t,
    diesWithoutReport: false,
  };
}

const secondsOf = (ms: number) => Math.round(ms / 1000);
