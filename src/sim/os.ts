/**
 * The operating systems the simulator knows: how each names its packages and versions, what a node image has
 * installed, and which package manager family patches it. The defaults follow real images: Palette's Ubuntu node
 * images carry kubelet, kubeadm and kubectl pre-installed from /var/lib/dpkg/status, with no kubernetes.list.
 */
export const OS_IDS = ['ubuntu-22.04', 'ubuntu-24.04', 'debian-12', 'rocky-9', 'rhel-9', 'windows-2022'] as const;
export type OsId = (typeof OS_IDS)[number];

export type PackageFamily = 'apt' | 'dnf' | 'none';

export interface OsProfile {
  id: OsId;
  family: PackageFamily;
  /** The `kubernetes.io/os` label. */
  kubernetesOs: 'linux' | 'windows';
  /** The node's status.nodeInfo.osImage, as kubectl shows it. */
  osImage: string;
  /** apt sources in deb822 format (/etc/apt/sources.list.d/*.sources) rather than a classic sources.list. */
  deb822Sources: boolean;
  /** The package the kernel ships in (a kernel update means a reboot). */
  kernelPackage: string;
  /** Appended to versions: `1.2.3-1ubuntu0.4`, `1.2.3-4.el9`. */
  versionStyle: 'ubuntu' | 'debian' | 'el9';
}

export const OS_PROFILES: Record<OsId, OsProfile> = {
  'ubuntu-22.04': { id: 'ubuntu-22.04', family: 'apt', kubernetesOs: 'linux', osImage: 'Ubuntu 22.04.5 LTS', deb822Sources: false, kernelPackage: 'linux-image-generic', versionStyle: 'ubuntu' },
  'ubuntu-24.04': { id: 'ubuntu-24.04', family: 'apt', kubernetesOs: 'linux', osImage: 'Ubuntu 24.04.1 LTS', deb822Sources: true, kernelPackage: 'linux-image-generic', versionStyle: 'ubuntu' },
  'debian-12': { id: 'debian-12', family: 'apt', kubernetesOs: 'linux', osImage: 'Debian GNU/Linux 12 (bookworm)', deb822Sources: false, kernelPackage: 'linux-image-amd64', versionStyle: 'debian' },
  'rocky-9': { id: 'rocky-9', family: 'dnf', kubernetesOs: 'linux', osImage: 'Rocky Linux 9.4 (Blue Onyx)', deb822Sources: false, kernelPackage: 'kernel', versionStyle: 'el9' },
  'rhel-9': { id: 'rhel-9', family: 'dnf', kubernetesOs: 'linux', osImage: 'Red Hat Enterprise Linux 9.4 (Plow)', deb822Sources: false, kernelPackage: 'kernel', versionStyle: 'el9' },
  'windows-2022': { id: 'windows-2022', family: 'none', kubernetesOs: 'windows', osImage: 'Windows Server 2022 Datacenter', deb822Sources: false, kernelPackage: '', versionStyle: 'debian' },
};

/** Names scenario files may use for "the kernel", whatever the distribution calls it. */
export const KERNEL_ALIASES: ReadonlySet<string> = new Set(['kernel', 'linux-image', 'linux-image-generic', 'linux-image-amd64']);

/** The Kubernetes and runtime packages every node image has installed. */
export const KUBERNETES_PACKAGES = ['kubelet', 'kubeadm', 'kubectl', 'kubernetes-cni', 'cri-tools', 'containerd', 'runc'] as const;

const BASE_PACKAGES: Record<Exclude<PackageFamily, 'none'>, readonly string[]> = {
  apt: ['openssl', 'libssl3', 'openssh-server', 'curl', 'libcurl4', 'bash', 'systemd', 'tzdata', 'vim', 'sudo', 'git', 'python3'],
  dnf: ['openssl', 'openssl-libs', 'openssh-server', 'curl', 'libcurl', 'bash', 'systemd', 'tzdata', 'vim-enhanced', 'sudo', 'git', 'python3'],
};

/**
 * A node's installed packages and versions. Every state is one immutable map shared by all nodes in it: the image's
 * (by OS and extra packages) and, once patching changes a version, the map that change leads to, kept per map so that
 * 100,000 nodes patched alike share one (a map per node was the largest part of a finished node's memory, issue 13).
 */
export class InstalledPackages {
  static readonly #images = new Map<string, ReadonlyMap<string, string>>();
  /** From a state, by `name=version`, the state that change leads to. */
  static readonly #next = new WeakMap<ReadonlyMap<string, string>, Map<string, ReadonlyMap<string, string>>>();
  #packages: ReadonlyMap<string, string>;

  constructor(os: OsProfile, extra: readonly string[] = []) {
    const key = `${os.id}|${extra.join(',')}`;
    let image = InstalledPackages.#images.get(key);
    if (!image) {
      image = new Map(installedPackages(os, extra).map((p) => [p, versionsOf(os, p).from]));
      InstalledPackages.#images.set(key, image);
    }
    this.#packages = image;
  }

  has(name: string): boolean {
    return this.#packages.has(name);
  }

  get(name: string): string | undefined {
    return this.#packages.get(name);
  }

  set(name: string, version: string): void {
    if (this.#packages.get(name) === version) return;
    let next = InstalledPackages.#next.get(this.#packages);
    if (!next) InstalledPackages.#next.set(this.#packages, (next = new Map()));
    const change = `${name}=${version}`;
    let state = next.get(change);
    if (!state) {
      // A package already there keeps its place; a new one comes last.
      state = new Map(this.#packages).set(name, version);
      next.set(change, state);
    }
    this.#packages = state;
  }

  /** Every installed package's name. */
  keys(): Iterable<string> {
    return this.#packages.keys();
  }
}

/** The packages a node of this OS has installed; `extra` adds more (scenario `packages:`). */
export function installedPackages(os: OsProfile, extra: readonly string[] = []): string[] {
  if (os.family === 'none') return [];
  return [...new Set([...BASE_PACKAGES[os.family], os.kernelPackage, ...KUBERNETES_PACKAGES, ...extra])];
}

/** The distribution's name for a package a scenario names generically (the kernel, vim). */
export function packageNameOn(os: OsProfile, name: string): string {
  if (KERNEL_ALIASES.has(name)) return os.kernelPackage;
  if (os.family === 'dnf' && name === 'vim') return 'vim-enhanced';
  if (os.family === 'dnf' && name === 'libssl3') return 'openssl-libs';
  return name;
}

const versionCache = new Map<string, { from: string; to: string }>();

/** A plausible installed version and the one the update brings, in the distribution's style. Deterministic. */
export function versionsOf(os: OsProfile, name: string): { from: string; to: string } {
  // Shared: 10,000 nodes of one OS would otherwise hold 10,000 copies of each version string.
  const key = `${os.id} ${name}`;
  let versions = versionCache.get(key);
  if (!versions) versionCache.set(key, (versions = computeVersions(os, name)));
  return versions;
}

function computeVersions(os: OsProfile, name: string): { from: string; to: string } {
  let h = 0;
  for (const c of name) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  // Unsigned shifts: h is a 32-bit unsigned hash, and a signed `>>` of one above 2^31 went negative
  // (`openssl 5.-8.-7-1ubuntu0.0`).
  const bits = (shift: number, range: number) => (h >>> shift) % range;
  const major = 1 + (h % 5);
  const minor = bits(3, 20);
  const rev = 1 + bits(8, 9);
  const base = `${major}.${minor}.${bits(13, 10)}`;
  if (name === os.kernelPackage && os.family === 'apt') {
    const abi = 100 + bits(5, 30);
    return { from: `6.8.0.${abi}.${abi}`, to: `6.8.0.${abi + 1}.${abi + 1}` };
  }
  if (name === os.kernelPackage) return { from: `5.14.0-427.${rev}.1.el9_4`, to: `5.14.0-427.${rev + 1}.1.el9_4` };
  switch (os.versionStyle) {
    case 'ubuntu':
      return { from: `${base}-${rev}ubuntu0.${minor % 4}`, to: `${base}-${rev}ubuntu0.${(minor % 4) + 1}` };
    case 'debian':
      return { from: `${base}-${rev}+deb12u${minor % 4}`, to: `${base}-${rev}+deb12u${(minor % 4) + 1}` };
    case 'el9':
      return { from: `${base}-${rev}.el9`, to: `${base}-${rev + 1}.el9` };
  }
}
