/** The simulator's package versions look like the distribution's: `openssl 3.12.4-2ubuntu0.1`, never `5.-8.-7-…`. */
import { describe, expect, it } from 'vitest';
import { installedPackages, OS_IDS, OS_PROFILES, versionsOf } from '../../src/sim/os.ts';

const SHAPES = {
  ubuntu: /^\d+\.\d+\.\d+-\d+ubuntu0\.\d+$/,
  debian: /^\d+\.\d+\.\d+-\d+\+deb12u\d+$/,
  el9: /^\d+\.\d+\.\d+-\d+\.el9$/,
} as const;
const KERNEL: Record<string, RegExp> = { apt: /^6\.8\.0\.\d+\.\d+$/, dnf: /^5\.14\.0-427\.\d+\.1\.el9_4$/ };
/** Names whose hash has the top bit set (openssl among them) went negative under a signed shift. */
const MORE = ['openssl', 'glibc', 'libxml2', 'nginx', 'zlib1g', 'containerd', 'linux-firmware', 'ca-certificates', 'util-linux', 'python3.12'];

describe('simulated package versions', () => {
  for (const id of OS_IDS) {
    const os = OS_PROFILES[id];
    if (os.family === 'none') continue;
    it(`${id}: every version has the distribution's shape and the update is newer`, () => {
      const names = [...new Set([...installedPackages(os), ...MORE])];
      for (const name of names) {
        const { from, to } = versionsOf(os, name);
        const shape = name === os.kernelPackage ? KERNEL[os.family]! : SHAPES[os.versionStyle];
        expect(from, `${id} ${name}`).toMatch(shape);
        expect(to, `${id} ${name}`).toMatch(shape);
        expect(from).not.toBe(to);
        // The numbers that differ grow: compare field by field.
        const a = from.split(/\D+/).map(Number);
        const b = to.split(/\D+/).map(Number);
        const i = a.findIndex((n, k) => n !== b[k]);
        expect(b[i]!, `${id} ${name}: ${from} -> ${to}`).toBeGreaterThan(a[i]!);
      }
    });
  }

  it('openssl on Ubuntu is no longer 5.-8.-7-1ubuntu0.0', () => {
    expect(versionsOf(OS_PROFILES['ubuntu-22.04'], 'openssl').from).not.toContain('-.');
    expect(versionsOf(OS_PROFILES['ubuntu-22.04'], 'openssl').from).not.toMatch(/\.-/);
  });
});
