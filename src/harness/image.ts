/**
 * The node image: a Debian bookworm minbase root filesystem (debootstrap from the machine's configured Debian mirror)
 * with gnupg, procps, psmisc, dnf, rpm and dnf-plugins-core, cached as a .tar.zst and rebuilt only when missing.
 * The RPM family runs in the same image (dnf/rpm installed, /etc/os-release faked as Rocky 9 by its base layer):
 * there is no RHEL userland to debootstrap, and unlike `dnf --installroot` a chroot gives the agent the real
 * paths (versionlock, /proc/1 for needs-restarting, /etc/os-release) it sees on a node (notes/os-harness.md, E).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bash, q } from './exec.ts';

/** Bump when the image's contents change. */
const IMAGE_VERSION = 1;
export const IMAGE_PACKAGES = ['gnupg', 'dirmngr', 'procps', 'psmisc', 'dnf', 'rpm', 'dnf-plugins-core'] as const;

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function cacheDir(): string {
  return process.env.PATCHPILOT_HARNESS_CACHE ?? join(REPO_ROOT, '.cache', 'harness');
}

export function imagePath(): string {
  return join(cacheDir(), `bookworm-minbase-v${IMAGE_VERSION}.tar.zst`);
}

/** The Debian mirror the machine uses (deb822 debian.sources or sources.list), else deb.debian.org. */
export function debianMirror(): string {
  try {
    const text = readFileSync('/etc/apt/sources.list.d/debian.sources', 'utf8');
    for (const stanza of text.split(/\n\s*\n/)) {
      const suites = /^Suites:\s*(.+)$/im.exec(stanza)?.[1] ?? '';
      const uri = /^URIs:\s*(\S+)/im.exec(stanza)?.[1];
      if (uri && /(^|\s)bookworm(\s|$)/.test(suites)) return uri;
    }
  } catch {
    /* fall through */
  }
  try {
    for (const line of readFileSync('/etc/apt/sources.list', 'utf8').split('\n')) {
      const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/.exec(line);
      if (m?.[1]) return m[1];
    }
  } catch {
    /* fall through */
  }
  return 'http://deb.debian.org/debian';
}

/**
 * Makes sure the cached image exists, building it in `scratch` (ideally a tmpfs) when missing. Concurrent callers
 * (two vitest workers, the fidelity check) wait on a lock directory; the tarball appears by an atomic rename.
 */
export async function ensureImage(scratch: string, log: (m: string) => void = () => {}): Promise<{ path: string; built: boolean; ms: number }> {
  const path = imagePath();
  const start = Date.now();
  if (existsSync(path)) return { path, built: false, ms: 0 };
  mkdirSync(cacheDir(), { recursive: true });
  const lock = `${path}.lock`;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(path)) return { path, built: false, ms: Date.now() - start };
      try {
        if (Date.now() - statSync(lock).mtimeMs > 15 * 60_000) rmSync(lock, { recursive: true, force: true }); // stale
      } catch {
        /* gone meanwhile */
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    if (existsSync(path)) return { path, built: false, ms: Date.now() - start };
    const root = join(scratch, 'debootstrap');
    const tmp = `${path}.tmp-${process.pid}`;
    log(`building node image with debootstrap from ${debianMirror()} (about a minute)`);
    await bash(`
      rm -rf ${q(root)}; mkdir -p ${q(root)}
      debootstrap --variant=minbase --include=${IMAGE_PACKAGES.join(',')} bookworm ${q(root)} ${q(debianMirror())} >${q(root)}.log 2>&1 || { tail -30 ${q(root)}.log >&2; exit 1; }
      rm -rf ${q(root)}/var/cache/apt/archives/*.deb ${q(root)}/var/lib/apt/lists/* ${q(root)}/var/log/*.log
      printf '127.0.0.1 localhost\\n::1 localhost\\n' >${q(root)}/etc/hosts
      printf 'nameserver 127.0.0.1\\n' >${q(root)}/etc/resolv.conf
      tar -C ${q(root)} -I 'zstd -T0 -3' -cf ${q(tmp)} .
      rm -rf ${q(root)} ${q(root)}.log
    `);
    renameSync(tmp, path);
    return { path, built: true, ms: Date.now() - start };
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
