/**
 * The audit head anchored outside the database: a real `patchpilot run` against `patchpilot sandbox` (each its own
 * process) leaves its head in the cluster's ConfigMap; then the database is tampered with in the three ways a hash
 * chain alone cannot show, and `audit verify` is asked without and with the anchor.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scratchDirs } from '../helpers/scratch.ts';
import { until } from '../helpers/until.ts';
import { appendRow, rechain, truncateNewest } from '../helpers/audit-tamper.ts';

const BIN = resolve(import.meta.dirname, '../../bin/patchpilot.js');
const scratch = scratchDirs('anchor');
const env = { ...process.env, NO_COLOR: '1' };
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env, timeout: 120_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

describe('audit verify against the anchor a run leaves in the cluster', () => {
  let dir: string;
  let kubeconfig: string;
  let sandbox: ReturnType<typeof spawn>;
  let db: string;

  beforeAll(async () => {
    dir = scratch();
    const scenario = join(dir, 'small.yaml');
    writeFileSync(
      scenario,
      ['name: small', 'seed: 3', 'cluster:', '  nodes:', '    - { name: cp-1, os: ubuntu-22.04, role: control-plane }', '    - { name: worker-1, os: ubuntu-22.04 }', 'updates: { security: [openssl] }', ''].join('\n'),
    );
    kubeconfig = join(dir, 'small.kubeconfig');
    sandbox = spawn(process.execPath, [BIN, 'sandbox', '--scenario', scenario, '--kubeconfig', kubeconfig, '--speed', '300', '--quiet'], { env, stdio: 'ignore' });
    await until('the sandbox', () => existsSync(kubeconfig), { timeoutMs: 60_000 });
    db = join(dir, 'run.db');
    const run = cli('run', '--kubeconfig', kubeconfig, '--plan', kubeconfig.replace(/\.kubeconfig$/, '.plan.yaml'), '--db', db);
    expect(run.code, run.out).toBe(0);
  }, 180_000);

  afterAll(() => {
    sandbox?.kill('SIGTERM');
  });

  it('finds the untouched log intact, and says which anchor it checked', () => {
    const bare = cli('audit', 'verify', '--db', db);
    expect(bare.code, bare.out).toBe(0);
    expect(bare.out).toContain('no anchor checked');
    const anchored = cli('audit', 'verify', '--db', db, '--kubeconfig', kubeconfig);
    expect(anchored.code, anchored.out).toBe(0);
    expect(anchored.out).toMatch(/anchors checked \(1\):\n {2}ok {2}ConfigMap os-patch\/patchpilot-audit-small \(cluster small, database [0-9a-f]{16}\): #\d+ matches/);
  });

  it.each([
    { tampering: 'the newest records deleted and the head moved back', tamper: truncateNewest, found: /its newest 2 record\(s\) were removed/ },
    { tampering: 'a correctly chained record appended and the head moved forward', tamper: appendRow, found: /1 record\(s\) after it were never anchored/ },
    { tampering: 'a record edited and every later hash recomputed', tamper: rechain, found: /has another hash than the anchor .* recorded: the log was rewritten/ },
  ])('$tampering: "intact" by the chain alone, TAMPERED against the anchor', ({ tamper, found }) => {
    const copy = join(scratch(), 'tampered.db');
    copyFileSync(db, copy);
    const raw = new Database(copy);
    tamper(raw);
    raw.close();
    const bare = cli('audit', 'verify', '--db', copy);
    expect(bare.code, bare.out).toBe(0);
    expect(bare.out).toMatch(/^audit log intact/);
    const anchored = cli('audit', 'verify', '--db', copy, '--kubeconfig', kubeconfig);
    expect(anchored.code, anchored.out).toBe(1);
    expect(anchored.out).toMatch(/^audit log TAMPERED/);
    expect(anchored.out).toMatch(found);
  });

  it('checks a head copied from the Slack thread the same way (--anchor)', () => {
    const head = new Database(db, { readonly: true }).prepare('SELECT seq, hash FROM audit_head').get() as { seq: number; hash: string };
    const ok = cli('audit', 'verify', '--db', db, '--anchor', `${head.seq}:${head.hash}`);
    expect(ok.code, ok.out).toBe(0);
    expect(ok.out).toContain(`ok  --anchor: #${head.seq} matches`);
    const wrong = cli('audit', 'verify', '--db', db, '--anchor', `${head.seq + 3}:${head.hash}`);
    expect(wrong.code).toBe(1);
    const bad = cli('audit', 'verify', '--db', db, '--anchor', 'yesterday');
    expect(bad.code).toBe(2);
    expect(bad.out).toContain('--anchor must be SEQ:HASH');
  });
});
