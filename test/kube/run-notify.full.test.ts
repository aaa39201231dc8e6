/**
 * `patchpilot run` with notifications and metrics, against a sandbox served from this process: a webhook receiver on
 * loopback verifies every signature and is down for its first requests; the run's started, node-failed and finished
 * notifications all arrive, once each; /metrics answers while the run lasts. Heavy (a whole run on the wall clock):
 * `npm run test:full`.
 */
import { spawn } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { kubeconfig, startKubeApiServer } from '../../src/sim/kube-api/index.ts';
import { createSandbox } from '../../src/sim/sandbox/index.ts';
import { ScaledClock } from '../../src/sim/scaled-clock.ts';
import { loadScenario } from '../../src/sim/scenario.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
const SECRET = 'whsec-full-5c2e9a71d4b3';
const scratch = scratchDirs('run-notify');
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('patchpilot run notifies and serves metrics', () => {
  it('delivers run.started, node.failed and run.finished through an outage, signed', { timeout: 240_000 }, async () => {
    const dir = scratch();
    const scenario = loadScenario('fixtures/scenarios/repo-unreachable.yaml');
    const clock = new ScaledClock(60);
    const sandbox = createSandbox(scenario, clock);
    const api = await startKubeApiServer({ store: sandbox.store });
    cleanups.push(async () => {
      sandbox.binding.close();
      clock.clearAll();
      await api.close();
    });
    writeFileSync(join(dir, 'kc.yaml'), kubeconfig(api.url));
    writeFileSync(join(dir, 'plan.yaml'), stringify({ ...scenario.planInput, cluster: 'notify-test' }));

    let attempts = 0;
    const received: { event: string; delivery: string; verified: boolean; body: { details: Record<string, unknown> } }[] = [];
    const rx = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        attempts += 1;
        if (attempts <= 2) return void res.writeHead(503).end('down for maintenance');
        const given = Buffer.from(String(req.headers['x-patchpilot-signature']));
        const expected = Buffer.from(`sha256=${createHmac('sha256', SECRET).update(`${String(req.headers['x-patchpilot-timestamp'])}.${raw}`).digest('hex')}`);
        received.push({ event: String(req.headers['x-patchpilot-event']), delivery: String(req.headers['x-patchpilot-delivery']), verified: given.length === expected.length && timingSafeEqual(given, expected), body: JSON.parse(raw) as { details: Record<string, unknown> } });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => rx.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => rx.close(() => r())));
    const address = rx.address();
    const hook = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;

    let stdout = '';
    let stderr = '';
    let scraped = '';
    const child = spawn(process.execPath, [BIN, 'run', '--kubeconfig', join(dir, 'kc.yaml'), '--plan', join(dir, 'plan.yaml'), '--db', join(dir, 'pp.db'), '--metrics-port', '0', '--trigger', 'notify-1'], {
      cwd: dir,
      env: { PATH: process.env.PATH, HOME: dir, NO_COLOR: '1', PATCHPILOT_WEBHOOK_URL: hook, PATCHPILOT_WEBHOOK_SECRET: SECRET },
    });
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const port = /metrics: http:\/\/0\.0\.0\.0:(\d+)\/metrics/.exec(stdout)?.[1];
      if (port && !scraped) void fetch(`http://127.0.0.1:${port}/metrics`).then((r) => r.text()).then((t) => (scraped = t)).catch(() => {});
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code, `${stdout}\n${stderr}`).toBe(1);
    // Retries can reorder deliveries (the receiver dedupes and orders by the body's `at`): each arrives exactly once.
    expect(received.map((r) => r.event).sort()).toEqual(['node.failed', 'run.finished', 'run.started']);
    expect(new Set(received.map((r) => r.delivery)).size).toBe(3);
    expect(received.every((r) => r.verified)).toBe(true);
    const byEvent = new Map(received.map((r) => [r.event, r.body]));
    expect(byEvent.get('node.failed')!.details).toMatchObject({ node: 'worker-2', error: { code: 'REPO_UNREACHABLE' } });
    expect(byEvent.get('run.finished')!.details).toMatchObject({ outcome: 'partial' });
    expect(attempts).toBe(5);
    // The retries of the first notification are logged, without the secret.
    expect(stderr).toMatch(/notify: (run\.started|node\.failed) to webhook http:\/\/127\.0\.0\.1:\d+: attempt 1 failed \(HTTP 503\)/);
    expect(stderr + stdout).not.toContain(SECRET);
    expect(scraped).toMatch(/^patchpilot_cluster_nodes\{cluster="notify-test"\} 4$/m);
  });
});
