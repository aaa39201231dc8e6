/**
 * The real-OS harness: runs the node agent (src/agent/patchpilot-agent.sh) against real apt/dpkg and dnf/rpm in
 * throw-away nodes on this Debian machine, without Docker (notes/os-harness.md, "Recommended design").
 *
 *   const h = await prepareHarness();           // image (cached .tar.zst), repositories, base layers
 *   const r = await h.run({ family: 'apt', fault: 'apt-lock', params: { holdSeconds: 3 }, agentArgs: ['--lock-timeout', '6'] });
 *   await h.close();
 *
 * Everything lives on a tmpfs the harness mounts (and unmounts in close()); each run is a node of its own
 * (src/harness/node.ts). Faults are named like the simulator's fault kinds (src/sim).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { agentScript } from '../agent/index.ts';
import { parseAgentReport, type AgentReport } from '../engine/report.ts';
import { bash, q } from './exec.ts';
import { ensureImage, IMAGE_PACKAGES } from './image.ts';
import { readOut, runNode } from './node.ts';
import { APT_BASE, APT_EXTRA_DEBS, buildRepos, NODE_REPO_URL, RPM_BASE, type RepoVariant, type Repos } from './repos.ts';
import { startRepoServer, type RepoServer } from './server.ts';

export type Family = 'apt' | 'dnf';

/** Simulator fault kinds the harness can inject, per family. */
export const HARNESS_FAULTS = {
  apt: ['apt-lock', 'keyserver-unreachable', 'reboot-required', 'repo-unreachable', 'disk-full', 'dpkg-interrupted', 'postinst-fails'],
  dnf: ['apt-lock', 'reboot-required', 'repo-unreachable', 'postinst-fails', 'disk-full'],
} as const;
export type HarnessFault = (typeof HARNESS_FAULTS)[Family][number];

/** The HKP keyserver stub's three ways to fail, as keyservers fail for nodes in restricted networks (notes: D). */
const HKP_STUB = {
  close: 'echo connection >>$LOG', // gpg: keyserver receive failed: End of file
  '404': "echo connection >>$LOG; printf 'HTTP/1.0 404 Not Found\\r\\nContent-Length: 0\\r\\n\\r\\n'", // No data
  hang: 'echo connection >>$LOG; sleep 3600', // gpg waits forever
} as const;

/** Node set-ups that are not faults. */
export type NodeSetup =
  | 'deb822-sources' // apt: no sources.list, one deb822 .sources file listing all three suites in one stanza
  | 'kubernetes-list' // apt: /etc/apt/sources.list.d/kubernetes.list offering newer kube packages and kubectx 2.0
  | 'pre-held' // apt: kubectl already held by the administrator before the agent runs
  | 'unsupported-os' // /etc/os-release says ID=alpine
  | 'not-root'; // the agent runs as uid 65534

export interface RunOptions {
  family: Family;
  fault: HarnessFault | null;
  /**
   * apt-lock: holdSeconds (how long the holder keeps the lock after the agent starts, default 3).
   * keyserver-unreachable: how the HKP stub fails (close the connection, answer 404, or never answer; default close).
   */
  params?: { holdSeconds?: number; keyserver?: 'close' | '404' | 'hang' };
  setup?: NodeSetup[];
  /** Arguments for the agent (default: --lock-timeout 30). */
  agentArgs?: string[];
  /** Keep the node's upper layer for inspection (default: removed). */
  keep?: boolean;
  /** Send this signal to the agent after `afterMs` (the agent must still report, and clean up). */
  signal?: { name: 'TERM' | 'INT' | 'HUP'; afterMs: number };
}

export interface NodeState {
  /** Installed packages and their versions (dnf: the newest installed version of install-only packages). */
  packages: Record<string, string>;
  /** apt: dpkg's status abbreviation per package ("ii", "hi", "iF", ...). dnf: "ii" for every installed package. */
  status: Record<string, string>;
  /** apt: `apt-mark showhold`. dnf: [] (the agent excludes, never locks versions). */
  held: string[];
  /** apt: /var/run/reboot-required exists. dnf: `dnf needs-restarting -r` exits 1. */
  rebootRequired: boolean;
  /** dnf: every installed version per package (install-only kernels have several). */
  allVersions: Record<string, string[]>;
}

export interface RunResult {
  exitCode: number;
  report: AgentReport;
  stdout: string;
  stderr: string;
  /** Wall time of the agent alone. */
  durationMs: number;
  /** Wall time of the whole node (set-up, fault, agent, state). */
  nodeMs: number;
  state: NodeState;
  /** Scenario facts: hkpConnections, keyserverProbe, kubernetesListBefore/After, dpkgAuditBefore, holderLog ... */
  observations: Record<string, string>;
}

export interface Harness {
  readonly workDir: string;
  /** Seconds per preparation step (image, extract, repos, base layers). */
  readonly timings: Record<string, number>;
  /** The base layer's packages (the state a node starts in). */
  readonly base: Record<Family, Readonly<Record<string, string>>>;
  run(opts: RunOptions): Promise<RunResult>;
  close(): Promise<void>;
}

const REQUIRED_TOOLS = ['unshare', 'chroot', 'mount', 'umount', 'ip', 'socat', 'debootstrap', 'zstd', 'tar', 'gpg', 'gpgconf', 'dpkg-deb', 'apt-ftparchive', 'rpmbuild', 'createrepo_c', 'modifyrepo_c'];

function which(cmd: string): boolean {
  try {
    execFileSync('bash', ['-c', `command -v ${q(cmd)}`], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } });
    return true;
  } catch {
    return false;
  }
}

/** Whether this machine can run the harness; when not, why (root, namespaces, overlay, tmpfs, tools). */
export function harnessAvailable(): { ok: true } | { ok: false; reason: string } {
  if (process.platform !== 'linux') return { ok: false, reason: `needs Linux, not ${process.platform}` };
  if (process.getuid?.() !== 0) return { ok: false, reason: 'needs root (mount, unshare, chroot)' };
  const missing = REQUIRED_TOOLS.filter((t) => !which(t));
  if (missing.length > 0) return { ok: false, reason: `missing tools: ${missing.join(', ')} (run: bash scripts/setup-test-deps.sh)` };
  if (!existsSync('/usr/share/debootstrap/scripts/bookworm') && !existsSync(process.env.PATCHPILOT_HARNESS_CACHE ?? '/nonexistent')) {
    return { ok: false, reason: 'debootstrap has no bookworm script' };
  }
  // Namespaces, tmpfs and overlay, all in a throw-away mount namespace.
  try {
    execFileSync(
      'unshare',
      [
        '--mount', '--pid', '--net', '--fork', '--kill-child', '--propagation', 'private', 'bash', '-euc',
        'd=$(mktemp -d); mount -t tmpfs t "$d"; mkdir "$d"/l "$d"/u "$d"/w "$d"/m; mount -t overlay o -o "lowerdir=$d/l,upperdir=$d/u,workdir=$d/w" "$d/m"; ip link set lo up; umount "$d/m" "$d"; rmdir "$d"',
      ],
      { stdio: 'pipe', timeout: 10_000 },
    );
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return { ok: false, reason: `unshare/tmpfs/overlay not usable: ${err.stderr?.toString().trim() || err.message}` };
  }
  return { ok: true };
}

export async function prepareHarness(log: (m: string) => void = () => {}): Promise<Harness> {
  const timings: Record<string, number> = {};
  const step = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const r = await f();
    timings[name] = (Date.now() - t) / 1000;
    return r;
  };
  const workDir = mkdtempSync(join(tmpdir(), 'patchpilot-harness-'));
  await bash(`mount -t tmpfs -o size=4g,mode=700 patchpilot-harness ${q(workDir)}`);
  let server: RepoServer | undefined;
  try {
    const image = await step('image', () => ensureImage(workDir, log));
    timings.imageBuilt = image.built ? 1 : 0;
    const rootfs = join(workDir, 'rootfs');
    await step('extract', () => bash(`mkdir -p ${q(rootfs)} && tar -C ${q(rootfs)} -I zstd -xf ${q(image.path)}`));
    const repos = await step('repos', () => buildRepos(workDir));
    server = await startRepoServer(repos.roots, workDir);
    const layers = await step('baseLayers', async () => {
      const [apt, dnf] = await Promise.all([buildAptBase(workDir, rootfs, repos), buildDnfBase(workDir, rootfs, repos)]);
      return { apt, dnf };
    });
    return new HarnessImpl(workDir, timings, rootfs, layers, server);
  } catch (e) {
    await server?.close();
    await bash(`umount -l ${q(workDir)} && rmdir ${q(workDir)}`).catch(() => {});
    throw e;
  }
}

const APT_SOURCES = (suites: string[]) =>
  suites.map((s) => `deb [signed-by=/etc/apt/keyrings/patchpilot-harness.gpg] ${NODE_REPO_URL}/apt ${s} main\n`).join('');

async function buildAptBase(work: string, rootfs: string, repos: Repos): Promise<string> {
  const dir = join(work, 'base-apt');
  const debs = join(repos.packagesDir, 'deb');
  const base = Object.entries(APT_BASE).map(([n, v]) => join(debs, `${n}_${v}_all.deb`));
  const r = await runNode({
    lowers: [rootfs],
    dir,
    bridge: null,
    body: `
      mkdir -p "$M/opt/harness/base" "$M/etc/apt/keyrings"
      cp ${base.map(q).join(' ')} "$M/opt/harness/base/"
      cp ${APT_EXTRA_DEBS.map((d) => q(join(debs, d))).join(' ')} "$M/opt/harness/"
      cp ${q(repos.keyring)} "$M/etc/apt/keyrings/patchpilot-harness.gpg"
      rm -f "$M"/etc/apt/sources.list.d/*
      printf %s ${q(APT_SOURCES(['bookworm', 'bookworm-updates', 'bookworm-security']))} >"$M/etc/apt/sources.list"
      inroot sh -c 'dpkg -i /opt/harness/base/*.deb' >"$OUT/dpkg.log" 2>&1 || { cat "$OUT/dpkg.log" >&2; exit 1; }
      rm -rf "$M/opt/harness/base"
    `,
  });
  if (r.code !== 0) throw new Error(`apt base layer failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return join(dir, 'upper');
}

const ROCKY_OS_RELEASE = `NAME="Rocky Linux"
VERSION="9.4 (Blue Onyx)"
ID="rocky"
ID_LIKE="rhel centos fedora"
VERSION_ID="9.4"
PLATFORM_ID="platform:el9"
PRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"
`;

async function buildDnfBase(work: string, rootfs: string, repos: Repos): Promise<string> {
  const dir = join(work, 'base-dnf');
  const rpms = join(repos.packagesDir, 'rpm');
  const base = ['rocky-release-9.4-1', ...Object.entries(RPM_BASE).map(([n, v]) => `${n}-${v}`)].map((f) => join(rpms, `${f}.noarch.rpm`));
  const r = await runNode({
    lowers: [rootfs],
    dir,
    bridge: null,
    body: `
      mkdir -p "$M/opt/harness/base" "$M/etc/rpm" "$M/etc/dnf/plugins" "$M/etc/dnf/vars" "$M/etc/yum.repos.d"
      cp ${base.map(q).join(' ')} "$M/opt/harness/base/"
      cp ${q(join(rpms, 'failpkg-1.0-1.noarch.rpm'))} ${q(join(rpms, 'slowpkg-1.0-1.noarch.rpm'))} "$M/opt/harness/"
      # Debian's rpm keeps its database in ~/.rpmdb; a RHEL node has it in /var/lib/rpm.
      echo '%_dbpath /var/lib/rpm' >"$M/etc/rpm/macros.dbpath"
      rm -f "$M/etc/os-release"; printf %s ${q(ROCKY_OS_RELEASE)} >"$M/etc/os-release"
      printf '[main]\\nenabled = 0\\n' >"$M/etc/dnf/plugins/local.conf"   # Debian's dnf "local" plugin, absent on RHEL
      echo 9 >"$M/etc/dnf/vars/releasever"
      printf '[patchpilot-harness]\\nname=patchpilot harness\\nbaseurl=${NODE_REPO_URL}/rpm\\nenabled=1\\ngpgcheck=0\\nmetadata_expire=0\\n' >"$M/etc/yum.repos.d/patchpilot-harness.repo"
      inroot rpm --initdb
      inroot sh -c 'rpm -i --nodeps /opt/harness/base/*.rpm' >"$OUT/rpm.log" 2>&1 || { cat "$OUT/rpm.log" >&2; exit 1; }
      rm -rf "$M/opt/harness/base"
    `,
  });
  if (r.code !== 0) throw new Error(`dnf base layer failed (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  return join(dir, 'upper');
}

let nodeCounter = 0;

class HarnessImpl implements Harness {
  readonly base = { apt: APT_BASE, dnf: RPM_BASE };
  #closed = false;

  readonly workDir: string;
  readonly timings: Record<string, number>;
  private readonly rootfs: string;
  private readonly layers: Record<Family, string>;
  private readonly server: RepoServer;

  constructor(workDir: string, timings: Record<string, number>, rootfs: string, layers: Record<Family, string>, server: RepoServer) {
    this.workDir = workDir;
    this.timings = timings;
    this.rootfs = rootfs;
    this.layers = layers;
    this.server = server;
  }

  async run(opts: RunOptions): Promise<RunResult> {
    if (this.#closed) throw new Error('harness is closed');
    const { family, fault } = opts;
    if (fault !== null && !(HARNESS_FAULTS[family] as readonly string[]).includes(fault)) {
      throw new Error(`fault ${fault} is not supported for ${family} (supported: ${HARNESS_FAULTS[family].join(', ')})`);
    }
    const setup = new Set(opts.setup ?? []);
    const variant: RepoVariant = fault === 'reboot-required' ? 'kernel' : 'standard';
    const bridge = fault === 'repo-unreachable' ? null : (this.server.sockets[variant] ?? null);
    const dir = join(this.workDir, 'nodes', `${family}-${fault ?? 'none'}-${++nodeCounter}`);
    mkdirSync(dir, { recursive: true });
    const agentFile = join(dir, 'agent.sh');
    writeFileSync(agentFile, agentScript());
    const args = opts.agentArgs ?? ['--lock-timeout', '30'];

    const pre: string[] = [];
    const post: string[] = [];
    const obs = (key: string, cmd: string) => `printf '%s=%s\\n' ${q(key)} "$( (${cmd}) | tr '\\n' ' ' | sed 's/ *$//')" >>"$OUT/obs"`;
    if (setup.has('deb822-sources')) {
      pre.push(`rm -f "$M/etc/apt/sources.list"; printf %s ${q(
        `Types: deb\nURIs: ${NODE_REPO_URL}/apt\nSuites: bookworm bookworm-updates bookworm-security\nComponents: main\nSigned-By: /etc/apt/keyrings/patchpilot-harness.gpg\n`,
      )} >"$M/etc/apt/sources.list.d/patchpilot-harness.sources"`);
    }
    if (setup.has('kubernetes-list')) {
      pre.push(`printf %s ${q(APT_SOURCES(['kubernetes']))} >"$M/etc/apt/sources.list.d/kubernetes.list"`);
      pre.push(obs('kubernetesListBefore', 'cat "$M/etc/apt/sources.list.d/kubernetes.list" | sha256sum | cut -c1-16; stat -c %Y "$M/etc/apt/sources.list.d/kubernetes.list"'));
      post.push(obs('kubernetesListAfter', 'cat "$M/etc/apt/sources.list.d/kubernetes.list" | sha256sum | cut -c1-16; stat -c %Y "$M/etc/apt/sources.list.d/kubernetes.list"'));
    }
    if (setup.has('pre-held')) pre.push('inroot apt-mark hold kubectl >/dev/null');
    if (setup.has('unsupported-os')) pre.push(`rm -f "$M/etc/os-release"; printf 'ID=alpine\\nVERSION_ID=3.20\\nNAME="Alpine Linux"\\n' >"$M/etc/os-release"`);

    switch (fault) {
      case 'apt-lock': {
        const hold = opts.params?.holdSeconds ?? 3;
        // A real apt run holding lock-frontend (and dpkg's lock while its postinst sleeps): not flock(1). On dnf nodes
        // a real rpm transaction holding the rpm database lock while its %post sleeps.
        const holder =
          family === 'apt'
            ? `inroot PATCHPILOT_SLOW_SECONDS=${hold} DEBIAN_FRONTEND=noninteractive apt-get install -y /opt/harness/slowpkg_1.0_all.deb`
            : `inroot PATCHPILOT_SLOW_SECONDS=${hold} rpm -i --nodeps /opt/harness/slowpkg-1.0-1.noarch.rpm`;
        pre.push(`
          ${holder} >"$OUT/holder.log" 2>&1 &
          for _ in $(seq 500); do [[ -e "$M/run/slowpkg.started" ]] && break; sleep 0.02; done
          [[ -e "$M/run/slowpkg.started" ]] || { echo "lock holder did not start" >&2; cat "$OUT/holder.log" >&2; exit 1; }
          ${obs('lockHolder', 'inroot fuser /var/lib/dpkg/lock-frontend /var/lib/rpm/.rpm.lock 2>/dev/null | xargs')}`);
        post.push(obs('holderLog', 'tail -n 2 "$OUT/holder.log" | tr "\\n" " "'));
        break;
      }
      case 'keyserver-unreachable':
        // An HKP stub in the node's namespace that accepts and closes at once (gpg: "End of file"); any use of a
        // keyserver on the node goes there (dirmngr.conf), and every connection is counted.
        pre.push(`
          : >"$OUT/hkp.log"
          socat TCP-LISTEN:11371,bind=127.0.0.1,fork,reuseaddr SYSTEM:${q(HKP_STUB[opts.params?.keyserver ?? 'close'].replace('$LOG', '$OUT/hkp.log'))} &
          for _ in $(seq 200); do [[ -n "$(ss -Hltn 'sport = :11371' 2>/dev/null)" ]] && break; sleep 0.02; done
          mkdir -p "$M/root/.gnupg" "$M/etc/gnupg"; chmod 700 "$M/root/.gnupg"
          echo 'keyserver hkp://127.0.0.1:11371' | tee "$M/root/.gnupg/dirmngr.conf" >"$M/etc/gnupg/dirmngr.conf"`);
        post.push(obs('hkpConnections', 'wc -l <"$OUT/hkp.log"'));
        // Proves the fault is live: a keyserver fetch on this node fails the way it does in the field.
        post.push(obs('keyserverProbe', 'timeout 3 chroot "$M" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root gpg --batch --keyserver hkp://127.0.0.1:11371 --recv-keys 0x0123456789ABCDEF0123456789ABCDEF01234567 2>&1 | grep -m1 "keyserver receive failed" || true'));
        break;
      case 'reboot-required':
        // needs-restarting compares whole seconds: install the kernel at least a second after the node's "boot".
        if (family === 'dnf') pre.push('sleep 1.1');
        break;
      case 'disk-full':
        if (family === 'apt') pre.push('mount -t tmpfs -o size=64k full "$M/var/cache/apt/archives"; mkdir -p "$M/var/cache/apt/archives/partial"');
        else pre.push('mkdir -p "$M/var/cache/dnf"; mount -t tmpfs -o size=64k full "$M/var/cache/dnf"');
        break;
      case 'dpkg-interrupted':
        pre.push('inroot dpkg --unpack /opt/harness/pending_1.0_all.deb >/dev/null 2>&1');
        pre.push(obs('dpkgAuditBefore', 'inroot dpkg --audit | wc -l'));
        pre.push(obs('pendingStatusBefore', `inroot dpkg-query -W -f='\${db:Status-Abbrev}' pending`));
        break;
      case 'postinst-fails':
        pre.push(family === 'apt' ? 'inroot dpkg -i /opt/harness/failpkg_1.0_all.deb >/dev/null' : 'inroot rpm -i --nodeps /opt/harness/failpkg-1.0-1.noarch.rpm');
        break;
      default:
        break;
    }

    const agentCmd = setup.has('not-root')
      ? `chroot --userspec=65534:65534 "$M" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp bash -s -- ${args.map(q).join(' ')}`
      : `inroot bash -s -- ${args.map(q).join(' ')}`;
    const state =
      family === 'apt'
        ? `
          inroot dpkg-query -W -f='\${Package}\\t\${Version}\\t\${db:Status-Abbrev}\\n' >"$OUT/packages"
          inroot apt-mark showhold >"$OUT/held"
          if inroot test -e /var/run/reboot-required; then echo true; else echo false; fi >"$OUT/reboot"`
        : `
          inroot rpm -qa --qf '%{NAME}\\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\tii\\n' | sort -k1,1 -k2,2V >"$OUT/packages"
          : >"$OUT/held"
          set +e; inroot dnf -q -C needs-restarting -r >"$OUT/needs-restarting" 2>&1; nr=$?; set -e
          if [[ $nr -eq 1 ]]; then echo true; else echo false; fi >"$OUT/reboot"`;
    const body = `
      ${pre.join('\n')}
      t0=$(date +%s%N)
      set +e
      ${
        opts.signal
          ? `${agentCmd} <${q(agentFile)} >"$OUT/stdout" 2>"$OUT/stderr" &
      agent=$!
      sleep ${(opts.signal.afterMs / 1000).toFixed(3)}
      # The node's own PID namespace (its /proc is the chroot's) holds only its processes: the agent is the bash
      # reading its script from stdin.
      inroot pkill -${opts.signal.name} -f '^bash -s --' || echo "no agent process to signal" >&2
      wait $agent`
          : `${agentCmd} <${q(agentFile)} >"$OUT/stdout" 2>"$OUT/stderr"`
      }
      echo $? >"$OUT/rc"
      ${opts.signal ? `ls -d "$M"/tmp/patchpilot-agent.* 2>/dev/null | wc -l | sed 's/^/leftoverTempDirs=/' >>"$OUT/obs"` : ''}
      set -e
      echo $(( ($(date +%s%N) - t0) / 1000000 )) >"$OUT/ms"
      ${state}
      ${post.join('\n')}
    `;
    const t = Date.now();
    const r = await runNode({ lowers: [this.layers[family], this.rootfs], dir, bridge, body, timeoutMs: 180_000 });
    const nodeMs = Date.now() - t;
    const stdout = readOut(r.out, 'stdout');
    const stderr = readOut(r.out, 'stderr');
    const rcText = readOut(r.out, 'rc').trim();
    if (r.code !== 0 || rcText === '') {
      throw new Error(`node set-up failed (exit ${r.code}) for ${family}/${fault ?? 'none'}: ${r.stderr.slice(-3000)}\nagent stderr: ${stderr.slice(-2000)}`);
    }
    let report: AgentReport;
    try {
      report = parseAgentReport(stdout);
    } catch (e) {
      throw new Error(`${(e as Error).message}\n--- agent stdout\n${stdout.slice(-2000)}\n--- agent stderr\n${stderr.slice(-3000)}`);
    }
    const packages: Record<string, string> = {};
    const status: Record<string, string> = {};
    const allVersions: Record<string, string[]> = {};
    for (const line of readOut(r.out, 'packages').split('\n')) {
      const [name, version, st] = line.split('\t');
      if (!name || !version || !st || st[1] === 'n' || st[1] === 'c') continue;
      packages[name] = version;
      status[name] = st.trim();
      (allVersions[name] ??= []).push(version);
    }
    const observations: Record<string, string> = {};
    for (const line of readOut(r.out, 'obs').split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) observations[line.slice(0, i)] = line.slice(i + 1);
    }
    const result: RunResult = {
      exitCode: Number(rcText),
      report,
      stdout,
      stderr,
      durationMs: Number(readOut(r.out, 'ms').trim() || '0'),
      nodeMs,
      state: {
        packages,
        status,
        held: readOut(r.out, 'held').split('\n').map((s) => s.trim()).filter(Boolean),
        rebootRequired: readOut(r.out, 'reboot').trim() === 'true',
        allVersions,
      },
      observations,
    };
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.server.close();
    await bash(`umount ${q(this.workDir)} 2>/dev/null || umount -l ${q(this.workDir)}; rmdir ${q(this.workDir)}`);
  }
}

export { IMAGE_PACKAGES };
export type { AgentReport };
