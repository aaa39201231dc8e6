/**
 * The audit head anchored outside the database, in process (the same with real processes and a sandbox is
 * anchor.full.test.ts): a run leaves its head in the cluster, and verify tells the three tamperings a hash chain
 * alone cannot show only when it has that anchor.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { verifyAudit } from '../../src/cli/history.ts';
import { openStore } from '../../src/store/index.ts';
import { appendRow, rechain, truncateNewest } from '../helpers/audit-tamper.ts';
import { harness, runPlan, workers } from '../helpers/fixtures.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('anchor');

describe('the audit anchor a run keeps in the cluster', () => {
  it('follows the run to its last record, and is what tells truncation, appending and re-chaining apart from an intact log', async () => {
    const dir = scratch();
    const path = join(dir, 'pp.db');
    const store = openStore(path);
    const h = harness(workers(3), { store });
    await runPlan(h, {});
    const storeId = store.storeId();
    const anchor = await h.cluster.readAuditAnchor(storeId);
    expect(anchor).toMatchObject(store.auditHead());
    const source = { ...anchor!, source: 'the cluster' };
    expect(verifyAudit(store, [source])).toMatchObject({ ok: true, text: expect.stringContaining('ok  the cluster: #') });
    store.close();

    for (const [name, tamper, found] of [
      ['truncated', truncateNewest, /its newest 2 record\(s\) were removed/],
      ['appended', appendRow, /1 record\(s\) after it were never anchored/],
      ['re-chained', rechain, /the log was rewritten \(re-chained\)/],
    ] as const) {
      const copy = join(dir, `${name}.db`);
      copyFileSync(path, copy);
      const raw = new Database(copy);
      tamper(raw);
      raw.close();
      const tampered = openStore(copy);
      try {
        const bare = verifyAudit(tampered);
        expect(bare.ok, `${name} without anchor`).toBe(true);
        expect(bare.text).toContain('no anchor checked');
        const anchored = verifyAudit(tampered, [source]);
        expect(anchored.ok, `${name} with anchor`).toBe(false);
        expect(anchored.text).toMatch(found);
      } finally {
        tampered.close();
      }
    }
  });
});

/**
 * `audit verify --kubeconfig` with the API server down exited 0, "audit log intact", with "not checked: ... fetch
 * failed" and the hint to pass --kubeconfig, which was passed. The check asked for was not made: one error, exit 2
 * (README: an API server that cannot be reached is bad input), and the hint never names an option already given.
 */
describe('audit verify --kubeconfig when the anchor cannot be read', () => {
  const BIN = join(import.meta.dirname, '../../bin/patchpilot.js');
  async function closedPort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }
  function database(dir: string): string {
    const path = join(dir, 'pp.db');
    const store = openStore(path);
    store.createRun({ id: 'run-1', cluster: 'prod', hash: 'abc', plan: {}, trigger: {}, requestedBy: 'alice', createdAt: 1_000 });
    store.close();
    return path;
  }
  const kubeconfig = (server: string) =>
    `apiVersion: v1\nkind: Config\nclusters: [{ name: c, cluster: { server: "${server}", insecure-skip-tls-verify: true } }]\nusers: [{ name: u, user: { token: abc } }]\ncontexts: [{ name: x, context: { cluster: c, user: u } }]\ncurrent-context: x\n`;

  it.each([
    { name: 'nothing listens on its port', server: async () => `https://127.0.0.1:${await closedPort()}`, why: /cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/ },
    { name: 'a port HTTP clients refuse', server: async () => 'https://127.0.0.1:1', why: /cannot reach the Kubernetes API server at https:\/\/127\.0\.0\.1:1: the address uses a port that HTTP clients refuse/ },
  ])('$name: one error naming the cluster and the server, exit 2', async ({ server, why }) => {
    const dir = scratch();
    const db = database(dir);
    const kc = join(dir, 'k.yaml');
    writeFileSync(kc, kubeconfig(await server()));
    const result = spawnSync(process.execPath, [BIN, 'audit', 'verify', '--db', db, '--kubeconfig', kc], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH, HOME: dir, NO_COLOR: '1' } });
    expect(result.status, result.stdout + result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    const [message, hint, ...rest] = result.stderr.trimEnd().split('\n');
    expect(message).toMatch(/^error: audit verify --kubeconfig .*k\.yaml: cannot read the audit anchor: ConfigMap os-patch\/patchpilot-audit-prod \(cluster prod, database [0-9a-f]{16}\): /);
    expect(message).toMatch(why);
    expect(hint).toMatch(/^hint: nothing was verified; /);
    expect(rest).toEqual([]);
    expect(result.stderr).not.toContain('pass --kubeconfig');
  });

  it('a cluster that keeps no anchor for this database: said beside the result, and no hint to pass --kubeconfig again', () => {
    const dir = scratch();
    const store = openStore(database(dir));
    try {
      const notChecked = ['ConfigMap os-patch/patchpilot-audit-prod (cluster prod, database x): no anchor for this database there'];
      const given = verifyAudit(store, [], notChecked, { kubeconfig: true });
      expect(given.ok).toBe(true);
      expect(given.text).toContain('not checked: ConfigMap os-patch/patchpilot-audit-prod');
      expect(given.text).not.toContain('--kubeconfig');
      expect(given.text).toContain('pass --anchor SEQ:HASH');
      expect(verifyAudit(store).text).toContain('pass --kubeconfig');
    } finally {
      store.close();
    }
  });
});
