/**
 * Synthetic packages and the local repositories the harness serves: a signed apt repository (suites bookworm,
 * bookworm-security, bookworm-updates and a kubernetes suite for kubernetes.list) and an RPM repository with an
 * updateinfo.xml (security vs bugfix). Two variants: `standard`, and `kernel`, which adds the kernel-like update
 * that asks for a reboot (linux-image-amd64 on apt, the install-only `kernel` on dnf). Built in about a second.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bash, q } from './exec.ts';

export type RepoVariant = 'standard' | 'kernel';
export const REPO_VARIANTS: readonly RepoVariant[] = ['standard', 'kernel'];

/** Port of the repository bridge inside every node (127.0.0.1 of the node's own network namespace). */
export const NODE_REPO_PORT = 18080;
export const NODE_REPO_URL = `http://127.0.0.1:${NODE_REPO_PORT}`;

interface Pkg {
  name: string;
  version: string;
  postinst?: string;
  /** Incompressible payload in KiB (to make the download need disk space). */
  blobKiB?: number;
}

/** The apt packages installed in the base layer (the "1.0" state). */
export const APT_BASE: Readonly<Record<string, string>> = {
  libfoo: '1.0',
  bar: '1.0',
  kubelet: '1.30.0',
  kubeadm: '1.30.0',
  kubectl: '1.30.0',
  kubectx: '1.0',
  'linux-image-amd64': '1.0',
};
/** The rpm packages installed in the base layer (EVR without epoch). */
export const RPM_BASE: Readonly<Record<string, string>> = {
  libfoo: '1.0-1',
  bar: '1.0-1',
  kubelet: '1.30.0-1',
  kubeadm: '1.30.0-1',
  kubectl: '1.30.0-1',
  kernel: '5.14.0-1',
};

const KUBE = ['kubelet', 'kubeadm', 'kubectl'];
const REBOOT_POSTINST = `#!/bin/sh
set -e
if [ "$1" = configure ]; then
  touch /var/run/reboot-required
  echo "$DPKG_MAINTSCRIPT_PACKAGE" >> /var/run/reboot-required.pkgs
fi
`;
const FAIL_POSTINST = `#!/bin/sh
echo "failpkg: simulated configuration failure" >&2
exit 1
`;
// Holds the dpkg locks for $PATCHPILOT_SLOW_SECONDS while being installed (the apt-lock fault's real apt holder).
const SLOW_POSTINST = `#!/bin/sh
touch /run/slowpkg.started
sleep "\${PATCHPILOT_SLOW_SECONDS:-0}"
`;

function aptSuites(variant: RepoVariant): Record<string, Pkg[]> {
  return {
    bookworm: [
      ...Object.entries(APT_BASE).map(([name, version]) => ({ name, version })),
      { name: 'failpkg', version: '1.0' },
      { name: 'slowpkg', version: '1.0', postinst: SLOW_POSTINST },
      { name: 'pending', version: '1.0' },
    ],
    'bookworm-security': [
      { name: 'libfoo', version: '1.1', blobKiB: 256 },
      ...KUBE.map((name) => ({ name, version: '1.31.0' })),
      { name: 'failpkg', version: '1.1', postinst: FAIL_POSTINST },
      ...(variant === 'kernel' ? [{ name: 'linux-image-amd64', version: '1.1', postinst: REBOOT_POSTINST }] : []),
    ],
    'bookworm-updates': [{ name: 'bar', version: '2.0' }, ...KUBE.map((name) => ({ name, version: '1.31.1' }))],
    kubernetes: [...KUBE.map((name) => ({ name, version: '1.32.0' })), { name: 'kubectx', version: '2.0' }],
  };
}

/** Debs kept in the node at /opt/harness for scenario set-up (installed or unpacked there, not from the repo). */
export const APT_EXTRA_DEBS = ['failpkg_1.0_all.deb', 'slowpkg_1.0_all.deb', 'pending_1.0_all.deb'] as const;

interface Rpm {
  name: string;
  version: string;
  post?: string;
  provides?: string[];
  files?: (v: string) => string[];
  /** Incompressible payload in KiB. */
  blobKiB?: number;
}

function rpms(variant: RepoVariant): { all: Rpm[]; security: Rpm[]; bugfix: Rpm[] } {
  const kernelFiles = (v: string) => [`/boot/vmlinuz-${v}-1`, `/lib/modules/${v}-1/modules.dep`];
  const base: Rpm[] = [
    { name: 'rocky-release', version: '9.4', provides: ['system-release', 'system-release(releasever) = 9', '/bin/sh', '/usr/bin/sh'] },
    ...Object.entries(RPM_BASE).map(([name, evr]) => ({ name, version: evr.replace(/-1$/, ''), ...(name === 'kernel' ? { files: kernelFiles } : {}) })),
    { name: 'failpkg', version: '1.0' },
    // The apt-lock fault's holder on dnf nodes: a real rpm transaction, holding the rpm database lock while it sleeps.
    { name: 'slowpkg', version: '1.0', post: 'touch /run/slowpkg.started\nsleep "${PATCHPILOT_SLOW_SECONDS:-0}"' },
  ];
  const security: Rpm[] = [
    { name: 'libfoo', version: '1.1', blobKiB: 256 },
    ...KUBE.map((name) => ({ name, version: '1.31.0' })),
    { name: 'failpkg', version: '1.1', post: 'echo "failpkg: simulated configuration failure" >&2\nexit 1' },
    ...(variant === 'kernel' ? [{ name: 'kernel', version: '5.14.1', files: kernelFiles }] : []),
  ];
  const bugfix: Rpm[] = [{ name: 'bar', version: '2.0' }];
  return { all: [...base, ...security, ...bugfix], security, bugfix };
}

export interface Repos {
  /** Directory served for each variant: <root>/apt and <root>/rpm. */
  roots: Record<RepoVariant, string>;
  /** Binary OpenPGP keyring the nodes trust (signed-by). */
  keyring: string;
  /** Where the base-layer and extra packages are: <dir>/deb/*.deb, <dir>/rpm/*.rpm. */
  packagesDir: string;
}

export async function buildRepos(work: string): Promise<Repos> {
  const build = join(work, 'build');
  const debDir = join(build, 'deb');
  mkdirSync(debDir, { recursive: true });

  // --- debs
  const all = new Map<string, Pkg>();
  for (const variant of REPO_VARIANTS) for (const pkgs of Object.values(aptSuites(variant))) for (const p of pkgs) all.set(`${p.name}_${p.version}`, p);
  let script = '';
  for (const [key, p] of all) {
    const dir = join(build, 'debsrc', key);
    mkdirSync(join(dir, 'DEBIAN'), { recursive: true });
    mkdirSync(join(dir, 'usr/share/patchpilot-harness', p.name), { recursive: true });
    writeFileSync(
      join(dir, 'DEBIAN/control'),
      `Package: ${p.name}\nVersion: ${p.version}\nArchitecture: all\nMaintainer: patchpilot harness <harness@localhost>\nSection: misc\nPriority: optional\nDescription: synthetic ${p.name} ${p.version} for the patchpilot harness\n`,
    );
    writeFileSync(join(dir, 'usr/share/patchpilot-harness', p.name, 'version'), `${p.version}\n`);
    if (p.blobKiB) writeFileSync(join(dir, 'usr/share/patchpilot-harness', p.name, 'blob'), randomBytes(p.blobKiB * 1024));
    if (p.postinst) writeFileSync(join(dir, 'DEBIAN/postinst'), p.postinst, { mode: 0o755 });
    script += `dpkg-deb --root-owner-group -Zgzip --build ${q(dir)} ${q(join(debDir, `${key}_all.deb`))} >/dev/null &\n`;
  }
  script += 'wait\n';
  await bash(script);

  // --- signing key (a throwaway GNUPGHOME; its agent is killed afterwards)
  const gnupg = join(build, 'gnupg');
  mkdirSync(gnupg, { recursive: true, mode: 0o700 });
  const keyring = join(build, 'patchpilot-harness.gpg');
  const gpg = `gpg --batch --quiet --homedir ${q(gnupg)}`;
  try {
    return await buildSigned(build, debDir, gpg, keyring, work);
  } finally {
    await bash(`gpgconf --homedir ${q(gnupg)} --kill all`).catch(() => {});
  }
}

async function buildSigned(build: string, debDir: string, gpg: string, keyring: string, work: string): Promise<Repos> {
  await bash(`
    ${gpg} --passphrase '' --quick-gen-key 'patchpilot harness <harness@localhost>' ed25519 sign never
    ${gpg} --export >${q(keyring)}
  `);

  // --- rpms
  const rpmDir = join(build, 'rpm');
  const topdir = join(build, 'rpmbuild');
  mkdirSync(join(topdir, 'SPECS'), { recursive: true });
  mkdirSync(rpmDir, { recursive: true });
  const rpmAll = new Map<string, Rpm>();
  for (const variant of REPO_VARIANTS) for (const r of rpms(variant).all) rpmAll.set(`${r.name}-${r.version}`, r);
  const specs: string[] = [];
  for (const [key, r] of rpmAll) {
    const files = r.files?.(r.version) ?? [`/usr/share/patchpilot-harness/${r.name}/version`];
    const spec = join(topdir, 'SPECS', `${key}.spec`);
    writeFileSync(
      spec,
      [
        `Name: ${r.name}`,
        `Version: ${r.version}`,
        'Release: 1',
        `Summary: synthetic ${r.name} for the patchpilot harness`,
        'License: MIT',
        'BuildArch: noarch',
        'AutoReqProv: no',
        ...(r.provides ?? []).map((p) => `Provides: ${p}`),
        '%global debug_package %{nil}',
        '%global __os_install_post %{nil}',
        '%description',
        `synthetic ${r.name}`,
        '%install',
        ...files.map((f) => `mkdir -p %{buildroot}${f.replace(/\/[^/]+$/, '')} && echo ${r.version} > %{buildroot}${f}`),
        ...(r.blobKiB ? [`head -c ${r.blobKiB * 1024} /dev/urandom > %{buildroot}/usr/share/patchpilot-harness/${r.name}/blob`] : []),
        '%files',
        ...files,
        ...(r.blobKiB ? [`/usr/share/patchpilot-harness/${r.name}/blob`] : []),
        ...(r.post ? ['%post', r.post] : []),
        '',
      ].join('\n'),
    );
    specs.push(spec);
  }
  await bash(
    `for s in ${specs.map(q).join(' ')}; do rpmbuild --quiet -bb --define ${q(`_topdir ${topdir}`)} --define ${q(`_rpmdir ${rpmDir}`)} --define '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm' --define '_build_id_links none' "$s" >/dev/null & done; wait`,
    { env: { ...process.env, HOME: build } },
  );

  // --- repositories per variant
  const roots = {} as Record<RepoVariant, string>;
  for (const variant of REPO_VARIANTS) {
    const root = join(work, 'repos', variant);
    roots[variant] = root;
    const apt = join(root, 'apt');
    let s = '';
    for (const [suite, pkgs] of Object.entries(aptSuites(variant))) {
      const pool = join(apt, 'pool', suite);
      const dists = join(apt, 'dists', suite);
      mkdirSync(pool, { recursive: true });
      mkdirSync(join(dists, 'main', 'binary-amd64'), { recursive: true });
      s += pkgs.map((p) => `ln ${q(join(debDir, `${p.name}_${p.version}_all.deb`))} ${q(pool)}/\n`).join('');
      s += `
        (cd ${q(apt)} && apt-ftparchive packages pool/${suite} >dists/${suite}/main/binary-amd64/Packages)
        gzip -kf ${q(dists)}/main/binary-amd64/Packages
        apt-ftparchive -o APT::FTPArchive::Release::Origin=Patchpilot -o APT::FTPArchive::Release::Label=Patchpilot \
          -o APT::FTPArchive::Release::Suite=${suite} -o APT::FTPArchive::Release::Codename=${suite} \
          -o APT::FTPArchive::Release::Architectures=amd64 -o APT::FTPArchive::Release::Components=main \
          release ${q(dists)} >${q(dists)}/Release.tmp && mv ${q(dists)}/Release.tmp ${q(dists)}/Release
        ${gpg} --yes --clearsign -o ${q(dists)}/InRelease ${q(dists)}/Release
        ${gpg} --yes -abs -o ${q(dists)}/Release.gpg ${q(dists)}/Release
      `;
    }
    const rpmRepo = join(root, 'rpm');
    mkdirSync(rpmRepo, { recursive: true });
    const { all: rAll, security, bugfix } = rpms(variant);
    s += rAll.map((r) => `ln ${q(join(rpmDir, `${r.name}-${r.version}-1.noarch.rpm`))} ${q(rpmRepo)}/\n`).join('');
    writeFileSync(join(build, `updateinfo-${variant}.xml`), updateinfo(security, bugfix));
    s += `
      createrepo_c -q ${q(rpmRepo)}
      modifyrepo_c --mdtype=updateinfo ${q(join(build, `updateinfo-${variant}.xml`))} ${q(join(rpmRepo, 'repodata'))} >/dev/null
    `;
    await bash(s, { cwd: apt });
  }
  return { roots, keyring, packagesDir: build };
}

function updateinfo(security: Rpm[], bugfix: Rpm[]): string {
  const pkg = (r: Rpm) =>
    `        <package name="${r.name}" version="${r.version}" release="1" epoch="0" arch="noarch" src="${r.name}-${r.version}-1.src.rpm"><filename>${r.name}-${r.version}-1.noarch.rpm</filename></package>`;
  const update = (id: string, type: string, severity: string, title: string, list: Rpm[]) => `  <update from="harness@localhost" status="final" type="${type}" version="1">
    <id>${id}</id>
    <title>${title}</title>
    <severity>${severity}</severity>
    <issued date="2026-01-15 00:00:00"/>
    <description>${title}</description>
    <pkglist>
      <collection short="harness">
        <name>harness</name>
${list.map(pkg).join('\n')}
      </collection>
    </pkglist>
  </update>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<updates>
${update('PPH-2026:0001', 'security', 'Important', 'Important: security update', security)}
${update('PPH-2026:0002', 'bugfix', 'None', 'bar bug fix update', bugfix)}
</updates>
`;
}
