/**
 * The whole path against a fresh sandbox: `patchpilot scan --every 1h --metrics-port 0` scans it and serves the fleet
 * metrics; Debian's real Prometheus scrapes them; what Prometheus stores is what the scan found on each node.
 * Heavy (a real scan in wall time plus a Prometheus process): runs in `npm run test:full`.
 * Skips, saying why, where /usr/bin/prometheus is not installed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { scanCommand } from '../../src/cli/status.ts';
import { kubeconfig, startKubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import { until } from '../helpers/until.ts';

const PROMETHEUS = '/usr/bin/prometheus';
const has = existsSync(PROMETHEUS);
const SKIP = `${PROMETHEUS} not installed: run scripts/setup-test-deps.sh`;
if (!has) console.warn(`prometheus-sandbox.full.test.ts skipped: ${SKIP}`);
const scratch = scratchDirs('prom-sandbox');
const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGTERM')));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

describe(has ? 'a sandbox scanned, scraped by a real Prometheus' : `a sandbox scanned, scraped by a real Prometheus (skipped: ${SKIP})`, () => {
  it.skipIf(!has)('stores the pending updates the scan found on every Linux node', { timeout: 180_000 }, async () => {
    const dir = scratch();
    const clock = new ScaledClock(600);
    const sandbox = createSandbox(loadScenario('fixtures/scenarios/demo.yaml'), clock);
    const api = await startKubeApiServer({ store: sandbox.store });
    writeFileSync(join(dir, 'kc.yaml'), kubeconfig(api.url));
    let out = '';
    const sink = new Writable({ write: (chunk: Buffer, _e, done) => ((out += chunk.toString()), done()) });
    let stop: (reason: string) => void = () => {};
    const stopped = new Promise<string>((resolve) => (stop = resolve));
    const scanning = scanCommand({ kubeconfig: join(dir, 'kc.yaml'), db: join(dir, 'pp.db'), every: '1h', metricsPort: 0 }, { out: sink, err: sink, env: {}, stopped });
    try {
      const port = Number((await until('the metrics port', () => /metrics: http:\/\/0\.0\.0\.0:(\d+)\/metrics/.exec(out), { timeoutMs: 60_000 }))[1]);
      await until('the first scan', () => out.includes('next scan at'), { timeoutMs: 120_000, context: () => out });
      const promPort = await freePort();
      writeFileSync(join(dir, 'prom.yml'), stringify({ global: { scrape_interval: '1s' }, scrape_configs: [{ job_name: 'patchpilot', static_configs: [{ targets: [`127.0.0.1:${port}`] }] }] }));
      let log = '';
      const prom = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prom.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(prom);
      prom.stderr?.on('data', (d: Buffer) => (log += d.toString()));
      let result: { metric: Record<string, string>; value: [number, string] }[] = [];
      let busy = false;
      await until(
        'five nodes in Prometheus',
        () => {
          if (!busy) {
            busy = true;
            void fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('patchpilot_node_security_updates_pending')}`)
              .then((r) => r.json() as Promise<{ data: { result: typeof result } }>)
              .then((b) => (result = b.data.result))
              .catch(() => {})
              .finally(() => (busy = false));
          }
          return result.length === 5;
        },
        { timeoutMs: 60_000, context: () => log.slice(-1500), giveUpIf: () => (prom.exitCode !== null ? `prometheus exited ${prom.exitCode}` : undefined) },
      );
      // demo.yaml: openssl and curl everywhere, plus a kernel on the two nodes with a reboot-required fault.
      expect(Object.fromEntries(result.map((s) => [s.metric.node, Number(s.value[1])]))).toEqual({ 'cp-1': 2, 'ubuntu-1': 2, 'ubuntu-2': 3, 'rocky-1': 2, 'rocky-2': 3 });
      expect(new Set(result.map((s) => s.metric.cluster))).toEqual(new Set(['patchpilot-sandbox']));
      prom.kill('SIGTERM');
    } finally {
      stop('test over');
      await scanning;
      sandbox.binding.close();
      clock.clearAll();
      await api.close();
    }
  });
});
