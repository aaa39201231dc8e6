import { createHash } from 'node:crypto';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { auditHash, auditPayload, canonicalJson, GENESIS_HASH } from '../../src/store/audit.ts';
import type { AuditHashInput } from '../../src/store/audit.ts';
import { openStore } from '../../src/store/index.ts';
import { scratchDirs } from '../helpers/scratch.ts';
import type { AuditEntry, Store } from '../../src/store/index.ts';

let dir: string;
const scratch = scratchDirs('audit');
beforeAll(() => {
  dir = scratch();
});

/** A varied entry: some with a run and node, some without, details of several shapes. */
function entry(index: number): AuditEntry {
  return {
    at: 1_700_000_000_000 + index,
    actor: index % 7 === 0 ? 'U42' : 'engine',
    action: index % 3 === 0 ? 'node.step' : 'run.state',
    runId: index % 5 === 0 ? null : `run-${index % 4}`,
    node: index % 3 === 0 ? `node-${index % 11}` : null,
    details: {
      index,
      step: ['drain', 'patch', 'reboot'][index % 3],
      nested: { b: [1, { z: true, a: null }], a: 'é' },
    },
  };
}

describe('appending', () => {
  let store: Store;
  beforeEach(() => {
    store = openStore(':memory:');
  });
  afterEach(() => store.close());

  it('chains each row to the previous one, starting from the genesis hash', () => {
    const rows = [0, 1, 2].map((index) => store.appendAudit(entry(index)));

    expect(rows.map((row) => row.seq)).toEqual([1, 2, 3]);
    expect(rows[0]?.prevHash).toBe(GENESIS_HASH);
    expect(rows[1]?.prevHash).toBe(rows[0]?.hash);
    expect(rows[2]?.prevHash).toBe(rows[1]?.hash);
    expect(store.auditRows()).toEqual(rows);
  });

  it('hashes sha256(prev_hash + "\\n" + canonical JSON of the row)', () => {
    const row = store.appendAudit({ at: 5, actor: 'U1', action: 'run.cancel', runId: 'r', details: { b: 2, a: 1 } });
    const expectedText =
      `${GENESIS_HASH}\n` +
      '{"action":"run.cancel","actor":"U1","at":5,"details":{"a":1,"b":2},"node":null,"runId":"r","seq":1}';
    expect(row.hash).toBe(createHash('sha256').update(expectedText).digest('hex'));
  });

  it('returns the stored form of details and fills in missing run, node and details', () => {
    const details = { when: new Date(0), gone: undefined };
    const row = store.appendAudit({ at: 1, actor: 'U1', action: 'login', details });
    expect(row).toMatchObject({ runId: null, node: null, details: { when: '1970-01-01T00:00:00.000Z' } });
    expect(store.appendAudit({ at: 2, actor: 'U1', action: 'logout' }).details).toEqual({});
  });

  it('keeps a chain that verifies even with text SQLite cannot store exactly (a lone surrogate)', () => {
    store.appendAudit({ at: 1, actor: 'U\uD800', action: 'x', node: '\uDC00', details: { text: '\uD800' } });
    expect(store.verifyAudit()).toMatchObject({ ok: true, checked: 1 });
  });

  it.each([
    { query: {}, seqs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] },
    { query: { runId: 'run-3' }, seqs: [3, 7] },
    { query: { afterSeq: 7 }, seqs: [8, 9, 10] },
    { query: { limit: 2 }, seqs: [1, 2] },
    { query: { runId: 'run-3', afterSeq: 2, limit: 1 }, seqs: [3] },
  ])('auditRows($query) → seq $seqs', ({ query, seqs }) => {
    for (let index = 1; index <= 10; index++) store.appendAudit(entry(index));
    expect(store.auditRows(query).map((row) => row.seq)).toEqual(seqs);
  });
});

describe('verifyAudit', () => {
  it('passes an empty log', () => {
    const store = openStore(':memory:');
    expect(store.verifyAudit()).toEqual({ ok: true, checked: 0, headSeq: null, problems: [] });
    store.close();
  });

  describe('on a 1,000-row log', () => {
    const ROWS = 1_000;
    let template: string;
    beforeAll(() => {
      template = join(dir, 'template.db');
      const store = openStore(template);
      for (let index = 0; index < ROWS; index++) store.appendAudit(entry(index));
      store.close();
    });

    let path: string;
    let caseNumber = 0;
    beforeEach(() => {
      path = join(dir, `case-${++caseNumber}.db`);
      copyFileSync(template, path);
    });

    it('passes an untouched log', () => {
      const store = openStore(path);
      expect(store.verifyAudit()).toEqual({ ok: true, checked: ROWS, headSeq: ROWS, problems: [] });
      store.close();
    });

    /** Someone with access to the file: a plain SQLite connection that first removes the protection. */
    function tamper(sql: (db: Database.Database) => void): void {
      const raw = new Database(path);
      raw.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
      sql(raw);
      raw.close();
    }

    function rehash(db: Database.Database, seq: number): void {
      const row = db
        .prepare<[number], AuditHashInput & { prevHash: string }>(
          `SELECT seq, at, actor, action, run_id AS runId, node, details_json AS detailsJson, prev_hash AS prevHash
           FROM audit WHERE seq = ?`,
        )
        .get(seq);
      if (row === undefined) throw new Error(`no row ${seq}`);
      db.prepare('UPDATE audit SET hash = ? WHERE seq = ?').run(auditHash(row.prevHash, row), seq);
    }

    function swapColumns(db: Database.Database, seqA: number, seqB: number, columns: string[]): void {
      const read = db.prepare<[number], object>(`SELECT ${columns.join(', ')} FROM audit WHERE seq = ?`);
      const assignments = columns.map((column) => `${column} = @${column}`).join(', ');
      const write = db.prepare(`UPDATE audit SET ${assignments} WHERE seq = @seq`);
      const [a, b] = [read.get(seqA), read.get(seqB)];
      write.run({ ...b, seq: seqA });
      write.run({ ...a, seq: seqB });
    }

    const hashMismatch = /^hash mismatch/;
    it.each([
      {
        tampering: 'changes a detail',
        sql: (db: Database.Database) =>
          db.prepare('UPDATE audit SET details_json = ? WHERE seq = 500').run('{"index":499,"step":"forged"}'),
        problems: [{ seq: 500, problem: hashMismatch }],
      },
      {
        tampering: 'changes an actor',
        sql: (db: Database.Database) => db.prepare("UPDATE audit SET actor = 'U666' WHERE seq = 321").run(),
        problems: [{ seq: 321, problem: hashMismatch }],
      },
      {
        tampering: 'changes a row and recomputes its hash',
        sql: (db: Database.Database) => {
          db.prepare("UPDATE audit SET action = 'run.approved' WHERE seq = 77").run();
          rehash(db, 77);
        },
        problems: [{ seq: 78, problem: /^prev_hash does not match the hash of seq 77/ }],
      },
      {
        tampering: 'deletes a middle row',
        sql: (db: Database.Database) => db.prepare('DELETE FROM audit WHERE seq = 500').run(),
        problems: [{ seq: 500, problem: /^seq 500 is missing/ }],
      },
      {
        tampering: 'deletes a range of rows',
        sql: (db: Database.Database) => db.prepare('DELETE FROM audit WHERE seq BETWEEN 10 AND 19').run(),
        problems: [{ seq: 10, problem: /^seq 10\.\.19 are missing/ }],
      },
      {
        tampering: 'deletes the first row',
        sql: (db: Database.Database) => db.prepare('DELETE FROM audit WHERE seq = 1').run(),
        problems: [{ seq: 1, problem: /^seq 1 is missing/ }],
      },
      {
        tampering: 'deletes the newest row',
        sql: (db: Database.Database) => db.prepare('DELETE FROM audit WHERE seq = 1000').run(),
        problems: [{ seq: 1000, problem: /^seq 1000 is missing: audit_head records seq 1000/ }],
      },
      {
        tampering: "swaps two rows' prev_hash",
        sql: (db: Database.Database) => swapColumns(db, 300, 700, ['prev_hash']),
        problems: [
          { seq: 300, problem: /^prev_hash does not match the hash of seq 299/ },
          { seq: 300, problem: hashMismatch },
          { seq: 700, problem: /^prev_hash does not match the hash of seq 699/ },
          { seq: 700, problem: hashMismatch },
        ],
      },
      {
        tampering: 'swaps the content of two rows, keeping seq',
        sql: (db: Database.Database) => swapColumns(db, 40, 41, ['at', 'actor', 'action', 'details_json']),
        problems: [
          { seq: 40, problem: hashMismatch },
          { seq: 41, problem: hashMismatch },
        ],
      },
      {
        tampering: 'appends a row without moving audit_head',
        sql: (db: Database.Database) => {
          const last = db.prepare<[], { hash: string }>('SELECT hash FROM audit WHERE seq = 1000').get();
          const row = { seq: 1001, at: 1, actor: 'U666', action: 'x', runId: null, node: null, detailsJson: '{}' };
          db.prepare(
            `INSERT INTO audit (seq, at, actor, action, run_id, node, details_json, prev_hash, hash)
             VALUES (@seq, @at, @actor, @action, @runId, @node, @detailsJson, @prevHash, @hash)`,
          ).run({ ...row, prevHash: last?.hash, hash: auditHash(last?.hash ?? '', row) });
        },
        problems: [{ seq: 1001, problem: /^audit_head records seq 1000 as the newest: later rows were added outside/ }],
      },
      {
        tampering: 'writes a details_json that is not JSON',
        sql: (db: Database.Database) => db.prepare("UPDATE audit SET details_json = '{oops' WHERE seq = 9").run(),
        problems: [{ seq: 9, problem: /^details_json is not a JSON object/ }],
      },
    ])('reports the seq and problem when someone $tampering', ({ sql, problems }) => {
      tamper(sql);

      const store = openStore(path);
      const verification = store.verifyAudit();
      store.close();

      expect(verification.ok).toBe(false);
      expect(verification.problems).toEqual(
        problems.map(({ seq, problem }) => ({ seq, problem: expect.stringMatching(problem) as unknown as string })),
      );
    });

    it.each([
      { statement: "UPDATE audit SET actor = 'U666' WHERE seq = 1" },
      { statement: 'DELETE FROM audit WHERE seq = 1000' },
      { statement: 'DELETE FROM audit' },
    ])('the triggers refuse `$statement` on a normal connection', ({ statement }) => {
      const raw = new Database(path);
      expect(() => raw.exec(statement)).toThrow('audit log is append-only');
      expect(raw.prepare('SELECT count(*) FROM audit').pluck().get()).toBe(ROWS);
      raw.close();
    });

    it.each([
      { statement: 'DELETE FROM audit_head', error: 'audit head cannot be deleted' },
      { statement: 'UPDATE audit_head SET seq = 999', error: 'audit head only moves forward, onto an existing entry' },
      { statement: 'UPDATE audit_head SET seq = 1005', error: 'audit head only moves forward, onto an existing entry' },
      {
        statement: "UPDATE audit_head SET seq = seq + 1, hash = (SELECT hash FROM audit WHERE seq = 1)",
        error: 'audit head only moves forward, onto an existing entry',
      },
    ])('the triggers refuse `$statement`', ({ statement, error }) => {
      const raw = new Database(path);
      expect(() => raw.exec(statement)).toThrow(error);
      raw.close();
    });
  });
});

describe('canonicalJson', () => {
  it.each([
    { value: { b: 1, a: { d: [3, { f: 1, e: 2 }], c: null } }, json: '{"a":{"c":null,"d":[3,{"e":2,"f":1}]},"b":1}' },
    { value: { 10: 'x', 9: 'y', b: 'z' }, json: '{"10":"x","9":"y","b":"z"}' },
    { value: { gone: undefined, fn: () => 1, kept: [undefined, Number.NaN, -0] }, json: '{"kept":[null,null,0]}' },
    { value: { when: new Date(Date.UTC(2025, 0, 1)) }, json: '{"when":"2025-01-01T00:00:00.000Z"}' },
    { value: 'line\nbreak "quoted"', json: '"line\\nbreak \\"quoted\\""' },
  ])('$json', ({ value, json }) => {
    expect(canonicalJson(value)).toBe(json);
  });

  it('refuses what JSON cannot represent', () => {
    expect(() => canonicalJson({ big: 1n })).toThrow(TypeError);
    expect(() => canonicalJson(undefined)).toThrow(TypeError);
  });

  it('means the same as JSON.stringify, whatever the key order', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(JSON.parse(canonicalJson(value))).toEqual(JSON.parse(JSON.stringify(value)));
      }),
    );
  });

  it('gives the same text for the parsed text, so a stored row hashes as it did when written', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
    );
  });

  it('does not depend on the order keys were inserted in', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (record) => {
        const reversed = Object.fromEntries(Object.entries(record).reverse());
        expect(canonicalJson(reversed)).toBe(canonicalJson(record));
      }),
    );
  });

  it('agrees with the hand-assembled audit payload', () => {
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          at: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
          actor: fc.string(),
          action: fc.string(),
          runId: fc.option(fc.string()),
          node: fc.option(fc.string()),
          details: fc.dictionary(fc.string(), fc.jsonValue()),
        }),
        ({ details, ...row }) => {
          const payload = auditPayload({ ...row, detailsJson: canonicalJson(details) });
          expect(payload).toBe(canonicalJson({ ...row, details }));
        },
      ),
    );
  });
});
