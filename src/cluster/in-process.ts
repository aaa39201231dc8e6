/**
 * What every cluster that lives in this process (MemoryCluster, the simulator's SimCluster) does the same way: waiting
 * on the injected clock, waiting for ever, applying a metadata patch, and deciding a lease.
 */
import type { Clock } from '../engine/clock.ts';
import type { LeaseRequest, LeaseResult, MetadataPatch } from './port.ts';

/** Resolves after `ms` on the clock; rejects with the signal's reason when aborted first. */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clock.clearTimeout(id);
      reject(signal?.reason);
    };
    const id = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Never resolves; rejects when aborted. What a blocked drain or a node that never returns looks like. */
export function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

/** Applies a MetadataPatch to a node's labels and annotations (null deletes; `keepLabelValues` protects values). */
export function applyMetadataPatch(node: { labels: Record<string, string>; annotations: Record<string, string> }, patch: MetadataPatch): void {
  apply(node.labels, patch.labels, patch.keepLabelValues ?? {});
  apply(node.annotations, patch.annotations, {});
}

function apply(target: Record<string, string>, patch: Record<string, string | null> | undefined, keep: Record<string, string>): void {
  for (const [key, value] of Object.entries(patch ?? {})) {
    if (keep[key] !== undefined && target[key] === keep[key]) continue;
    if (value === null) delete target[key];
    else target[key] = value;
  }
}

export interface HeldLease {
  holder: string;
  expiresAt: number;
  acquiredAt: number;
  /** leaseTransitions: grows with every change of holder (the fencing token). */
  generation: number;
}

/**
 * The lease a Kubernetes Lease object would give: refused while another holder's term runs, granted (or renewed) for
 * `durationSeconds` otherwise, a new holder getting the next generation. In one process every party reads the same
 * clock, so the record's expiry is what each of them would observe. Returns the answer and the lease to keep.
 */
export function claimLease(current: HeldLease | null, request: LeaseRequest, now: number): { result: LeaseResult; lease: HeldLease | null } {
  if (current && current.holder !== '' && current.holder !== request.holder && current.expiresAt > now) {
    return { result: { acquired: false, holder: current.holder, since: current.acquiredAt, expiresAt: current.expiresAt, problem: null }, lease: current };
  }
  const ours = current?.holder === request.holder;
  const generation = current === null ? 0 : ours ? current.generation : current.generation + 1;
  const acquiredAt = ours && current ? current.acquiredAt : now;
  return { result: { acquired: true, generation, previousHolder: current?.holder ?? '' }, lease: { holder: request.holder, expiresAt: now + request.durationSeconds * 1000, acquiredAt, generation } };
}

/** Releasing keeps the generation (the next holder's is higher), as a released Lease object keeps leaseTransitions. */
export function releasedLease(current: HeldLease | null, holder: string, now: number): HeldLease | null {
  if (current?.holder !== holder) return current;
  return { ...current, holder: '', expiresAt: now };
}
