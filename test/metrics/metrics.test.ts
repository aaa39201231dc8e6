/**
 * The metrics registry (src/service/metrics.ts): what run events and fleet statuses become, with prom-client's
 * escaping; the Grafana dashboard only queries metrics we export; the PrometheusRule passes Debian's `promtool`.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { PatchpilotMetrics } from '../../src/service/metrics.ts';
import type { RunEvent } from '../../src/service/progress.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { AT, sampleFleet } from './fleet-fixtures.ts';

const scratch = scratchDirs('metrics');
const PROMTOOL = '/usr/bin/promtool';

function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('PatchpilotMetrics', () => {
  it('exports node gauges from the fleet status, leaving unknown values out', async () => {
    const metrics = new PatchpilotMetrics({ defaultMetrics: false });
    metrics.watchFleet(async () => [sampleFleet('prod')]);
    const text = await metrics.render();
    expect(value(text, 'patchpilot_node_security_updates_pending{cluster="prod",node="n1"}')).toBe(2);
    expect(value(text, 'patchpilot_node_security_updates_pending{cluster="prod",node="n3"}')).toBe(0);
    // n4 was never scanned: no pending count, no reboot value, not compliant.
    expect(value(text, 'patchpilot_node_security_updates_pending{cluster="prod",node="n4"}')).toBeUndefined();
    expect(value(text, 'patchpilot_node_reboot_required{cluster="prod",node="n4"}')).toBeUndefined();
    expect(value(text, 'patchpilot_node_compliant{cluster="prod",node="n4"}')).toBe(0);
    expect(value(text, 'patchpilot_node_reboot_required{cluster="prod",node="n2"}')).toBe(1);
    expect(value(text, 'patchpilot_node_last_patch_timestamp_seconds{cluster="prod",node="n2"}')).toBe(Date.parse('2026-11-30T08:00:00Z') / 1000);
    expect(value(text, 'patchpilot_cluster_compliant_nodes{cluster="prod"}')).toBe(1);
    expect(value(text, 'patchpilot_cluster_nodes{cluster="prod"}')).toBe(4);
  });

  it('keeps the last values when a cluster cannot be read, and counts the error', async () => {
    const metrics = new PatchpilotMetrics({ defaultMetrics: false });
    let fail = false;
    metrics.watchFleet(async () => (fail ? [{ ...sampleFleet('prod'), nodes: [], error: 'connect ECONNREFUSED' }] : [sampleFleet('prod')]));
    await metrics.render();
    fail = true;
    const text = await metrics.render();
    expect(value(text, 'patchpilot_node_security_updates_pending{cluster="prod",node="n1"}')).toBe(2);
    expect(value(text, 'patchpilot_fleet_status_errors_total{cluster="prod"}')).toBe(1);
  });

  it('drops the series of a node that left the cluster', async () => {
    const metrics = new PatchpilotMetrics({ defaultMetrics: false });
    const fleet = sampleFleet('prod');
    metrics.setFleet([fleet]);
    metrics.setFleet([{ ...fleet, nodes: fleet.nodes.filter((n) => n.name !== 'n1') }]);
    const text = await metrics.render();
    expect(text).not.toMatch(/node="n1"/);
    expect(value(text, 'patchpilot_node_compliant{cluster="prod",node="n3"}')).toBe(1);
  });

  it('escapes label values as the exposition format requires', async () => {
    const metrics = new PatchpilotMetrics({ defaultMetrics: false });
    const cluster = 'we"ird\\name\nx';
    metrics.observeRun(cluster, finished('halted'));
    const text = await metrics.render();
    // The hand-written exporter turned these into underscores, merging distinct clusters into one series.
    expect(text).toContain('patchpilot_runs_total{cluster="we\\"ird\\\\name\\nx",outcome="halted"} 1');
    expect(text).toContain('patchpilot_last_run_halted{cluster="we\\"ird\\\\name\\nx"} 1');
  });

  it('counts runs by outcome and observes step durations', async () => {
    const metrics = new PatchpilotMetrics({ defaultMetrics: false });
    metrics.observeRun('c', { type: 'run.state', runId: 'r', state: 'rolling.active', tags: ['rolling'], from: 'selecting', at: AT, restored: false, detail: null });
    expect(value(await metrics.render(), 'patchpilot_run_active{cluster="c"}')).toBe(1);
    metrics.observeRun('c', {
      type: 'node.finished',
      runId: 'r',
      position: 0,
      at: AT,
      outcome: { node: 'n1', result: 'patched', error: null, note: null, report: null, rebooted: false, rebootPending: false, cordonedAtEnd: false, phases: { drain: 12_000, patch: 95_000 }, startedAt: AT, finishedAt: AT },
    });
    metrics.observeRun('c', finished('succeeded'));
    metrics.observeRun('c', finished('succeeded'));
    const text = await metrics.render();
    expect(value(text, 'patchpilot_runs_total{cluster="c",outcome="succeeded"}')).toBe(2);
    expect(value(text, 'patchpilot_run_active{cluster="c"}')).toBe(0);
    expect(value(text, 'patchpilot_node_step_duration_seconds_bucket{le="15",step="drain"}')).toBe(1);
    expect(value(text, 'patchpilot_node_step_duration_seconds_bucket{le="60",step="patch"}')).toBe(0);
    expect(value(text, 'patchpilot_node_step_duration_seconds_sum{step="patch"}')).toBe(95);
    expect(value(text, 'patchpilot_nodes_finished_total{cluster="c",result="patched"}')).toBe(1);
  });
});

function finished(outcome: 'halted' | 'succeeded'): RunEvent {
  return {
    type: 'run.finished',
    runId: 'r',
    at: AT,
    output: { runId: 'r', outcome, reason: null, selected: [], excludedCount: 0, notStarted: [], failedNodes: [], tally: { patched: 0, 'no-updates': 0, failed: 0, skipped: 0 } as never, startedAt: AT, finishedAt: AT },
  };
}

describe('deploy/monitoring', () => {
  it('the Grafana dashboard parses and queries only metrics patchpilot exports', async () => {
    const dashboard = JSON.parse(readFileSync('deploy/monitoring/grafana-dashboard.json', 'utf8')) as { panels: { targets: { expr: string }[] }[]; templating: { list: { query?: unknown }[] } };
    const exprs = [...dashboard.panels.flatMap((p) => p.targets.map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.query).filter((q): q is string => typeof q === 'string')];
    const used = new Set(exprs.flatMap((e) => e.match(/patchpilot_[a-z_]+/g) ?? []).map((m) => m.replace(/_(bucket|sum|count)$/, '')));
    const exported = new Set((await new PatchpilotMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    expect(used.size).toBeGreaterThanOrEqual(8);
    for (const name of used) expect(exported, `${name} is queried by the dashboard`).toContain(name);
  });

  it('the PrometheusRule alerts on exported metrics only', async () => {
    const rule = parseYaml(readFileSync('deploy/monitoring/prometheusrule.yaml', 'utf8')) as { kind: string; spec: { groups: { rules: { alert: string; expr: string }[] }[] } };
    expect(rule.kind).toBe('PrometheusRule');
    const rules = rule.spec.groups.flatMap((g) => g.rules);
    expect(rules.map((r) => r.alert)).toEqual(expect.arrayContaining(['PatchpilotNodeBehindOnSecurityUpdates', 'PatchpilotNodeRebootPending', 'PatchpilotRunHalted']));
    const exported = new Set((await new PatchpilotMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name));
    for (const r of rules) for (const name of r.expr.match(/patchpilot_[a-z_]+/g) ?? []) expect(exported).toContain(name);
  });

  it.skipIf(!existsSync(PROMTOOL))(`passes promtool check rules${existsSync(PROMTOOL) ? '' : ` (skipped: ${PROMTOOL} not installed: run scripts/setup-test-deps.sh)`}`, async () => {
    const rule = parseYaml(readFileSync('deploy/monitoring/prometheusrule.yaml', 'utf8')) as { spec: unknown };
    const file = join(scratch(), 'rules.yaml');
    writeFileSync(file, stringifyYaml(rule.spec));
    const { stdout } = await promisify(execFile)(PROMTOOL, ['check', 'rules', file]);
    expect(stdout).toMatch(/SUCCESS: 5 rules found/);
    // And promtool does reject a broken rule, so the check above means something.
    writeFileSync(file, stringifyYaml({ groups: [{ name: 'x', rules: [{ alert: 'A', expr: 'patchpilot_runs_total >' }] }] }));
    await expect(promisify(execFile)(PROMTOOL, ['check', 'rules', file])).rejects.toThrow(/parse error|FAILED/);
  });
});
if (!existsSync(PROMTOOL)) console.warn(`metrics.test.ts: promtool check skipped: ${PROMTOOL} not installed (scripts/setup-test-deps.sh)`);
