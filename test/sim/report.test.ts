/**
 * The `sim --report` page, from a real simulated run: one chart row per node that ran, phase bars, fault markers,
 * failed nodes marked with their error code, everything escaped, nothing fetched from elsewhere.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { formatDuration, MAX_CHART_ROWS, MAX_TABLE_ROWS, niceTicks, renderReport } from '../../src/sim/report.ts';
import type { SimNodeResult, SimResult } from '../../src/sim/runner.ts';
import { runScenario } from '../../src/sim/runner.ts';
import { parseScenario, type Scenario } from '../../src/sim/scenario.ts';

const YAML = `
name: report-keyserver
description: 'The keyserver is unreachable from worker-2 <script>alert("x")</script> & nothing else breaks.'
seed: 11
cluster:
  nodes:
    - { name: cp-1, os: ubuntu-22.04, role: control-plane }
    - { name: worker, os: ubuntu-22.04, count: 3 }
    - { name: win-1, os: windows-2022 }
updates: { security: [openssl, linux-image], other: [vim] }
plan: { agent: legacy, rebootIfRequired: true, concurrency: 1, maxFailures: 1 }
faults:
  - { node: worker-2, kind: keyserver-unreachable }
expect:
  outcome: partial
  failed: { worker-2: KEYSERVER_UNREACHABLE }
  notSelected: [win-1]
`;

let scenario: Scenario;
let result: SimResult;
let html: string;

beforeAll(async () => {
  scenario = parseScenario(YAML, 'report.test.ts');
  result = await runScenario(scenario);
  html = renderReport(result, scenario);
});

/** The markup of one node's chart row, or undefined if the chart has none. */
function chartRow(page: string, node: string): string | undefined {
  const at = page.indexOf(`data-node="${node}">`);
  if (at < 0) return undefined;
  const start = page.lastIndexOf('<g class="row', at);
  return page.slice(start, page.indexOf('</g>\n', start));
}

function chartRowCount(page: string): number {
  return page.match(/<g class="row[^"]*" data-node=/g)?.length ?? 0;
}

describe('renderReport', () => {
  it('is built from a run that did what the scenario says', () => {
    expect(result.failedExpectations).toEqual([]);
    expect(result.runs).toHaveLength(1);
  });

  it('heads the page with the scenario name, seed, verdict and the escaped description', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<h1>report-keyserver <span class="badge ok">OK</span></h1>');
    expect(html).toContain('seed <b>11</b>');
    expect(html).toContain('worker-2 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; nothing else breaks.');
    expect(html).not.toContain('<script');
  });

  it('draws one chart row per node with a timeline, and none for nodes that never ran', () => {
    const run = result.runs[0]!;
    const withTimeline = run.nodes.filter((n) => n.timeline.length > 0).map((n) => n.name);
    expect(withTimeline.sort()).toEqual(['cp-1', 'worker-1', 'worker-2', 'worker-3']);
    expect(chartRowCount(html)).toBe(withTimeline.length);
    for (const name of withTimeline) expect(chartRow(html, name), name).toBeDefined();
    // win-1 was not selected: a table row, no chart row.
    expect(run.nodes.find((n) => n.name === 'win-1')?.result).toBe('not-selected');
    expect(chartRow(html, 'win-1')).toBeUndefined();
    expect(html).toMatch(/<td class="name">win-1<\/td>.*<td class="result r-not-selected">not-selected<\/td>/);
  });

  it('draws drain and patch bars, coloured by phase, for every node that got that far', () => {
    for (const name of ['cp-1', 'worker-1', 'worker-2', 'worker-3']) {
      const row = chartRow(html, name)!;
      expect(row, name).toMatch(/<rect class="bar s-drain" data-step="drain" x="[\d.]+" y="[\d.]+" width="[\d.]+"/);
      expect(row, name).toMatch(/<rect class="bar s-patch" data-step="patch"/);
    }
    // Drain and patch take tens of seconds of a run of minutes: visible bars, not slivers.
    const width = (row: string, step: string) => Number(row.match(new RegExp(`data-step="${step}" x="[\\d.]+" y="[\\d.]+" width="([\\d.]+)"`))?.[1]);
    for (const name of ['cp-1', 'worker-1', 'worker-3']) {
      expect(width(chartRow(html, name)!, 'drain'), `${name} drain`).toBeGreaterThan(5);
      expect(width(chartRow(html, name)!, 'patch'), `${name} patch`).toBeGreaterThan(5);
    }
    expect(chartRow(html, 'cp-1')).toContain('data-step="reboot"');
    // The tiny bookkeeping steps share the neutral colour.
    expect(chartRow(html, 'cp-1')).toMatch(/<rect class="bar s-other" data-step="preflight"/);
    expect(html).toContain('<span class="swatch s-patch"></span>patch');
  });

  it('marks the fault on the faulty node\'s row, with its kind', () => {
    const run = result.runs[0]!;
    expect(run.faults).toEqual([expect.objectContaining({ kind: 'keyserver-unreachable', node: 'worker-2' })]);
    const row = chartRow(html, 'worker-2')!;
    expect(row).toContain('<g class="fault" data-kind="keyserver-unreachable"><title>fault: keyserver-unreachable (worker-2) at');
    expect(chartRow(html, 'worker-1')).not.toContain('class="fault"');
    expect(html).toContain('<b>keyserver-unreachable</b> on worker-2 at');
  });

  it('marks the failed node in the chart and the table with its error code', () => {
    const row = chartRow(html, 'worker-2')!;
    expect(row.startsWith('<g class="row failed" data-node="worker-2">')).toBe(true);
    expect(row).toContain('✗ KEYSERVER_UNREACHABLE');
    expect(html).toMatch(/<tr class="failed"><td class="name">worker-2<\/td>.*<b>KEYSERVER_UNREACHABLE<\/b>/);
    expect(html).toContain('gpg: keyserver receive failed: End of file');
    for (const name of ['cp-1', 'worker-1', 'worker-3']) expect(chartRow(html, name)!.startsWith('<g class="row" ')).toBe(true);
  });

  it('summarises the run: outcome, makespan against the lower bound, and the invariants', () => {
    const run = result.runs[0]!;
    expect(html).toContain('<span class="badge outcome-partial">partial</span>');
    expect(html).toContain(`<dt>makespan</dt><dd>${run.makespanSeconds}s (${formatDuration(run.makespanSeconds)})</dd>`);
    expect(html).toContain(`makespan / lower bound <b>${(run.makespanSeconds / run.lowerBoundSeconds).toFixed(2)}×</b>`);
    expect(run.invariants.length).toBeGreaterThan(0);
    for (const inv of run.invariants) expect(html).toContain(`<td class="name">${inv.name}</td>`);
    expect(html).toContain('<td class="mark">✓</td>');
  });

  it('references nothing outside the page', () => {
    expect(html).not.toMatch(/src\s*=\s*["']?\s*(https?:)?\/\//i);
    expect(html).not.toMatch(/href\s*=/i);
    expect(html).not.toContain('<link');
    expect(html).not.toContain('@import');
    // url(...) only points into the page itself (the hatch pattern).
    for (const m of html.matchAll(/url\(([^)]*)\)/g)) expect(m[1]).toMatch(/^#/);
    expect(html.length).toBeLessThan(40_000);
  });

  it('shows failed expectations prominently', () => {
    const failing: SimResult = { ...result, ok: false, failedExpectations: ['run 1: expected worker-1 to fail with <X>, it was patched'] };
    const page = renderReport(failing, scenario);
    expect(page).toContain('<span class="badge bad">FAILED</span>');
    expect(page).toContain('<h2>1 expectation failed</h2>');
    expect(page).toContain('expected worker-1 to fail with &lt;X&gt;, it was patched');
    expect(page.indexOf('failed-expectations')).toBeLessThan(page.indexOf('<section class="run"'));
    expect(html).not.toContain('<section class="failed-expectations"');
  });

  it('escapes node names, error messages and step names wherever they appear', () => {
    const run = result.runs[0]!;
    const evil = (n: SimNodeResult): SimNodeResult => ({
      ...n,
      name: `${n.name}"><img src=x onerror=alert(1)>`,
      errorMessage: n.errorMessage && `${n.errorMessage} </td><script>`,
      timeline: n.timeline.map((t) => ({ ...t, step: `${t.step}<i>` })),
    });
    const page = renderReport({ ...result, runs: [{ ...run, nodes: run.nodes.map(evil), faults: run.faults.map((f) => ({ ...f, kind: '<b>k</b>', node: f.node && `${f.node}"><img src=x onerror=alert(1)>` })) }] }, scenario);
    expect(page).not.toContain('<img');
    expect(page).not.toContain('<script');
    expect(page).not.toContain('<i>');
    expect(page).not.toContain('<b>k</b>');
    expect(page).toContain('worker-2&quot;&gt;&lt;img src=x onerror=alert(1)&gt;');
    // The chart still found the fault's row through the (unescaped) names.
    expect(page).toContain('data-kind="&lt;b&gt;k&lt;/b&gt;"');
  });

  it('caps the chart and the table for large clusters, and says how many were left out', () => {
    const run = result.runs[0]!;
    const base = run.nodes.filter((n) => n.result === 'patched');
    const failed = run.nodes.find((n) => n.result === 'failed')!;
    const many: SimNodeResult[] = [];
    for (let i = 0; i < 600; i++) {
      const template = base[i % base.length]!;
      const shift = Math.floor(i / base.length) * 10;
      many.push({ ...template, name: `node-${i}`, timeline: template.timeline.map((t) => ({ ...t, start: t.start + shift, end: t.end + shift })) });
    }
    // A failed node late in the cluster: the table must keep it even though it is past the cap.
    many.push({ ...failed, name: 'node-late-failure', timeline: failed.timeline.map((t) => ({ ...t, start: t.start + 9000, end: t.end + 9000 })) });
    const page = renderReport({ ...result, runs: [{ ...run, nodes: many, faults: [] }] }, scenario);
    expect(chartRowCount(page)).toBe(MAX_CHART_ROWS);
    expect(page).toContain(`Showing the first ${MAX_CHART_ROWS} nodes by start time; ${many.length - MAX_CHART_ROWS} more not drawn, 1 of them failed (see the table).`);
    expect(page.match(/<tr class="[^"]*"><td class="name">/g)).toHaveLength(MAX_TABLE_ROWS);
    expect(page).toContain('<td class="name">node-late-failure</td>');
    expect(page).toContain(`Showing ${MAX_TABLE_ROWS} of ${many.length} nodes`);
  });

  it('renders a run that never started without a chart', () => {
    const notTriggered: SimResult = {
      ...result,
      runs: [{ ...result.runs[0]!, outcome: 'not-triggered', reason: 'a patch is already scheduled', runId: null, nodes: [], invariants: [], faults: [], startedAt: null }],
    };
    const page = renderReport(notTriggered, scenario);
    expect(page).toContain('outcome-not-triggered');
    expect(page).toContain('<dt>reason</dt><dd>a patch is already scheduled</dd>');
    expect(page).toContain('No node took part in this run.');
    expect(page).not.toContain('<svg class="timeline"');
  });
});

describe('time labels', () => {
  it('formats durations the short way', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(45)).toBe('45s');
    expect(formatDuration(300)).toBe('5m');
    expect(formatDuration(330)).toBe('5m30s');
    expect(formatDuration(5400)).toBe('1h30m');
    expect(formatDuration(86_400 + 3 * 3600)).toBe('1d3h');
    expect(formatDuration(2.54)).toBe('2.5s');
  });

  it('picks round tick steps that fit', () => {
    expect(niceTicks(0, 561, 10)).toEqual([0, 60, 120, 180, 240, 300, 360, 420, 480, 540]);
    expect(niceTicks(0, 5503, 8).map(formatDuration)).toEqual(['0s', '15m', '30m', '45m', '1h', '1h15m', '1h30m']);
    expect(niceTicks(86_400, 86_998, 8).map(formatDuration)).toEqual(['1d', '1d2m', '1d4m', '1d6m', '1d8m']);
  });
});
