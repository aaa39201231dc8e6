/**
 * Who holds a cluster: one process, never a host. Two replicas of the Deployment on one node, two operators on one
 * bastion, a CI job beside a cron job: each is a holder of its own. The identity carries the host, the pid, the start
 * time and a random suffix (a pid is reused after a restart; a start time may collide); `describeHolder` turns it
 * into words for people, and says so when a Lease names something patchpilot did not write.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

const PREFIX = 'patchpilot';

export interface HolderParts {
  host: string;
  pid: number;
  startedAt: number;
  suffix: string;
}

/** `patchpilot/<host>/<pid>/<start, ISO 8601 UTC, seconds>/<6 hex>`: unique per process, readable as it is. */
export function holderIdentity(parts: HolderParts): string {
  const started = new Date(parts.startedAt).toISOString().replace(/\.\d{3}Z$/, 'Z');
  return `${PREFIX}/${parts.host}/${parts.pid}/${started}/${parts.suffix}`;
}

let processIdentity: string | undefined;

/** This process's identity (one per process, so every orchestrator in it is the same holder). */
export function processHolder(): string {
  processIdentity ??= holderIdentity({
    host: hostname(),
    pid: process.pid,
    startedAt: Date.now() - Math.round(process.uptime() * 1000),
    suffix: randomBytes(3).toString('hex'),
  });
  return processIdentity;
}

export function parseHolder(identity: string): HolderParts | null {
  const match = /^patchpilot\/([^/]+)\/(\d+)\/(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\/([0-9a-f]+)$/.exec(identity);
  if (!match) return null;
  const startedAt = Date.parse(match[3]!);
  if (Number.isNaN(startedAt)) return null;
  return { host: match[1]!, pid: Number(match[2]), startedAt, suffix: match[4]! };
}

/** "process 4242 on bastion-1 (started 2026-12-06T04:00:00Z)", or the raw text quoted when it is not ours. */
export function describeHolder(identity: string): string {
  if (identity === '') return 'nobody (released)';
  const parts = parseHolder(identity);
  if (!parts) return `"${identity.slice(0, 120)}" (not a patchpilot process identity)`;
  return `process ${parts.pid} on ${parts.host} (started ${new Date(parts.startedAt).toISOString().replace(/\.\d{3}Z$/, 'Z')}, ${parts.suffix})`;
}

/** Whether a process of this host is running (a pid that exists but belongs to someone else counts: EPERM). */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
