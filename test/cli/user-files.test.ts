/**
 * Files a user names that are not what they seem: a FIFO (readFileSync blocks on it forever), /dev/zero (read until
 * memory runs out), a file too large, UTF-16, binary; and outputs that cannot be written (/dev/full). Every entry point
 * answers with one line naming the file, exit 2, and leaves no partial file.
 */
import { spawnSync } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeOutputFile } from '../../src/cli/output-file.ts';
import { UserError } from '../../src/cli/user-error.ts';
import { decodeUserText, readUserFile, UserFileError } from '../../src/io/user-file.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/patchpilot.js');
const DEMO = join(ROOT, 'fixtures/scenarios/demo.yaml');
const scratch = scratchDirs('user-files');
const KUBECONFIG = 'apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true } }]\nusers: [{ name: u, user: { token: abc } }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\ncurrent-context: x\n';

/** The CLI, killed after 20 s: a regression that blocks on a FIFO fails this test instead of hanging the suite. */
function cli(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL', env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1', ...env } });
  return { code: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

function expectRefused(run: ReturnType<typeof cli>, message: RegExp): void {
  expect(run.signal, 'the command hung and was killed').toBeNull();
  expect(run.code, run.stderr).toBe(2);
  expect(run.stderr).toMatch(message);
  expect(run.stderr).not.toMatch(/\n\s+at .+:\d+/);
}

const hasMkfifo = (() => {
  try {
    execFileSync('mkfifo', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('readUserFile', () => {
  it('refuses a directory, a device and a missing file, naming the file', () => {
    const dir = scratch();
    expect(() => readUserFile(dir, 'plan')).toThrow(`${dir} is a directory, not a file`);
    expect(() => readUserFile('/dev/zero', 'plan')).toThrow('/dev/zero is not a regular file');
    expect(() => readUserFile(join(dir, 'nope'), 'plan')).toThrow(/nope does not exist$/);
  });

  it('refuses a file over the cap without reading it all', () => {
    const path = join(scratch(), 'big.yaml');
    writeFileSync(path, 'a: 1\n'.repeat(300));
    expect(() => readUserFile(path, 'plan', 1000)).toThrow(/big\.yaml is larger than 0 MB, far more than any plan/);
    expect(readUserFile(path, 'plan', 1500)).toHaveLength(1500);
  });

  it('names UTF-16 and UTF-32 (with or without a byte order mark) and binary; drops a UTF-8 byte order mark', () => {
    const utf16le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('cluster: a\n', 'utf16le')]);
    const utf16be = Buffer.from(utf16le.toString('utf16le'), 'utf16le').swap16();
    expect(() => decodeUserText(utf16le, 'p.yaml', 'plan')).toThrow('p.yaml is UTF-16 (little-endian) text, not UTF-8: save it as UTF-8');
    expect(() => decodeUserText(utf16be, 'p.yaml', 'plan')).toThrow('UTF-16 (big-endian)');
    expect(() => decodeUserText(Buffer.from([0xff, 0xfe, 0, 0, 0x63, 0, 0, 0]), 'p.yaml', 'plan')).toThrow('UTF-32 (little-endian)');
    expect(() => decodeUserText(Buffer.from([0, 0, 0xfe, 0xff, 0, 0, 0, 0x63]), 'p.yaml', 'plan')).toThrow('UTF-32 (big-endian)');
    expect(() => decodeUserText(Buffer.from('cluster: a\n', 'utf16le'), 'p.yaml', 'plan')).toThrow('looks like UTF-16 text');
    expect(() => decodeUserText(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]), 'p.yaml', 'plan')).toThrow('p.yaml holds a NUL byte (at byte 7): a binary file, not a plan');
    expect(() => decodeUserText(Buffer.from([0x61, 0xe9, 0x0a]), 'p.yaml', 'plan')).toThrow('p.yaml is not UTF-8 text');
    expect(decodeUserText(Buffer.from('\uFEFF{"a":1}'), 'p.json', 'plan')).toBe('{"a":1}');
  });
});

describe.skipIf(!hasMkfifo)('a FIFO or a device at every entry point that reads a user file: refused, never waited on', () => {
  it.each([
    { name: 'plan check', args: ['plan', 'check', 'f.yaml'], message: /^error: invalid f\.yaml:\n {2}- f\.yaml is not a regular file/ },
    { name: 'plan check /dev/zero', args: ['plan', 'check', '/dev/zero'], message: /^error: invalid \/dev\/zero:\n {2}- \/dev\/zero is not a regular file/ },
    { name: 'run --plan', args: ['run', '--kubeconfig', 'k', '--plan', 'f.yaml', '--dry-run'], message: /^error: invalid f\.yaml:\n {2}- f\.yaml is not a regular file/ },
    { name: 'run --kubeconfig', args: ['run', '--kubeconfig', 'f.yaml', '--dry-run'], message: /^error: kubeconfig f\.yaml \(from --kubeconfig\) is not a regular file/ },
    { name: 'KUBECONFIG', args: ['run', '--dry-run'], env: { KUBECONFIG: 'f.yaml' }, message: /^error: kubeconfig f\.yaml \(from KUBECONFIG\) is not a regular file/ },
    { name: 'sim', args: ['sim', 'f.yaml'], message: /^error: invalid scenario f\.yaml:\n {2}f\.yaml: is not a regular file/ },
    { name: 'sandbox --scenario', args: ['sandbox', '--scenario', 'f.yaml'], message: /^error: invalid scenario f\.yaml:\n {2}f\.yaml: is not a regular file/ },
    { name: 'bot --sim', args: ['bot', '--sim', 'f.yaml'], env: { SLACK_BOT_TOKEN: 'xoxb-1-2-cli-test-token', SLACK_SIGNING_SECRET: 'f'.repeat(32), SLACK_API_URL: 'http://127.0.0.1:9' }, message: /^error: invalid scenario f\.yaml:\n {2}f\.yaml: is not a regular file/ },
    { name: 'replay', args: ['replay', 'f.yaml'], message: /^error: invalid scenario f\.yaml:\n {2}f\.yaml: is not a regular file/ },
  ])('$name', ({ args, message, env }: { args: string[]; message: RegExp; env?: NodeJS.ProcessEnv }) => {
    const cwd = scratch();
    execFileSync('mkfifo', [join(cwd, 'f.yaml')]);
    writeFileSync(join(cwd, 'k'), KUBECONFIG);
    expectRefused(cli(cwd, args, env), message);
  });

  it('a demo cluster file edited by hand: each damage is named, before anything runs', () => {
    const cwd = scratch();
    const first = cli(cwd, ['demo', '--db', 'x.db', '--speed', '0', '--json']);
    expect(first.code, first.stderr).toBe(0);
    const file = readdirSync(cwd).find((name) => name.startsWith('x.db.demo-') && name.endsWith('.json'))!;
    const runId = file.slice('x.db.demo-'.length, -'.json'.length);
    const saved = JSON.parse(readFileSync(join(cwd, file), 'utf8')) as { now: number; state: { nodes: Array<Record<string, unknown>> } };
    // Intact, it is read and the run is found finished: the checks below refuse what this one passes.
    expectRefused(cli(cwd, ['demo', '--db', 'x.db', '--resume', runId]), /already finished/);
    for (const [edit, message] of [
      [(d: typeof saved) => (d.now = 1e20), /now: must be a time before 2200/],
      [(d: typeof saved) => (d.now = -1e20), /now: must be a time after 2000/],
      [(d: typeof saved) => (d.state.nodes[0]!.rebootKeys = 5), /state\.nodes\[0\]\.rebootKeys: /],
      [(d: typeof saved) => (d.state.nodes[0]!.behaviour = { apiErrors: 'many' }), /state\.nodes\[0\]\.behaviour\.apiErrors: /],
      [(d: typeof saved) => (d.state.nodes[1] = { ...d.state.nodes[1], name: d.state.nodes[0]!.name }), /state\.nodes: names a node twice/],
      [(d: typeof saved) => ((d.state as Record<string, unknown>).auditAnchors = { db: { seq: 'x', hash: 'a'.repeat(64), at: d.now } }), /state\.auditAnchors\.db\.seq: /],
      [(d: typeof saved) => ((d.state as Record<string, unknown>).auditAnchors = { db: { seq: 3, hash: 'not-a-hash', at: d.now } }), /state\.auditAnchors\.db\.hash: must be a SHA-256 hash in hex/],
    ] as const) {
      const copy = structuredClone(saved);
      edit(copy);
      writeFileSync(join(cwd, file), JSON.stringify(copy));
      expectRefused(cli(cwd, ['demo', '--db', 'x.db', '--resume', runId]), new RegExp(`^error: cannot resume: ${file.replaceAll('.', '\\.')}: ${message.source}`));
    }
  });

  it('the demo cluster file of a run to resume', () => {
    const cwd = scratch();
    execFileSync('mkfifo', [join(cwd, 'x.db.demo-cluster.run-1.json')]);
    const run = cli(cwd, ['demo', '--db', 'x.db', '--resume', 'run-1']);
    // Whatever name the file has, it is never opened for a blocking read.
    expect(run.signal).toBeNull();
    expect(run.code, run.stderr).toBe(2);
  });
});

/** A kubeconfig for a server nobody reaches: what it names fails before any request is sent. */
function kubeconfigWith(user: string, cluster = ''): string {
  return `apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "https://127.0.0.1:9", insecure-skip-tls-verify: true${cluster} } }]\nusers: [{ name: u, user: ${user} }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\ncurrent-context: x\n`;
}

describe.skipIf(!hasMkfifo)('files a kubeconfig names (client-node reads them with readFileSync): refused, never waited on', () => {
  it.each([
    { name: 'a FIFO as a user\'s token-file (read while the kubeconfig is parsed)', user: '{ token-file: f }', message: /^error: the token-file of user "u" in kubeconfig k: f is not a regular file/ },
    { name: 'a FIFO as the certificate-authority', user: '{ token: t }', cluster: ', certificate-authority: f', message: /^error: the certificate-authority of cluster "c" in kubeconfig k: (.*\/)?f is not a regular file/ },
    { name: '/dev/zero as the client-key', user: '{ client-certificate: k, client-key: /dev/zero }', message: /^error: the client-key of user "u" in kubeconfig k: \/dev\/zero is not a regular file/ },
    { name: 'a client-certificate that does not exist', user: '{ client-certificate: nope.crt, client-key: k }', message: /^error: the client-certificate of user "u" in kubeconfig k: .*nope\.crt does not exist/ },
  ])('$name', ({ user, cluster, message }: { user: string; cluster?: string; message: RegExp }) => {
    const cwd = scratch();
    execFileSync('mkfifo', [join(cwd, 'f')]);
    writeFileSync(join(cwd, 'k'), kubeconfigWith(user, cluster));
    for (const args of [['run', '--kubeconfig', 'k', '--dry-run'], ['doctor', '--kubeconfig', 'k']]) expectRefused(cli(cwd, args), message);
  });
});

describe('an exec credential plugin that fails: one line naming the user and the plugin, not its stack trace', () => {
  it.each([
    { name: 'exits 1, saying why', exec: '{ command: /bin/sh, args: ["-c", "echo token expired, log in again >&2; exit 1"] }', message: /^error: the credentials of user "u" in kubeconfig k could not be obtained: its exec plugin \/bin\/sh failed: token expired, log in again\nhint: / },
    { name: 'exits 1, saying nothing', exec: '{ command: /bin/sh, args: ["-c", "exit 1"] }', message: /its exec plugin \/bin\/sh failed: it exited with an error and printed nothing\n/ },
    { name: 'prints something else than JSON', exec: '{ command: /bin/sh, args: ["-c", "echo hello"] }', message: /its exec plugin \/bin\/sh printed no ExecCredential JSON\n/ },
    { name: 'is not installed', exec: '{ command: patchpilot-no-such-plugin }', message: /its exec plugin patchpilot-no-such-plugin does not exist/ },
  ])('$name', ({ exec, message }) => {
    const cwd = scratch();
    writeFileSync(join(cwd, 'k'), kubeconfigWith(`{ exec: { apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never, ${exec.slice(2)} }`));
    for (const args of [['run', '--kubeconfig', 'k', '--dry-run'], ['unstick', '--kubeconfig', 'k']]) expectRefused(cli(cwd, args), message);
  });
});

describe('files too large, or not UTF-8, through the CLI', () => {
  it('a plan over the cap is refused at once, naming the cap', () => {
    const cwd = scratch();
    writeFileSync(join(cwd, 'big.yaml'), `cluster: a\n#${'x'.repeat(1024 * 1024)}\n`);
    expectRefused(cli(cwd, ['plan', 'check', 'big.yaml']), /^error: invalid big\.yaml:\n {2}- big\.yaml is larger than 1 MB, far more than any plan/);
  });

  it('a UTF-16 plan says so, not "expected object, received string"', () => {
    const cwd = scratch();
    writeFileSync(join(cwd, 'p.yaml'), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('cluster: a\n', 'utf16le')]));
    expectRefused(cli(cwd, ['plan', 'check', 'p.yaml']), /^error: invalid p\.yaml:\n {2}- p\.yaml is UTF-16 \(little-endian\) text, not UTF-8: save it as UTF-8\n$/);
  });
});

describe('outputs that cannot be written: one line naming the option, exit 2, no partial file', () => {
  it.skipIf(!existsSync('/dev/full'))('sim --report, --record and --junit on /dev/full', { timeout: 60_000 }, () => {
    const cwd = scratch();
    expectRefused(cli(cwd, ['sim', DEMO, '--report', '/dev/full', '--record', '-']), /^error: cannot write --report \/dev\/full: no space left on device\n/);
    expectRefused(cli(cwd, ['sim', DEMO, '--record', '/dev/full']), /^error: cannot write --record \/dev\/full: no space left on device\n/);
    expectRefused(cli(cwd, ['sim', DEMO, DEMO, '--junit', '/dev/full', '--jobs', '1']), /^error: cannot write --junit \/dev\/full: no space left on device\n/);
  });

  it.skipIf(!existsSync('/dev/full'))('writeOutputFile writes a device as it is (never renames over it) and reports its failure', () => {
    expect(() => writeOutputFile('/dev/full', '--report', 'x')).toThrow(UserError);
    expect(() => writeOutputFile('/dev/full', '--report', 'x')).toThrow('cannot write --report /dev/full: no space left on device');
    writeOutputFile('/dev/null', '--report', 'x');
  });

  it('writeOutputFile replaces a file whole and leaves no temporary; a failed write leaves the old file', () => {
    const dir = scratch();
    const path = join(dir, 'out/report.html');
    writeOutputFile(path, '--report', 'first');
    writeOutputFile(path, '--report', 'second');
    expect(readFileSync(path, 'utf8')).toBe('second');
    expect(readdirSync(join(dir, 'out'))).toEqual(['report.html']);
    // Renaming over a non-empty directory fails after the temporary was written: it must be gone, the directory kept.
    mkdirSync(join(dir, 'taken/x'), { recursive: true });
    expect(() => writeOutputFile(join(dir, 'taken'), '--report', 'x')).toThrow(/^cannot write --report .*taken: /);
    expect(readdirSync(dir).sort()).toEqual(['out', 'taken']);
  });

  it('the errors are UserFileErrors or UserErrors, which main.ts prints as one line', () => {
    expect(new UserFileError('p', 'is not a regular file', 'h').message).toBe('p is not a regular file');
  });
});
