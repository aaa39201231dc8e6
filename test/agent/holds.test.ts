/**
 * The agent's hold list with patterns (`kernel*`): each entry reaches dpkg-query as one argument, is matched against
 * rpm's installed names as dnf's --exclude matches it and reaches dnf as --exclude=PATTERN, never expanded by the shell
 * against the files where the agent runs. The hold functions run in bash with dpkg-query and rpm as stubs that record
 * their arguments; the real apt and dnf are the harness's (full suite).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_SCRIPT_PATH } from '../../src/agent/index.ts';
import { holdMatches } from '../../src/engine/plan.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const script = readFileSync(AGENT_SCRIPT_PATH, 'utf8');
const scratch = scratchDirs('agent-holds');

function part(pattern: RegExp): string {
  const found = script.match(pattern);
  if (!found) throw new Error(`not in the agent script: ${pattern}`);
  return found[0];
}

/** Runs the script's hold parsing and resolution in a directory holding files the patterns would match as globs. */
function resolveHolds(family: 'apt' | 'dnf', holdList: string): { args: string[][]; held: string[]; excludes: string[]; weHeld: string[] } {
  const cwd = scratch();
  for (const file of ['kernel-6.1', 'kernel-core', 'kernelx']) writeFileSync(join(cwd, file), '');
  const program = [
    'set -uo pipefail',
    'shopt -s nullglob', // as the agent: an unquoted pattern matching no file would vanish
    'DRY_RUN=0 DOWNLOAD_ONLY=0',
    'declare -a HELD=() WE_HELD=() EXCLUDES=()',
    'record() { printf "%s\\x1f" "$@" >>args.log; printf "\\n" >>args.log; }',
    // dpkg knows kernel-image (installed), kernel-tools (held by the admin) and kernel-doc (removed); rpm, kernel-core twice.
    `dpkg-query() { record "$@"; [[ \${@: -1} == kernel* ]] && printf 'kernel-image ii \\nkernel-tools hi \\nkernel-doc rc \\n'; ` +
      // libc6 is installed for two architectures (Multi-Arch: same): dpkg names each with its architecture.
      // As dpkg-query does, the architecture is printed only when the format asks for ${binary:Package}.
      'local a=; [[ $2 == *binary:Package* ]] && a=:; ' +
      '[[ ${@: -1} == libc6 ]] && printf "libc6${a:+${a}amd64} ii \\nlibc6${a:+${a}i386} ii \\n"; [[ ${@: -1} == libc6:i386 ]] && printf "libc6${a:+${a}i386} ii \\n"; return 0; }',
    // rpm -qa lists every installed name (kernel-core twice: two versions installed); the agent matches the entries.
    `rpm() { record "$@"; printf 'kernel-core\\nkernel-core\\nkernel-modules\\nkubeadm\\n'; return 0; }`,
    part(/^read -r -a HOLD_NAMES .*$/m),
    part(new RegExp(`^${family}_resolve_holds\\(\\) \\{[\\s\\S]*?^\\}$`, 'm')),
    `${family}_resolve_holds`,
    'printf "held=%s\\n" "${HELD[*]}"; printf "we=%s\\n" "${WE_HELD[*]}"; printf "excl=%s\\n" "${EXCLUDES[*]}"',
  ].join('\n');
  const result = spawnSync('bash', ['-c', program], { cwd, encoding: 'utf8', env: { PATH: process.env.PATH, HOLD_LIST: holdList } });
  expect(result.status, result.stderr).toBe(0);
  const out = Object.fromEntries(result.stdout.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const split = (s: string | undefined) => (s ? s.split(' ') : []);
  const args = readFileSync(join(cwd, 'args.log'), 'utf8').trim().split('\n').map((line) => line.split('\x1f').slice(0, -1));
  return { args, held: split(out.held), weHeld: split(out.we), excludes: split(out.excl) };
}

describe('agent holds with patterns', () => {
  it('apt: dpkg-query gets each pattern as one argument; the installed matches are held, the admin-held one left as it is', () => {
    const r = resolveHolds('apt', 'kernel* kernel-[0-9]* kubelet');
    expect(r.args.map((a) => a.at(-1))).toEqual(['kernel*', 'kernel-[0-9]*', 'kubelet']);
    expect(r.args[0]).toEqual(['-W', '-f=${binary:Package} ${db:Status-Abbrev}\\n', 'kernel*']);
    expect(r.held).toEqual(['kernel-image', 'kernel-tools']);
    expect(r.weHeld).toEqual(['kernel-image']);
  });

  it('apt: an entry naming an architecture holds that package, not the native one; a bare name holds every architecture', () => {
    expect(resolveHolds('apt', 'libc6:i386').weHeld).toEqual(['libc6:i386']);
    expect(resolveHolds('apt', 'libc6').weHeld).toEqual(['libc6:amd64', 'libc6:i386']);
  });

  it('dnf: rpm -qa lists the installed names once, dnf gets --exclude=kernel* as written, HELD the installed names once each', () => {
    const r = resolveHolds('dnf', 'kernel*,kubelet');
    expect(r.args).toEqual([['-qa', '--qf', '%{NAME}\\n']]);
    expect(r.excludes).toEqual(['--exclude=kernel*']);
    expect(r.held).toEqual(['kernel-core', 'kernel-modules']);
  });
});

/**
 * rpm as it is: `rpm -qa --qf FMT` lists every installed package, and `rpm -qa PATTERN` filters them by name with
 * rpm's RPMMIRE_DEFAULT mode (lib/rpmdb.c mireDup): a regex, with "." and "+" escaped and "*" made ".*" outside
 * brackets, anchored. It is not fnmatch: "?" stays a regex "?" and "[!x]" a class holding "!".
 */
function resolveDnfHoldsWithRealRpm(holdList: string, installed: string[]): { held: string[]; excludes: string[] } {
  const rpmStub = [
    'rpm() {',
    '  local pat=${@: -1}',
    `  local names=${JSON.stringify(installed.join(' '))}`,
    '  [[ $pat == "%{NAME}\\n" ]] && { printf "%s\\n" $names; return 0; }',
    '  local re="^" i c br=0',
    '  for ((i = 0; i < ${#pat}; i++)); do',
    '    c=${pat:i:1}',
    '    case $c in',
    '      "[") br=1; re+=$c ;;',
    '      "]") br=0; re+=$c ;;',
    '      "." | "+") ((br)) && re+=$c || re+="\\\\$c" ;;',
    '      "*") ((br)) && re+=$c || re+=".*" ;;',
    '      *) re+=$c ;;',
    '    esac',
    '  done',
    '  printf "%s\\n" $names | grep -E -- "$re\\$"',
    '  return 0',
    '}',
  ].join('\n');
  const program = [
    'set -uo pipefail',
    'shopt -s nullglob',
    'declare -a HELD=() WE_HELD=() EXCLUDES=()',
    rpmStub,
    part(/^read -r -a HOLD_NAMES .*$/m),
    part(/^dnf_resolve_holds\(\) \{[\s\S]*?^\}$/m),
    'dnf_resolve_holds',
    'printf "held=%s\\n" "${HELD[*]}"; printf "excl=%s\\n" "${EXCLUDES[*]}"',
  ].join('\n');
  const result = spawnSync('bash', ['-c', program], { cwd: scratch(), encoding: 'utf8', env: { PATH: process.env.PATH, HOLD_LIST: holdList } });
  expect(result.status, result.stderr).toBe(0);
  const out = Object.fromEntries(result.stdout.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
  const split = (s: string | undefined) => (s ? s.split(' ') : []);
  return { held: split(out.held), excludes: split(out.excl) };
}

describe('agent holds with patterns, against rpm as it matches', () => {
  const installed = ['kernel', 'kernel-core', 'kernel-devel', 'kubelet', 'kubectl', 'libstdc++', 'bash'];

  it('dnf: "?" and "[!...]" hold what dnf --exclude (fnmatch) and the simulated agent hold, not what a regex would', () => {
    // rpm -qa 'kube?et' is the regex ^kube?et$ (kubet, kubeet): kubelet would be upgraded, silently, with no --exclude.
    expect(resolveDnfHoldsWithRealRpm('kube?et', installed)).toEqual({ held: ['kubelet'], excludes: ['--exclude=kube?et'] });
    // [!d] is "not d" to fnmatch; to a regex it is a class of "!" and "d".
    expect(resolveDnfHoldsWithRealRpm('kernel-[!d]*', installed)).toEqual({ held: ['kernel-core'], excludes: ['--exclude=kernel-[!d]*'] });
    for (const [pattern, names] of [['kube?et', ['kubelet']], ['kernel-[!d]*', ['kernel-core']]] as const) {
      expect(installed.filter((name) => holdMatches(pattern, name)), pattern).toEqual(names);
    }
  });

  it('dnf: names, "*" and classes still hold exactly the installed matches, each once', () => {
    expect(resolveDnfHoldsWithRealRpm('kernel* kubelet libstdc++ kubelet nothing-here', installed)).toEqual({
      held: ['kernel', 'kernel-core', 'kernel-devel', 'kubelet', 'libstdc++'],
      excludes: ['--exclude=kernel*', '--exclude=kubelet', '--exclude=libstdc++', '--exclude=kubelet'],
    });
    expect(resolveDnfHoldsWithRealRpm('kube[cl]*', installed)).toEqual({ held: ['kubelet', 'kubectl'], excludes: ['--exclude=kube[cl]*'] });
  });
});
