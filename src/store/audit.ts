/**
 * The audit log is a hash chain: each row's hash covers its content and the previous row's hash, so changing,
 * removing or reordering a row breaks the chain from that row on. The single-row audit_head table, moved in the same
 * transaction as each append, records the newest seq and hash, which catches removal of the newest rows too.
 *
 * The hash format is part of the on-disk format: rows written by one version must verify in every later version,
 * which is why the store has its own canonical JSON rather than sharing one that might change for other reasons.
 */
import { createHash } from 'node:crypto';
import type { AuditProblem, AuditRow, AuditVerification } from './types.ts';

/** prev_hash of the first row. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted (by UTF-16 code unit, recursively) and otherwise JSON.stringify's rules: toJSON is
 * honoured, undefined/function/symbol members are dropped (null in arrays), non-finite numbers become null, and a
 * BigInt throws. Because of that, re-serializing the parsed output yields the same text, so a hash computed from
 * the caller's object when a row is written matches the one recomputed from the stored JSON when it is verified.
 */
export function canonicalJson(value: unknown): string {
  const text = serialize(value, '');
  if (text === undefined) throw new TypeError(`${typeof value} cannot be serialized to JSON`);
  return text;
}

function serialize(value: unknown, key: string): string | undefined {
  const jsonValue = hasToJson(value) ? value.toJSON(key) : value;
  switch (typeof jsonValue) {
    case 'string':
      return JSON.stringify(jsonValue);
    case 'number':
      return Number.isFinite(jsonValue) ? JSON.stringify(jsonValue) : 'null';
    case 'boolean':
      return jsonValue ? 'true' : 'false';
    case 'bigint':
      throw new TypeError('a BigInt cannot be serialized to JSON');
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
  }
  if (jsonValue === null) return 'null';
  if (Array.isArray(jsonValue)) {
    return `[${jsonValue.map((item, index) => serialize(item, String(index)) ?? 'null').join(',')}]`;
  }
  const record = jsonValue as Record<string, unknown>;
  const members: string[] = [];
  for (const name of Object.keys(record).sort()) {
    const member = serialize(record[name], name);
    if (member !== undefined) members.push(`${JSON.stringify(name)}:${member}`);
  }
  return `{${members.join(',')}}`;
}

function hasToJson(value: unknown): value is { toJSON(key: string): unknown } {
  return (
    value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function'
  );
}

/** The fields an audit row's hash covers, details already in canonical JSON. */
export type AuditHashInput = Omit<AuditRow, 'details' | 'prevHash' | 'hash'> & { detailsJson: string };

/** sha256(prevHash + '\n' + canonicalJson({ seq, at, actor, action, runId, node, details })), hex. */
export function auditHash(prevHash: string, row: AuditHashInput): string {
  return createHash('sha256').update(`${prevHash}\n${auditPayload(row)}`).digest('hex');
}

/**
 * canonicalJson({ seq, at, actor, action, runId, node, details }) assembled by hand: the keys are fixed, so writing
 * them in sorted order directly saves sorting and re-serializing the details on every append (a hot path).
 */
export function auditPayload(row: AuditHashInput): string {
  return (
    `{"action":${JSON.stringify(row.action)},"actor":${JSON.stringify(row.actor)},"at":${JSON.stringify(row.at)},` +
    `"details":${row.detailsJson},"node":${JSON.stringify(row.node)},"runId":${JSON.stringify(row.runId)},` +
    `"seq":${JSON.stringify(row.seq)}}`
  );
}

/** An audit row as stored, details still in their JSON text. */
export interface StoredAuditRow extends AuditHashInput {
  prevHash: string;
  hash: string;
}

export interface AuditHead {
  seq: number;
  hash: string;
}

/**
 * Checks a chain given its rows in ascending seq order. Consumes the iterable once and keeps only the previous row,
 * so memory stays flat however long the log is.
 */
export function verifyAuditChain(rows: Iterable<StoredAuditRow>, head: AuditHead | undefined): AuditVerification {
  const problems: AuditProblem[] = [];
  let checked = 0;
  let lastSeq = 0;
  let lastHash = GENESIS_HASH;

  for (const row of rows) {
    checked++;
    if (row.seq > lastSeq + 1) {
      // The link check is skipped here: the row this one points to is gone, so a mismatch would only repeat this.
      problems.push({ seq: lastSeq + 1, problem: rowsMissing(lastSeq + 1, row.seq - 1) });
    } else if (row.prevHash !== lastHash) {
      const predecessor = lastSeq === 0 ? 'the chain start' : `seq ${lastSeq}`;
      problems.push({ seq: row.seq, problem: `prev_hash does not match the hash of ${predecessor}` });
    }

    const details = parseDetails(row.detailsJson);
    if (details === undefined) {
      problems.push({ seq: row.seq, problem: 'details_json is not a JSON object' });
    } else if (auditHash(row.prevHash, { ...row, detailsJson: canonicalJson(details) }) !== row.hash) {
      problems.push({ seq: row.seq, problem: 'hash mismatch: the row was changed after it was written' });
    }

    lastSeq = row.seq;
    lastHash = row.hash;
  }

  if (head === undefined) {
    problems.push({ seq: lastSeq, problem: 'audit_head is missing' });
  } else if (head.seq > lastSeq) {
    problems.push({
      seq: lastSeq + 1,
      problem: `${rowsMissing(lastSeq + 1, head.seq)}: audit_head records seq ${head.seq} as the newest`,
    });
  } else if (head.seq < lastSeq) {
    problems.push({
      seq: head.seq + 1,
      problem: `audit_head records seq ${head.seq} as the newest: later rows were added outside patchpilot`,
    });
  } else if (head.hash !== lastHash) {
    problems.push({ seq: lastSeq, problem: 'hash does not match the hash audit_head records' });
  }

  return { ok: problems.length === 0, checked, headSeq: head && head.seq > 0 ? head.seq : null, problems };
}

function rowsMissing(first: number, last: number): string {
  return first === last ? `seq ${first} is missing` : `seq ${first}..${last} are missing`;
}

function parseDetails(json: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(json);
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** The audit head as written outside the database (a ConfigMap in the cluster, a Slack thread), to check it against. */
export interface AuditAnchor {
  seq: number;
  hash: string;
  /** When it was written (0 when unknown: an anchor typed in by hand). */
  at: number;
  /** Where it was read, for the report: "ConfigMap os-patch/patchpilot-audit-prod", "--anchor". */
  source: string;
}

export interface AnchorCheck {
  source: string;
  ok: boolean;
  detail: string;
}

/**
 * What one anchor says about the database: the record it names must exist with exactly its hash (so the newest
 * records cannot have been removed, nor the chain recomputed, up to it), and every record after it is one written
 * since. `tailAllowed`: a run is still in flight, so records after the newest anchor are expected (its next anchor
 * is not written yet); otherwise they were added without an anchor, by someone holding the database.
 */
export function checkAnchor(anchor: AuditAnchor, head: AuditHead, hashAt: (seq: number) => string | null, options: { newest: boolean; tailAllowed: boolean }): AnchorCheck {
  const { source } = anchor;
  const when = anchor.at ? ` (written ${new Date(anchor.at).toISOString()})` : '';
  if (head.seq < anchor.seq) {
    return { source, ok: false, detail: `the anchor${when} records #${anchor.seq}, but the log ends at #${head.seq}: its newest ${anchor.seq - head.seq} record(s) were removed` };
  }
  const stored = hashAt(anchor.seq);
  if (stored === null) return { source, ok: false, detail: `the anchor${when} records #${anchor.seq}, which is missing from the log` };
  if (stored !== anchor.hash) {
    return { source, ok: false, detail: `record #${anchor.seq} has another hash than the anchor${when} recorded: the log was rewritten (re-chained) at or before #${anchor.seq}` };
  }
  const after = head.seq - anchor.seq;
  if (after === 0 || !options.newest) return { source, ok: true, detail: `#${anchor.seq} matches${when}` };
  if (options.tailAllowed) return { source, ok: true, detail: `#${anchor.seq} matches${when}; ${after} newer record(s) belong to a run still in flight, not anchored yet` };
  return {
    source,
    ok: false,
    detail: `#${anchor.seq} matches${when}, but ${after} record(s) after it were never anchored: appended by someone with the database (or written by a process that died before it could anchor them)`,
  };
}
