/**
 * `patchpilot scan` and `patchpilot status` as a user meets them: the real bin against two sandboxes (kubeconfig
 * contexts `demo` and `repo`) served from this process in sped-up time, plus a context that does not exist. The
 * unknown context gets one clear line, the other clusters are scanned; `--report` renders in headless Chromium.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kubeconfig, startKubeApiServer, type KubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox, type Sandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { colourHistogram, countNear, decodePng } from '../helpers/png.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { runCliAsync, type CliResult } from '../helpers/cli.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) console.warn(`status-cli.test.ts: the report is not opened in a browser: ${CHROMIUM} is not installed (scripts/setup-test-deps.sh)`);
const scratch = scratchDirs('status-cli');

function cli(args: string[], cwd: string): Promise<CliResult> {
  return runCliAsync(args, cwd, { HOME: cwd });
}

interface Served {
  sandbox: Sandbox;
  server: KubeApiServer;
  clock: ScaledClock;
}

const served: Served[] = [];
let dir = '';
let kc = '';

beforeAll(async () => {
  dir = scratch();
  const contexts: { name: string; url: string }[] = [];
  for (const [name, file] of [['demo', 'demo.yaml'], ['repo', 'repo-unreachable.yaml']] as const) {
    // Sped up so that the scan Jobs' simulated minutes pass in a blink; the CLI itself runs on the wall clock.
    const clock = new ScaledClock(600);
    const sandbox = createSandbox(loadScenario(`fixtures/scenarios/${file}`), clock);
    const server = await startKubeApiServer({ store: sandbox.store });
    served.push({ sandbox, server, clock });
    contexts.push({ name, url: server.url });
  }
  const configs = contexts.map((c) => parse(kubeconfig(c.url, undefined, c.name)) as { clusters: unknown[]; users: unknown[]; contexts: unknown[] });
  kc = join(dir, 'kubeconfig.yaml');
  writeFileSync(kc, stringify({ apiVersion: 'v1', kind: 'Config', clusters: configs.flatMap((c) => c.clusters), users: configs.flatMap((c) => c.users), contexts: configs.flatMap((c) => c.contexts), 'current-context': 'demo' }));
});

afterAll(async () => {
  for (const s of served) {
    s.sandbox.binding.close();
    s.clock.clearAll();
    await s.server.close();
  }
});

interface StatusJson {
  clusters: { name: string; compliant: number; total: number; lastScanAt: string | null; error?: string; nodes: { name: string; os: string; kernel: string | null; securityUpdatesPending: number | null; rebootRequired: boolean | null; lastPatchedAt: string | null; cordoned: boolean; compliant: boolean }[] }[];
}

describe('patchpilot scan and status against sandboxes', () => {
  it('status before any scan: every node listed, none compliant, no scan yet', { timeout: 60_000 }, async () => {
    const run = await cli(['status', '--kubeconfig', kc, '--json', '--db', join(dir, 'pp.db')], dir);
    expect(run.code, run.stderr).toBe(0);
    const status = JSON.parse(run.stdout) as StatusJson;
    expect(status.clusters).toHaveLength(1);
    expect(status.clusters[0]).toMatchObject({ name: 'demo', compliant: 0, total: 5, lastScanAt: null });
    expect(status.clusters[0]!.nodes.map((n) => n.name)).toEqual(['cp-1', 'rocky-1', 'rocky-2', 'ubuntu-1', 'ubuntu-2', 'win-1']);
    expect(status.clusters[0]!.nodes.every((n) => n.securityUpdatesPending === null && n.compliant === false)).toBe(true);
  });

  it('scans every context it can, names the one it cannot, exit 1; status and --report read the result', { timeout: 120_000 }, async () => {
    const db = join(dir, 'pp.db');
    const scan = await cli(['scan', '--kubeconfig', kc, '--context', 'demo', '--context', 'repo', '--context', 'nope', '--json', '--db', db], dir);
    expect(scan.code, scan.stderr).toBe(1);
    expect(scan.stderr.trim().split('\n')).toEqual([`error: cluster nope: context "nope" is not in kubeconfig ${kc}`]);
    const result = JSON.parse(scan.stdout) as StatusJson;
    expect(result.clusters.map((c) => c.name)).toEqual(['demo', 'repo', 'nope']);
    const [demo, repo, nope] = result.clusters;
    expect(demo).toMatchObject({ compliant: 0, total: 5 });
    expect(demo!.lastScanAt).not.toBeNull();
    expect(demo!.nodes.find((n) => n.name === 'ubuntu-2')).toMatchObject({ os: 'Ubuntu 24.04.1 LTS', securityUpdatesPending: 3, rebootRequired: false, cordoned: false, compliant: false });
    expect(demo!.nodes.find((n) => n.name === 'win-1')).toMatchObject({ securityUpdatesPending: null, compliant: false });
    expect(repo!.nodes.find((n) => n.name === 'worker-2')).toMatchObject({ securityUpdatesPending: null, compliant: false });
    expect(repo!.nodes.find((n) => n.name === 'worker-1')).toMatchObject({ securityUpdatesPending: 2, compliant: false });
    expect(nope).toMatchObject({ total: 0, compliant: 0, nodes: [] });

    // The scan left its findings on the nodes: the sandbox's API objects carry them.
    const cp1 = served[0]!.sandbox.store.get('nodes', { name: 'cp-1' }).metadata as { annotations: Record<string, string> };
    expect(cp1.annotations['patchpilot.io/security-updates']).toBe('openssl,curl');

    const report = join(dir, 'report.html');
    const status = await cli(['status', '--kubeconfig', kc, '--all-contexts', '--db', db, '--report', report], dir);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^cluster demo: 0 of 5 Linux node\(s\) compliant; oldest unpatched: cp-1 \(never patched\); last scan: \d+s ago/m);
    expect(status.stdout).toMatch(/^cluster repo: 0 of 4 Linux node\(s\) compliant/m);
    expect(status.stdout).toMatch(/^worker-2 .* scan failed .* no: last scan failed$/m);
    const html = readFileSync(report, 'utf8');
    expect(html).toContain('<strong>0 of 5</strong> Linux nodes compliant');
    expect(html.match(/<tr class="bad">/g)?.length).toBe(6 + 4);
    expect(html).toMatch(/<circle class="point"[^>]*><title>[^<]*: 12 pending<\/title>/);

    if (!hasChromium) return;
    const png = join(dir, 'report.png');
    await promisify(execFile)(CHROMIUM, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--force-color-profile=srgb', '--hide-scrollbars', `--user-data-dir=${join(dir, 'profile')}`, `--screenshot=${png}`, '--window-size=1400,1000', pathToFileURL(report).href], { timeout: 60_000 });
    expect(statSync(png).size).toBeGreaterThan(20_000);
    const histogram = colourHistogram(decodePng(readFileSync(png)));
    // The chart's line and points (#0969da) and the red verdicts of the table (#cf222e) were drawn.
    // One scan so far: one point (a 5 px circle, about 78 pixels); an SVG that did not render leaves none.
    expect(countNear(histogram, 0x0969da), 'chart blue pixels').toBeGreaterThan(30);
    expect(countNear(histogram, 0xcf222e), 'verdict red pixels').toBeGreaterThan(100);
  });
});
