/**
 * The blockers' Prometheus path against Debian's real Prometheus (/usr/bin/prometheus), on 127.0.0.1: an alert rule
 * (`for: 0s`) over a gauge this test serves. First the adapter (only firing alerts count, a pending one does not),
 * then a whole run through the engine: it waits in `blocked` naming the alert while it fires, and goes on once
 * Prometheus has resolved it. Prometheus needs several seconds to scrape and evaluate, so this file is in the heavy
 * suite (`npm run test:full`); the adapter's parsing is also covered fast, in-process, in prometheus.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/engine/plan.ts';
import { settle } from '../../src/service/drive.ts';
import { prometheusAlerts, type AlertSource } from '../../src/service/prometheus.ts';
import { harness, workers } from '../helpers/fixtures.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const missing = existsSync(PROMETHEUS) ? null : `${PROMETHEUS} is not installed (apt-get install prometheus; scripts/setup-test-deps.sh)`;
if (missing) console.log(`skipping the real Prometheus tests: ${missing}`);

const scratch = scratchDirs('prometheus');

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Waits (wall clock: a real process does this work) until `probe` answers truthy. */
async function eventually<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const value = await probe();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe.skipIf(missing !== null)('blockers against a real Prometheus', () => {
  let gauge = 1;
  let metrics: Server;
  let prometheus: ChildProcess;
  let url = '';
  let log = '';

  beforeAll(async () => {
    metrics = createServer((req, res) => {
      if (req.url !== '/metrics') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(`# HELP patchpilot_test_blocker Whether the test wants rollouts blocked.\n# TYPE patchpilot_test_blocker gauge\npatchpilot_test_blocker ${gauge}\n`);
    });
    await new Promise<void>((resolve) => metrics.listen(0, '127.0.0.1', resolve));
    const target = `127.0.0.1:${(metrics.address() as { port: number }).port}`;
    const dir = scratch();
    writeFileSync(
      join(dir, 'rules.yml'),
      [
        'groups:',
        '  - name: patchpilot-test',
        '    rules:',
        '      - alert: PatchpilotTestBlocker',
        '        expr: patchpilot_test_blocker > 0',
        '        for: 0s',
        '      - alert: PatchpilotTestPending',
        '        expr: vector(1)',
        '        for: 1h',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'rule_files: [rules.yml]',
        'scrape_configs:',
        `  - { job_name: test, static_configs: [{ targets: ["${target}"] }] }`,
        '',
      ].join('\n'),
    );
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    prometheus = spawn(
      PROMETHEUS,
      [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
      { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    prometheus.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    prometheus.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    await eventually('Prometheus to fire PatchpilotTestBlocker', async () =>
      (await prometheusAlerts.firingAlerts(url, AbortSignal.timeout(5000))).includes('PatchpilotTestBlocker'),
    ).catch((err: Error) => {
      throw new Error(`${err.message}\nprometheus log:\n${log.slice(-2000)}`);
    });
  }, 90_000);

  afterAll(async () => {
    if (prometheus && prometheus.exitCode === null) {
      const exited = new Promise((resolve) => prometheus.once('exit', resolve));
      prometheus.kill('SIGTERM');
      await exited;
    }
    await new Promise((resolve) => metrics?.close(resolve));
  });

  it('lists the firing alerts and leaves out pending ones', async () => {
    const raw = (await (await fetch(`${url}/api/v1/alerts`)).json()) as { data: { alerts: { labels: { alertname: string }; state: string }[] } };
    expect(raw.data.alerts.map((a) => `${a.labels.alertname}:${a.state}`).sort()).toEqual(['PatchpilotTestBlocker:firing', 'PatchpilotTestPending:pending']);
    expect(await prometheusAlerts.firingAlerts(url, AbortSignal.timeout(5000))).toEqual(['PatchpilotTestBlocker']);
  });

  it('a run waits in blocked while the alert fires, naming it, and goes on once Prometheus resolves it', async () => {
    // The clock jumps only when no question to Prometheus is in flight, so virtual time never runs past a real answer.
    let asking = 0;
    const alerts: AlertSource = {
      async firingAlerts(u, signal) {
        asking += 1;
        try {
          return await prometheusAlerts.firingAlerts(u, signal);
        } finally {
          asking -= 1;
        }
      },
    };
    const h = harness(workers(2), { alerts });
    const quiet = async () => {
      do await new Promise((resolve) => setTimeout(resolve, 5));
      while (asking > 0);
      for (let i = 0; i < 5; i++) await settle();
    };
    const plan = parsePlan({ cluster: 'test', blockers: { prometheus: { url, alertFilter: '^PatchpilotTest(Blocker|Other)$' } } });
    const handle = await h.orchestrator.start({ plan, requestedBy: 'alice', triggerId: 't1', notBefore: null });
    let finished = false;
    void handle.result.then(() => (finished = true));
    const driveUntil = async (done: () => boolean, maxJumps = 200) => {
      for (let i = 0; i < maxJumps; i++) {
        await quiet();
        if (done()) return;
        const next = h.clock.nextDueAt();
        if (next === undefined) throw new Error(`stuck in ${handle.state}`);
        h.clock.set(next);
      }
      throw new Error(`still ${handle.state} after ${maxJumps} clock jumps`);
    };

    await driveUntil(() => handle.state === 'rolling.blocked');
    const blocked = h.events.find((e) => e.type === 'run.state' && e.state === 'rolling.blocked');
    expect(blocked?.type === 'run.state' && blocked.detail).toBe('alert(s) firing: PatchpilotTestBlocker');
    // Nothing was cordoned; a few polls later it is still blocked.
    expect(h.cluster.state.nodes.filter((n) => n.unschedulable)).toEqual([]);
    const blockedAt = h.clock.now();
    await driveUntil(() => h.clock.now() >= blockedAt + 90_000);
    expect(handle.state).toMatch(/^rolling\.(blocked|gating)$/);

    gauge = 0;
    await eventually('Prometheus to resolve PatchpilotTestBlocker', async () => !(await prometheusAlerts.firingAlerts(url, AbortSignal.timeout(5000))).includes('PatchpilotTestBlocker'));
    await driveUntil(() => finished);
    const output = await handle.result;
    expect(output).toMatchObject({ outcome: 'succeeded', reason: null });
    expect(output.tally.patched).toBe(2);
  }, 90_000);
});
