/**
 * A real Prometheus (Debian's package) scrapes patchpilot's /metrics on loopback, with deploy/monitoring's rules
 * loaded: the node gauges arrive with their labels, and PatchpilotRunHalted fires after a halted run.
 * Skips, saying why, where /usr/bin/prometheus is not installed (scripts/setup-test-deps.sh installs it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { PatchpilotMetrics, serveMetrics } from '../../src/service/metrics.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { until } from '../helpers/until.ts';
import { sampleFleet } from './fleet-fixtures.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const has = existsSync(PROMETHEUS);
const SKIP = `${PROMETHEUS} not installed: run scripts/setup-test-deps.sh`;
if (!has) console.warn(`prometheus.test.ts skipped: ${SKIP}`);
const scratch = scratchDirs('prometheus');

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGTERM')));

describe(has ? 'scraped by a real Prometheus' : `scraped by a real Prometheus (skipped: ${SKIP})`, () => {
  it.skipIf(!has)('sees the node gauges and fires the run-halted alert', { timeout: 90_000 }, async () => {
    const metrics = new PatchpilotMetrics();
    metrics.watchFleet(async () => [sampleFleet('prod')]);
    metrics.observeRun('prod', {
      type: 'run.finished',
      runId: 'r1',
      at: 0,
      output: { runId: 'r1', outcome: 'halted', reason: 'error budget spent', selected: [], excludedCount: 0, notStarted: [], failedNodes: [], tally: {} as never, startedAt: 0, finishedAt: 1000 },
    });
    const served = await serveMetrics(metrics, 0, '127.0.0.1');
    try {
      const dir = scratch();
      const rule = parseYaml(readFileSync('deploy/monitoring/prometheusrule.yaml', 'utf8')) as { spec: unknown };
      writeFileSync(join(dir, 'rules.yaml'), stringifyYaml(rule.spec));
      writeFileSync(
        join(dir, 'prom.yml'),
        stringifyYaml({
          global: { scrape_interval: '1s', evaluation_interval: '1s' },
          rule_files: [join(dir, 'rules.yaml')],
          scrape_configs: [{ job_name: 'patchpilot', static_configs: [{ targets: [`127.0.0.1:${served.port}`] }] }],
        }),
      );
      const port = await freePort();
      let output = '';
      const prom = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prom.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(prom);
      prom.stdout?.on('data', (d: Buffer) => (output += d.toString()));
      prom.stderr?.on('data', (d: Buffer) => (output += d.toString()));
      const api = `http://127.0.0.1:${port}/api/v1`;
      const query = async (q: string) => {
        try {
          const body = (await (await fetch(`${api}/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
          return body.data.result;
        } catch {
          return [];
        }
      };
      let pending: Awaited<ReturnType<typeof query>> = [];
      const context = () => output.slice(-2000);
      const giveUpIf = () => (prom.exitCode !== null ? `prometheus exited with ${prom.exitCode}` : undefined);
      const poll = async <T>(what: string, probe: () => Promise<T | undefined>) => {
        let last: T | undefined;
        let busy = false;
        return until(what, () => {
          if (!busy) {
            busy = true;
            // Refused connections while Prometheus starts are expected: the next poll asks again.
            void probe().then(
              (v) => ((last = v), (busy = false)),
              () => (busy = false),
            );
          }
          return last;
        }, { timeoutMs: 60_000, context, giveUpIf });
      };
      pending = await poll('the pending-updates series', async () => {
        const r = await query('patchpilot_node_security_updates_pending{cluster="prod"}');
        return r.length === 3 ? r : undefined;
      });
      expect(Object.fromEntries(pending.map((s) => [s.metric.node, Number(s.value[1])]))).toEqual({ n1: 2, n2: 0, n3: 0 });
      expect(pending[0]?.metric.job).toBe('patchpilot');
      const compliant = await query('patchpilot_cluster_compliant_nodes{cluster="prod"} / patchpilot_cluster_nodes{cluster="prod"}');
      expect(Number(compliant[0]?.value[1])).toBe(0.25);
      const alert = await poll('PatchpilotRunHalted firing', async () => {
        const body = (await (await fetch(`${api}/alerts`)).json().catch(() => null)) as { data?: { alerts: { labels: Record<string, string>; state: string }[] } } | null;
        return body?.data?.alerts.find((a) => a.labels.alertname === 'PatchpilotRunHalted' && a.state === 'firing');
      });
      expect(alert.labels.cluster).toBe('prod');
      prom.kill('SIGTERM');
    } finally {
      await served.close();
    }
  });
});
