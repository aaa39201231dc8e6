/**
 * Every entry point that reads a user's file, fed generated input (fast-check): valid files cut short, with text
 * inserted or deleted, YAML-significant characters dropped in, arbitrary JSON and YAML, alias bombs, deep nesting.
 * Each either loads, or fails with an error the CLI turns into one `error: ...` message (exit 2), never a stack
 * trace or an exception it does not know. In-process for speed; a few real CLI processes check the exit codes.
 */
import { spawnSync } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parsePatchCommand } from '../../src/bot/commands.ts';
import { KubeApiError } from '../../src/cluster/kube/errors.ts';
import { loadKubeConfig } from '../../src/cluster/kube/kubeconfig.ts';
import { parseAnchorOption } from '../../src/cli/history.ts';
import { describeUserError } from '../../src/cli/main.ts';
import { sandboxCommand } from '../../src/cli/sandbox.ts';
import { parsePlanText } from '../../src/cli/plan-check.ts';
import { applySettings, parseRecording, scenarioFromRecording } from '../../src/sim/replay.ts';
import { paletteTarget } from '../../src/cli/targets.ts';
import { runScenario } from '../../src/sim/runner.ts';
import { parseDuration } from '../../src/sim/duration.ts';
import { parseScenario } from '../../src/sim/scenario.ts';
import { StalledRunError } from '../../src/service/drive.ts';
import { PatchpilotMetrics, serveMetrics } from '../../src/service/metrics.ts';
import { openStore } from '../../src/store/index.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const BIN = join(ROOT, 'bin/patchpilot.js');
const scratch = scratchDirs('bad-input');

const BOMB = ['a: &a [x, x, x, x, x, x, x, x, x]', ...'bcdefghi'.split('').map((n, i) => `${n}: &${n} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`)].join('\n');
const DEEP_FLOW = `a: ${'['.repeat(100_000)}${']'.repeat(100_000)}\n`;
const DEEP_BLOCK = `${'- '.repeat(50_000)}x\n`;
const DEEP_JSON = `{"a":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;

/** Texts near `base` (a valid file) and far from it. */
function around(base: string): fc.Arbitrary<string> {
  const at = fc.nat(base.length);
  const yamlish = fc.constantFrom('&a ', '*a', '*zz', '[', ']', '{', '}', '"', "'", '\t', '\n', ': ', '- ', '!!binary ', '!!js/function ', '<<: *a\n', '\u0000', '\uFEFF', '%YAML 1.2\n---\n', '---\n', '...\n', '? ', '|\n', '>-\n', '1e999', '-0', '0x1F', '.nan', '~', 'null');
  return fc.oneof(
    at.map((n) => base.slice(0, n)),
    fc.tuple(at, fc.string({ maxLength: 12 })).map(([i, s]) => base.slice(0, i) + s + base.slice(i)),
    fc.tuple(at, fc.nat(40)).map(([i, n]) => base.slice(0, i) + base.slice(i + n)),
    fc.tuple(at, yamlish).map(([i, s]) => base.slice(0, i) + s + base.slice(i)),
    fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v) ?? ''),
    fc.jsonValue({ maxDepth: 4 }).map((v) => stringify(v)),
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.constantFrom('', '\n', BOMB, DEEP_FLOW, DEEP_BLOCK, DEEP_JSON, `${base}\n${BOMB}`),
  );
}

/** Loads, or fails as a user mistake: an `error:` message without a stack trace. */
function loadsOrRefuses(load: () => unknown): void {
  try {
    load();
  } catch (err) {
    const message = describeUserError(err);
    if (message === null) throw new Error(`not a user error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    expect(message).toMatch(/^error: /);
    expect(message).not.toMatch(/\n\s+at .+:\d+/);
  }
}

const SCENARIO = readFileSync(join(ROOT, 'fixtures/scenarios/demo.yaml'), 'utf8');
const PLAN = 'cluster: prod\nconcurrency: 2\nmaxFailures: 1\ntrigger: { kind: preset, preset: monthly, timeZone: Europe/Berlin }\napproval: { required: true, approvers: [U1, S2] }\nnodes: [a, b]\ndrain: { onTimeout: keep-cordoned }\n';
const KUBECONFIG = 'apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true } }]\nusers: [{ name: u, user: { token: abc } }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\ncurrent-context: x\n';

describe('generated input at every loader of user files', () => {
  it('scenario files', () => {
    fc.assert(fc.property(around(SCENARIO), (text) => loadsOrRefuses(() => parseScenario(text, 'x.yaml'))), { numRuns: 100 });
  });

  it('plan files', () => {
    fc.assert(fc.property(around(PLAN), (text) => loadsOrRefuses(() => parsePlanText(text, 'plan.yaml'))), { numRuns: 400 });
  });

  it('recordings, and the scenario a replay rebuilds from them', async () => {
    const lines: string[] = [];
    await runScenario(parseScenario(SCENARIO, 'demo.yaml'), { record: (line) => lines.push(line) });
    const recording = `${lines.join('\n')}\n`;
    // Also line-wise damage: lines dropped, swapped for other JSON, or a header field replaced.
    const header = JSON.parse(lines[0]!) as { scenario: Record<string, unknown> };
    const damagedHeader = fc
      .tuple(fc.constantFrom(...Object.keys(header.scenario)), fc.jsonValue({ maxDepth: 2 }))
      .map(([key, value]) => [JSON.stringify({ ...header, scenario: { ...header.scenario, [key]: value } }), ...lines.slice(1)].join('\n'));
    const droppedLine = fc.nat(lines.length - 1).map((i) => lines.filter((_, j) => j !== i).join('\n'));
    fc.assert(
      fc.property(fc.oneof(around(recording), damagedHeader, droppedLine), fc.constantFrom([], ['concurrency=3'], ['drain.onTimeout=keep-cordoned']), (text, settings) =>
        loadsOrRefuses(() => scenarioFromRecording(parseRecording(text, 'r.jsonl'), settings, 'r.jsonl')),
      ),
      { numRuns: 300 },
    );
  });

  it('kubeconfig files', () => {
    const dir = scratch();
    let n = 0;
    fc.assert(
      fc.property(around(KUBECONFIG), (text) => {
        const path = join(dir, `k${++n}`);
        writeFileSync(path, text);
        loadsOrRefuses(() => loadKubeConfig({ path, env: {} }));
      }),
      { numRuns: 200 },
    );
  });

  it('the /patch command parser answers every text with a command or a usage error', () => {
    fc.assert(
      fc.property(around('run prod --nodes a,b --no-reboot --concurrency 2'), (text) => {
        const parsed = parsePatchCommand(text);
        if (!parsed.ok) expect(parsed.error.length).toBeGreaterThan(0);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('a run that cannot finish in the virtual time allowed', () => {
  it('is one line saying what it was doing (demo --resume of an edited run died with a trace)', () => {
    expect(describeUserError(new StalledRunError('run run-1 is still rolling.active after 30 virtual days'))).toBe('error: run run-1 is still rolling.active after 30 virtual days');
  });
});

describe('a port a server cannot listen on', () => {
  it('is one line naming the port (bot, run --metrics-port and scan --metrics-port died with a trace)', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
    const port = (taken.address() as AddressInfo).port;
    try {
      const err = await serveMetrics(new PatchpilotMetrics(), port, '127.0.0.1').then(
        (s) => s.close().then(() => null),
        (e: unknown) => e,
      );
      expect(describeUserError(err)).toBe(
        `error: port ${port} on 127.0.0.1 is already in use\nhint: stop what listens there, or choose another port (--port, --metrics-port, PORT)`,
      );
    } finally {
      taken.close();
    }
  });
});

/** Refused with one message naming the field, or (valid) loaded. */
function planMessage(line: string): string | null {
  try {
    parsePlanText(`cluster: prod\n${line}\n`, 'p.yaml');
    return null;
  } catch (err) {
    return describeUserError(err);
  }
}

describe('hand-picked bad values, each refused naming its field (found by the review battery)', () => {
  it.each([
    ['maxFailures: 100.5%', 'maxFailures: must be a whole number or a percentage'],
    ['concurrency: 100.01%', 'concurrency: must be a whole number or a percentage'],
    ['drain: { podSelector: "a=(" }', 'drain.podSelector: not a valid label selector'],
    ["blockers: { prometheus: { url: 'http://user:secret@prom:9090' } }", 'blockers.prometheus.url: must not carry a user or password'],
    ['concurrency: 150%', 'concurrency: must be a whole number or a percentage'],
    ['maxFailures: -5%', 'maxFailures: must be a whole number or a percentage'],
    ['concurrency: abc%', 'concurrency: must be a whole number or a percentage'],
    [`nodes: [${'a'.repeat(254)}]`, 'nodes[0]: not a Kubernetes node name'],
    ['nodes: [Worker-1]', 'nodes[0]: not a Kubernetes node name'],
    ['nodes: ["a b"]', 'nodes[0]: not a Kubernetes node name'],
    ['holdPackages: ["kubelet; rm -rf /"]', 'holdPackages[0]: not a package name'],
    ['holdPackages: [kubelet, "$(reboot)"]', 'holdPackages[1]: not a package name'],
    ['holdPackages: ["kubelet kubeadm"]', 'holdPackages[0]: not a package name'],
    ['holdPackages: ["kernel; rm -rf /"]', 'holdPackages[0]: not a package name or pattern'],
    ['holdPackages: ["$(x)"]', 'holdPackages[0]: not a package name or pattern'],
    ['holdPackages: ["-y"]', 'holdPackages[0]: not a package name or pattern'],
    ['holdPackages: ["*"]', 'holdPackages[0]: not a package name or pattern'],
    ['holdPackages: ["kernel[0-9"]', 'holdPackages[0]: not a package name or pattern'],
    ['holdPackages: ["kernel/*"]', 'holdPackages[0]: not a package name or pattern'],
    ['holdPackages: ["kernel\'*"]', 'holdPackages[0]: not a package name or pattern'],
    ['nodes: [worker-1, worker-2, worker-1]', 'nodes[2]: "worker-1" is listed twice (also nodes[0]): a typo for another node?'],
    // The hash written over the node's own OS label: Linux workloads lose the node, and no later run selects it.
    ['labelKey: kubernetes.io/os', 'labelKey: kubernetes.io/ is a prefix Kubernetes reserves for its own labels'],
    ['labelKey: node-role.kubernetes.io/worker', 'labelKey: node-role.kubernetes.io/ is a prefix Kubernetes reserves'],
    ['labelKey: k8s.io/os-patch', 'labelKey: k8s.io/ is a prefix Kubernetes reserves'],
  ])('%s', (line, field) => {
    const message = planMessage(line);
    expect(message).toContain(field);
    expect(message).not.toContain('secret');
    // The value is never echoed: a 1 MB node name made a 1 MB message.
    expect(message!.length).toBeLessThan(300);
  });

  // YAML 1.2 reads 0x10 as 16 and 0o17 as 15, and a YAML 1.1 reader takes 017 as 15: numbers are written in decimal.
  it.each([
    ['concurrency: 0x10', 'concurrency: 0x10 is not a decimal number (write 16, or "0x10" in quotes if it is text)'],
    ['drainTimeoutSeconds: 0o17', 'drainTimeoutSeconds: 0o17 is not a decimal number (write 15, or "0o17" in quotes if it is text)'],
    ['retry: { attempts: 1e1 }', 'retry.attempts: 1e1 is not a decimal number (write 10, or "1e1" in quotes if it is text)'],
    ['canary: { nodes: 017 }', 'canary.nodes: 017 is not a decimal number: a leading 0 means octal to YAML 1.1 (write 17, or "017" in quotes if it is text)'],
    ['maxFailures: .inf', 'maxFailures: .inf is not a decimal number'],
    ['healthGate: { maxNotReady: !!int 0x2 }', 'healthGate.maxNotReady: 0x2 is not a decimal number (write 2, or "0x2" in quotes if it is text)'],
    ['nodeSelector: { 0x10: a }', 'nodeSelector: key 0x10 is not a decimal number (write 16, or "0x10" in quotes if it is text)'],
  ])('a number not written in decimal: %s', (line, problem) => {
    expect(planMessage(line)).toContain(problem);
  });

  it('a number not written in decimal is named by its field in a scenario and in --set; quoted, it is text', () => {
    expect(() => parseScenario(SCENARIO.replace('readyTimeoutSeconds: 600', 'readyTimeoutSeconds: 0x20'), 'x.yaml')).toThrow(/x\.yaml:\d+: plan\.readyTimeoutSeconds: 0x20 is not a decimal number \(write 32, or "0x20" in quotes if it is text\)/);
    const recording = { plan: { cluster: 'c' } };
    expect(() => applySettings(recording.plan, ['concurrency=0x10'])).toThrow('--set concurrency=0x10: concurrency: 0x10 is not a decimal number (write 16, or "0x10" in quotes if it is text)');
    expect(applySettings(recording.plan, ['concurrency=16', 'retry.backoffSeconds=1.5e-3', 'nodeSelector.rev="0x10"'])).toEqual({ cluster: 'c', concurrency: 16, retry: { backoffSeconds: 0.0015 }, nodeSelector: { rev: '0x10' } });
    expect(planMessage('nodeSelector: { rev: "0x10" }\nconcurrency: 10\nmaxFailures: 0')).toBeNull();
    // A label key holds dots: after nodeSelector the rest of the path is one key.
    expect(applySettings({ nodeSelector: { 'kubernetes.io/os': 'windows' } }, ['nodeSelector.kubernetes.io/os=linux', 'nodeSelector.topology.kubernetes.io/zone=zone-a'])).toEqual({
      nodeSelector: { 'kubernetes.io/os': 'linux', 'topology.kubernetes.io/zone': 'zone-a' },
    });
    expect(() => applySettings({}, ['nodeSelector.__proto__=x'])).toThrow('--set nodeSelector.__proto__=x: "__proto__" is not a plan setting');
    // A %YAML 1.1 directive does not bring back YAML 1.1's numbers (0b11 is 3 there): it stays text, refused by type.
    expect(() => parsePlanText('%YAML 1.1\n---\ncluster: prod\nconcurrency: 0b11\n', 'p.yaml')).toThrow(/concurrency: must be a whole number or a percentage .*got "0b11"/);
  });

  it('an empty or comment-only plan file is refused (every default would run silently); {} takes the defaults', () => {
    for (const text of ['', '\n', '# nothing yet\n', '~\n']) expect(() => parsePlanText(text, 'p.yaml'), JSON.stringify(text)).toThrow(/p\.yaml[\s\S]*the file is empty \(write \{\} to take every default\)/);
    expect(parsePlanText('{}', 'p.yaml').cluster).toBe('default');
  });

  it('still takes 100%, 100.0% and 99.5%, a valid drain selector, and hold patterns as dnf takes them', () => {
    for (const line of ['nodes: [worker-1, ip-10-0-0-1.ec2.internal]', 'holdPackages: [kubelet, libstdc++6, NetworkManager, python3.11, containerd:amd64, lib_x]', 'holdPackages: ["kernel*", "kernel-[0-9]*", "linux-image-?.*", "lib[!x]ssl*", "*-devel"]', 'maxFailures: 100%', 'maxFailures: 100.0%', 'concurrency: 99.5%', 'drain: { podSelector: "app in (web, api)" }', "blockers: { prometheus: { url: 'http://prom:9090' } }"]) expect(planMessage(line), line).toBeNull();
  });

  it('an unknown invariant in expect is named, not "Invalid input"', () => {
    const text = SCENARIO.replace(/invariants: \[/, 'invariants: [made-up, ');
    expect(text).not.toBe(SCENARIO);
    expect(() => parseScenario(text, 'x.yaml')).toThrow(/expect: invariants\[0\]: Invalid option: expected one of "no-node-left-cordoned"/);
  });

  it('a kubeconfig whose server is not a URL is refused when loaded, not deep in the first request', () => {
    const path = join(scratch(), 'k');
    writeFileSync(path, KUBECONFIG.replace('https://127.0.0.1:6443', 'not a url'));
    expect(() => loadKubeConfig({ path, env: {} })).toThrow('cluster "c" in kubeconfig');
    try {
      loadKubeConfig({ path, env: {} });
    } catch (err) {
      expect(describeUserError(err)).toMatch(/^error: cluster "c" in kubeconfig .* has no https:\/\/ server URL \(got "not a url"\)/);
    }
  });

  it.skipIf(!existsSync('/proc/version'))('a sandbox kubeconfig that cannot be written (in /proc) is a user error, and the API server is stopped', async () => {
    // As root the up-front check passes (access() says yes) and the write fails; as anyone else the check refuses it.
    const out = new Writable({ write: (_chunk, _encoding, done) => done() });
    const err = await sandboxCommand({ scenario: join(ROOT, 'fixtures/scenarios/demo.yaml'), port: 0, kubeconfig: '/proc/patchpilot-review.kubeconfig', quiet: true }, { out, stopped: new Promise(() => {}) }).catch((e: unknown) => e);
    expect(describeUserError(err)).toMatch(/^error: --kubeconfig \/proc\/patchpilot-review.kubeconfig/);
  });

  it('the API server refusing the credentials (401) or a permission (403) is one message, not a stack trace; a 400 stays a bug', () => {
    const request = { verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace: 'os-patch', name: 'patchpilot-prod' } as const;
    expect(describeUserError(new KubeApiError(request, 401, { message: 'Unauthorized' } as never, false))).toMatch(/^error: the API server refused the kubeconfig's credentials: update leases "patchpilot-prod" in namespace os-patch: HTTP 401: Unauthorized\nhint: /);
    expect(describeUserError(new KubeApiError(request, 403, { message: 'forbidden' } as never, false))).toMatch(/^error: the kubeconfig's user is not allowed this: .*HTTP 403: forbidden\nhint: /);
    expect(describeUserError(new KubeApiError(request, 400, null, false))).toBeNull();
  });

  it('a Palette cluster uid that is empty or not a uid is named as such, before the missing API key', () => {
    for (const uid of ['', '../x', 'a b']) expect(() => paletteTarget({ clusterUid: uid }, {}), uid).toThrow(`${JSON.stringify(uid)} is not a Palette cluster uid`);
    expect(() => paletteTarget({ clusterUid: 'abc123' }, {})).toThrow('no Palette API key');
  });

  it('node labels and zones the API server would refuse are refused when the scenario loads (the sandbox crashed serving them)', () => {
    const scenario = (node: string) => `name: x\ncluster: { nodes: [ { name: a, os: ubuntu-22.04, ${node} } ] }\n`;
    expect(() => parseScenario(scenario('labels: { "bad key!": v }'), 'x.yaml')).toThrow(/cluster\.nodes\[0\]\.labels\.bad key!: Invalid key/);
    expect(() => parseScenario(scenario('labels: { pool: "x y" }'), 'x.yaml')).toThrow(/cluster\.nodes\[0\]\.labels\.pool: not a valid label value/);
    expect(() => parseScenario(scenario(`labels: { pool: ${'v'.repeat(64)} }`), 'x.yaml')).toThrow(/at most 63 characters/);
    expect(() => parseScenario(scenario('zone: "eu west"'), 'x.yaml')).toThrow(/cluster\.nodes\[0\]\.zone: not a valid label value/);
    expect(parseScenario(scenario('zone: eu-west-1a, labels: { example.com/pool: gpu }'), 'x.yaml').nodes[0]?.labels).toMatchObject({ 'example.com/pool': 'gpu' });
  });

  it('a duration beyond 100 years is refused, not waited out', () => {
    expect(parseDuration('99999999999999999999d')).toBe('is too long (at most 100 years)');
    expect(parseDuration(1e300)).toBe('is too long (at most 100 years)');
    expect(parseDuration('36500d')).toBe(36_500 * 86_400_000);
  });

  it('an --anchor sequence number past 2^53 is refused (it would be rounded to another record)', () => {
    expect(() => parseAnchorOption(`99999999999999999999:${'a'.repeat(64)}`)).toThrow(/--anchor must be SEQ:HASH/);
    expect(parseAnchorOption(`57:${'a'.repeat(64)}`).seq).toBe(57);
  });
});

describe('the real CLI on bad files: exit 2, one error line, no trace', () => {
  it.each([
    { name: 'an alias bomb to sim', file: 'bomb.yaml', text: BOMB, args: ['sim', 'bomb.yaml'], message: 'error: invalid scenario bomb.yaml:' },
    { name: '100,000-deep YAML to plan check', file: 'deep.yaml', text: DEEP_FLOW, args: ['plan', 'check', 'deep.yaml'], message: 'error: invalid deep.yaml:' },
    // toJS would set the selector's prototype, dropping the entry: a selector for every node.
    { name: 'a __proto__ key to plan check', file: 'plan.yaml', text: 'nodeSelector: { __proto__: gpu }\n', args: ['plan', 'check', 'plan.yaml'], message: 'error: invalid plan.yaml:\n  - line 1, column 17: the key "__proto__" is not allowed' },
    { name: 'a __proto__ key in JSON to plan check', file: 'plan.json', text: '{"nodeSelector": {"__proto__": "gpu"}}', args: ['plan', 'check', 'plan.json'], message: 'error: invalid plan.json:\n  - line 1, column 19: the key "__proto__" is not allowed' },
    { name: 'a node named twice to reset --nodes', file: 'k', text: KUBECONFIG, args: ['reset', '--kubeconfig', 'k', '--nodes', 'cp-1, cp-1'], message: `error: option '--nodes <a,b>' argument 'cp-1, cp-1' is invalid. "cp-1" is listed twice: a typo for another node?` },
    { name: 'reset --nodes naming no node', file: 'k', text: KUBECONFIG, args: ['reset', '--kubeconfig', 'k', '--nodes', ' , '], message: "error: option '--nodes <a,b>' argument ' , ' is invalid. --nodes names no node" },
    { name: 'reset --nodes given twice (the second replaced the first)', file: 'k', text: KUBECONFIG, args: ['reset', '--kubeconfig', 'k', '--nodes', 'cp-1', '--nodes', 'w-1'], message: "error: option '--nodes <a,b>' argument 'w-1' is invalid. --nodes is given twice" },
    { name: 'a list as a key to plan check (yaml warned on stderr, then stringified it)', file: 'plan.yaml', text: 'cluster: a\n? [a, b]\n: 1\n', args: ['plan', 'check', 'plan.yaml'], message: 'error: invalid plan.yaml:\n  - line 2, column 3: a key that is a list or a map is not allowed\n' },
    { name: 'an alias without its anchor to plan check', file: 'plan.yaml', text: 'concurrency: *a\n', args: ['plan', 'check', 'plan.yaml'], message: 'error: invalid plan.yaml:\n  - YAML: Unresolved alias (the anchor must be set before the alias): a' },
    { name: 'a recording cut short to replay', file: 'r.jsonl', text: `${JSON.stringify({ line: 'header', format: 'patchpilot-recording/1', scenario: {} })}\n{"line":"obs`, args: ['replay', 'r.jsonl'], message: 'error: invalid scenario r.jsonl:' },
    { name: 'a directory as --junit', file: 'demo.yaml', text: SCENARIO, dir: 'out.xml', args: ['sim', 'demo.yaml', '--junit', 'out.xml'], message: 'error: --junit out.xml is a directory' },
    { name: 'an empty --trigger to plan check', file: 'plan.yaml', text: PLAN, args: ['plan', 'check', 'plan.yaml', '--trigger', ''], message: "error: option '--trigger <id>' argument '' is invalid" },
    { name: '--lease-seconds beyond a day', file: 'k', text: KUBECONFIG, args: ['run', '--kubeconfig', 'k', '--lease-seconds', '99999999999'], message: "error: option '--lease-seconds <n>' argument '99999999999' is invalid. --lease-seconds must be at most 86400" },
    // A ScaledClock at 1e11 left the range of a Date within two minutes: the sandbox crashed with a RangeError.
    { name: 'a sandbox --speed beyond the fastest a simulated clock runs', file: 'x', text: '', args: ['sandbox', '--speed', '99999999999'], message: "error: option '--speed <n>' argument '99999999999' is invalid. expected a number above 0 and at most 1000" },
    { name: 'a bot --speed beyond the fastest a simulated clock runs', file: 'x', text: '', args: ['bot', '--sim', 'x', '--speed', '1001'], message: "error: option '--speed <n>' argument '1001' is invalid. expected a number above 0 and at most 1000" },
    { name: 'binary garbage as a kubeconfig', file: 'k', text: '\u0000\u0001\u00ff{[', args: ['run', '--kubeconfig', 'k', '--dry-run'], message: 'error: kubeconfig k' },
    { name: 'an empty --resume', file: 'x', text: '', args: ['demo', '--resume', '', '--db', 'x.db'], message: `error: option '--resume <run>' argument '' is invalid. "" is not a run id` },
    { name: 'a hexadecimal --port', file: 'x', text: '', args: ['bot', '--sim', 'x', '--port', '0x50'], message: "error: option '--port <n>' argument '0x50' is invalid" },
    { name: 'a hexadecimal --limit', file: 'x', text: '', args: ['runs', '--limit', '0x5'], message: "error: option '--limit <n>' argument '0x5' is invalid" },
    { name: 'a hexadecimal --seed', file: 'x', text: '', args: ['sim', 'x', '--seed', '0x10'], message: "error: option '--seed <n>' argument '0x10' is invalid" },
    // 99999999999999999999 is read as 1e20: a run of another seed than the one typed (the scenario file refused it already).
    { name: 'a --seed beyond 2^53', file: 'x', text: '', args: ['sim', 'x', '--seed', '99999999999999999999'], message: "error: option '--seed <n>' argument '99999999999999999999' is invalid. expected a whole number from 0 to 9007199254740991" },
    // An unset shell variable: taken as "no such option" (every default instead of the plan, no report, exit 0), or
    // for --db as SQLite's temporary database (a run whose audit log vanished with the process).
    { name: 'an empty --plan to run', file: 'k', text: KUBECONFIG, args: ['run', '--kubeconfig', 'k', '--plan', '', '--dry-run'], message: "error: option '--plan <file>' argument '' is invalid. It is empty (is a shell variable unset?)" },
    { name: 'an empty --db to demo', file: 'x', text: '', args: ['demo', '--db', '', '--json', '--speed', '0'], message: "error: option '--db <path>' argument '' is invalid. It is empty" },
    { name: 'an empty --report to sim', file: 'demo.yaml', text: SCENARIO, args: ['sim', 'demo.yaml', '--report', '', '--record', '-'], message: "error: option '--report <file.html>' argument '' is invalid. It is empty" },
    { name: 'a blank --record to sim', file: 'demo.yaml', text: SCENARIO, args: ['sim', 'demo.yaml', '--record', ' '], message: "error: option '--record <file.jsonl>' argument ' ' is invalid. It is empty" },
    { name: 'an empty --junit to a batch', file: 'demo.yaml', text: SCENARIO, args: ['sim', 'demo.yaml', 'demo.yaml', '--junit', ''], message: "error: option '--junit <file.xml>' argument '' is invalid. It is empty" },
    { name: 'an empty --context among others to scan', file: 'k', text: KUBECONFIG, args: ['scan', '--kubeconfig', 'k', '--context', 'x', '--context', ''], message: "error: option '--context <name>' argument '' is invalid. It is empty" },
    { name: 'a misspelt runs subcommand', file: 'x', text: '', args: ['runs', 'shw', 'x'], message: "error: unknown command 'shw'\n(Did you mean show?)" },
    { name: 'an empty file to a command that only reads the database', file: 'e.db', text: '', args: ['audit', 'verify', '--db', 'e.db'], message: 'error: Database e.db is an empty file, not a patchpilot database yet' },
    { name: 'a --db path through a file', file: 'afile', text: '', args: ['demo', '--db', 'afile/x.db'], message: 'error: Cannot open database afile/x.db: ' },
    { name: 'a hexadecimal number in a plan', file: 'p.yaml', text: 'cluster: a\nconcurrency: 0x10\n', args: ['plan', 'check', 'p.yaml'], message: 'error: invalid p.yaml:\n  - line 2, column 14: concurrency: 0x10 is not a decimal number (write 16, or "0x10" in quotes if it is text)\n' },
    { name: 'a multi-document plan', file: 'p.yaml', text: 'cluster: a\n---\ncluster: b\n', args: ['plan', 'check', 'p.yaml'], message: 'error: invalid p.yaml:\n  - line 2, column 1: holds 2 YAML documents (separated by ---); it must be one' },
    // With "--", the options are scenario files too: none exists, and a batch with invalid files exits 2, not 1.
    { name: 'a batch naming files that do not exist', file: 'x', text: '', args: ['sim', '--', 'nope.yaml', '--record', '-'], message: '✗', stdout: true },
  ])('$name', ({ file, text, args, message, ...rest }: { file: string; text: string; args: string[]; message: string; dir?: string; stdout?: boolean }) => {
    const cwd = scratch();
    writeFileSync(join(cwd, file), text);
    if (rest.dir !== undefined) mkdirSync(join(cwd, rest.dir));
    const result = spawnSync(process.execPath, [BIN, ...args], { cwd, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1' } });
    expect(result.status, result.stderr).toBe(2);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+/);
    if (rest.stdout) {
      expect(result.stderr).toBe('error: 3 files are not a valid scenario: nope.yaml, --record, - (the others ran)\n');
      return;
    }
    expect(result.stderr.startsWith(message), result.stderr).toBe(true);
    expect(result.stdout).toBe('');
  });

  it('run --dry-run refuses the notification settings the run itself refuses (it said "nothing was changed", exit 0)', () => {
    const cwd = scratch();
    writeFileSync(join(cwd, 'k'), KUBECONFIG);
    const result = spawnSync(process.execPath, [BIN, 'run', '--kubeconfig', 'k', '--dry-run'], { cwd, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1', PATCHPILOT_WEBHOOK_URL: 'ftp://hooks.example.test/x', PATCHPILOT_WEBHOOK_SECRET: 'a'.repeat(20) } });
    expect(result.status, result.stderr).toBe(2);
    expect(result.stderr).toBe('error: PATCHPILOT_WEBHOOK_URL must be an http(s) URL\nhint: see "Notifications" in the README\n');
  });

  it('a loop of symbolic links as --db: one line, exit 2, for every command', () => {
    const cwd = scratch();
    symlinkSync('l1', join(cwd, 'l2'));
    symlinkSync('l2', join(cwd, 'l1'));
    for (const args of [['demo'], ['runs'], ['dead-letters'], ['audit', 'show']]) {
      const result = spawnSync(process.execPath, [BIN, ...args, '--db', 'l1'], { cwd, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1' } });
      expect(result.status, result.stderr).toBe(2);
      expect(result.stderr).toMatch(/^error: Cannot open database l1: it is a loop of symbolic links \(too many levels of symbolic links\)\nhint: /);
    }
  });
});

describe('repeated keys: refused as before, found in linear time', () => {
  it('names the repeated key and its position, at any depth and in flow style; 1 and "1" differ', () => {
    expect(() => parsePlanText('cluster: a\ncluster: b\n', 'p.yaml')).toThrow(/line 2, column 1: Map keys must be unique \("cluster" appears twice\)/);
    expect(() => parsePlanText('cluster: a\nnodeSelector: {x: "1", y: "2", x: "3"}\n', 'p.yaml')).toThrow(/line 2, column 32: Map keys must be unique \("x" appears twice\)/);
    expect(() => parseScenario('name: x\ncluster:\n  nodes:\n    - { name: a, os: ubuntu-22.04, name: b }\n', 's.yaml')).toThrow(/s\.yaml:4: YAML syntax: Map keys must be unique \("name" appears twice\)/);
    expect(planMessage('nodeSelector: { 1: a, "1": b }')).toBeNull();
  });

  // yaml's own check compared each key with every earlier one: 30,000 keys took 22 s. Linear, it is well under a second
  // of parsing; the test's timeout (not a clock read) is the bound, with room for a loaded machine.
  it('a nodeSelector of 30,000 keys (and one repeated at the end) is answered quickly', { timeout: 15_000 }, () => {
    const keys = Array.from({ length: 30_000 }, (_, i) => `  k${i}: v\n`).join('');
    expect(parsePlanText(`cluster: a\nnodeSelector:\n${keys}`, 'p.yaml').nodeSelector).toHaveProperty('k29999', 'v');
    expect(() => parsePlanText(`cluster: a\nnodeSelector:\n${keys}  k0: w\n`, 'p.yaml')).toThrow(/line 30003, column 3: Map keys must be unique \("k0" appears twice\)/);
  });
});

/**
 * A database another program edited (sqlite3, a script): a JSON column that is not JSON, a time that is not one. The
 * read commands printed a SyntaxError or "RangeError: Invalid time value" with a stack trace, or "took NaNs" with exit
 * 0. Each is refused by the store's one reader of such columns (src/store/columns.ts), naming the table, column and
 * row, exit 2, and the file is left as it was.
 */
describe('a database another program edited: one error naming the row, exit 2, the file unchanged', () => {
  const RUN = 'run-20261206-050000-abc123';
  function database(): { cwd: string; db: string } {
    const cwd = scratch();
    const db = join(cwd, 'pp.db');
    const store = openStore(db);
    const at = Date.parse('2026-12-06T05:00:00Z');
    store.createRun({ id: RUN, cluster: 'prod', hash: 'abc123', plan: { concurrency: 1 }, trigger: { kind: 'manual' }, requestedBy: 'alice', createdAt: at });
    store.commit({
      runId: RUN,
      at: at + 60_000,
      run: { status: 'done', outcome: 'succeeded', queue: ['w-1'], finishedAt: at + 60_000 },
      nodeRuns: [{ node: 'w-1', position: 0, phase: 'done', result: 'patched', errorCode: null, errorMessage: null, report: { upgraded: ['openssl'] }, startedAt: at + 1_000, finishedAt: at + 50_000 }],
      audit: [{ at: at + 60_000, actor: 'patchpilot', action: 'node.step', node: 'w-1', details: { step: 'done' } }],
    });
    store.addDeadLetter({ sink: 'webhook', event: 'run.finished', body: '{"run":"x"}', attempts: 6, lastError: 'HTTP 500', failedAt: at });
    store.close();
    return { cwd, db };
  }
  function tamper(db: string, sql: string): void {
    const raw = new Database(db);
    // The audit table refuses updates by trigger; another program can drop it.
    raw.exec('DROP TRIGGER IF EXISTS audit_no_update');
    raw.exec(sql);
    raw.close();
  }
  const cli = (cwd: string, args: string[]) => spawnSync(process.execPath, [BIN, ...args, '--db', 'pp.db'], { cwd, encoding: 'utf8', timeout: 30_000, env: { PATH: process.env.PATH, HOME: cwd, NO_COLOR: '1' } });

  it.each([
    { sql: "UPDATE runs SET plan_json = '{bad'", args: ['runs'], names: `runs.plan_json of the row where id = '${RUN}' holds "{bad", not valid JSON` },
    { sql: "UPDATE runs SET plan_json = '{bad'", args: ['runs', 'show', RUN], names: `runs.plan_json of the row where id = '${RUN}' holds "{bad", not valid JSON` },
    // 1e400 is Infinity to JSON.parse: unstick died printing it as a date.
    { sql: `UPDATE runs SET trigger_json = '{"id":"on-demand","notBefore":1e400}'`, args: ['runs', 'show', RUN], names: `runs.trigger_json of the row where id = '${RUN}' holds "{\\"id\\":\\"on-demand\\",\\"notBefore\\":1e400}", not a trigger` },
    { sql: `UPDATE runs SET trigger_json = '{"notBefore":"garbage"}'`, args: ['runs'], names: `runs.trigger_json of the row where id = '${RUN}' holds "{\\"notBefore\\":\\"garbage\\"}", not a trigger` },
    { sql: "UPDATE runs SET queue_json = '[1,2'", args: ['runs'], names: `runs.queue_json of the row where id = '${RUN}' holds "[1,2", not valid JSON` },
    { sql: "UPDATE runs SET queue_json = '[1,2]'", args: ['runs'], names: `runs.queue_json of the row where id = '${RUN}' holds "[1,2]", not a JSON list of names` },
    { sql: "UPDATE runs SET created_at = 'yesterday'", args: ['runs'], names: `runs.created_at of the row where id = '${RUN}' holds "yesterday", not a time` },
    { sql: 'UPDATE runs SET created_at = 1e300', args: ['runs', 'show', RUN], names: `runs.created_at of the row where id = '${RUN}' holds 1e+300, not a time` },
    { sql: "UPDATE node_runs SET report_json = '{'", args: ['runs', 'show', RUN], names: `node_runs.report_json of the row where run_id = '${RUN}' AND node = 'w-1' holds "{", not valid JSON` },
    { sql: "UPDATE node_runs SET started_at = 'x'", args: ['runs', 'show', RUN], names: `node_runs.started_at of the row where run_id = '${RUN}' AND node = 'w-1' holds "x", not a time` },
    { sql: "UPDATE audit SET details_json = '{' WHERE seq = 2", args: ['audit', 'show'], names: `audit.details_json of the row where seq = 2 holds "{", not valid JSON` },
    { sql: "UPDATE audit SET at = 'abc' WHERE seq = 2", args: ['audit', 'show'], names: `audit.at of the row where seq = 2 holds "abc", not a time` },
    { sql: "UPDATE dead_letters SET failed_at = 'zz'", args: ['dead-letters'], names: `dead_letters.failed_at of the row where id = 1 holds "zz", not a time` },
    { sql: "UPDATE dead_letters SET failed_at = 'zz'", args: ['dead-letters', '--json'], names: `dead_letters.failed_at of the row where id = 1 holds "zz", not a time` },
    { sql: "UPDATE dead_letters SET body_json = '{'", args: ['dead-letters', '--json'], names: `dead_letters.body_json of the row where id = 1 holds "{", not valid JSON` },
  ])('$sql, then $args', ({ sql, args, names }) => {
    const { cwd, db } = database();
    tamper(db, sql);
    const before = readFileSync(db);
    const result = cli(cwd, args);
    expect(result.status, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+/);
    expect(result.stderr.startsWith(`error: Database pp.db: ${names}`), result.stderr).toBe(true);
    const [message, hint, ...rest] = result.stderr.trimEnd().split('\n');
    expect(message).toContain('another program changed it');
    expect(hint).toMatch(/^hint: Restore the database from a backup, or correct that value; see it with: sqlite3 pp.db "SELECT /);
    expect(rest).toEqual([]);
    expect(readFileSync(db).equals(before), 'a command that only reads left the file as it was').toBe(true);
  });

  it('the untouched database reads as before, and audit verify still checks the chain past a damaged run row', () => {
    const { cwd, db } = database();
    const show = cli(cwd, ['runs', 'show', RUN]);
    expect(show.status, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/w-1 +patched +done +49s/);
    expect(cli(cwd, ['dead-letters']).stdout).toBe('2026-12-06T05:00:00.000Z  run.finished  to webhook: HTTP 500 after 6 attempt(s)\n');
    tamper(db, "UPDATE runs SET plan_json = '{bad'");
    const verify = cli(cwd, ['audit', 'verify']);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/^audit log intact: 2 records/);
  });
});
