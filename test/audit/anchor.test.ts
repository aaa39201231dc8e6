/**
 * The audit head anchored outside the database, in process (the same with real processes and a sandbox is
 * anchor.full.test.ts): a run leaves its head in the cluster, and verify tells the three tamperings a hash chain
 * alone cannot show only when it has that anchor.
 */
import { copyFileSync } from 'node:fs';
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
