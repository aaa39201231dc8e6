/**
 * One orchestrator per cluster, by a coordination.k8s.io/v1 Lease in patchpilot's namespace, decided as client-go's
 * leader election decides (k8s.io/client-go/tools/leaderelection): create it, renew it while we hold it, and take it
 * over only once it has expired. Expiry is judged by *our* monotonic clock since we last *observed* the record change
 * (its resourceVersion), never by comparing the holder's renewTime with our wall clock, so clock skew between machines
 * cannot make two holders. Every write carries the resourceVersion we read, so of two contenders exactly one wins.
 * The lease's generation is its leaseTransitions: it grows with each change of holder and fences cluster writes.
 */
import { V1MicroTime, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node';
import type { Clock } from '../../engine/clock.ts';
import { boundedName } from '../jobs.ts';
import type { LeaseInfo, LeaseRequest, LeaseResult } from '../port.ts';
import { KubeApiError, type ApiRequest } from './errors.ts';
import { isNotFound, type KubeRequests } from './requests.ts';

export interface LeaseContext {
  coordination: CoordinationV1Api;
  requests: KubeRequests;
  clock: Clock;
  namespace: string;
}

/** The Lease object's name for a lease name (cluster names may hold characters object names cannot). */
export function leaseObjectName(name: string): string {
  return boundedName(name);
}

function timeOf(value: Date | string | undefined): number {
  if (value === undefined) return 0;
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? 0 : ms;
}

function expiresAt(lease: V1Lease): number {
  return timeOf(lease.spec?.renewTime) + (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
}

/** The record's duration when it is a usable one, else null and why (a hand-edited or half-written Lease). */
export function recordDuration(lease: V1Lease): { seconds: number | null; problem: string | null } {
  if (lease.spec === undefined || lease.spec === null) return { seconds: null, problem: 'the Lease has no spec' };
  const seconds = lease.spec.leaseDurationSeconds as unknown;
  if (seconds === undefined || seconds === null) return { seconds: null, problem: 'the Lease has no leaseDurationSeconds' };
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds <= 0) {
    return { seconds: null, problem: `the Lease's leaseDurationSeconds is ${JSON.stringify(seconds)}, not a positive integer` };
  }
  return { seconds, problem: null };
}

const isStatus = (err: unknown, status: number): err is KubeApiError => err instanceof KubeApiError && err.status === status;

interface Observation {
  /** The record's resourceVersion when we last saw it change. */
  version: string;
  /** Our monotonic clock then. */
  at: number;
}

export class KubeLease {
  readonly #ctx: LeaseContext;
  readonly #observed = new Map<string, Observation>();

  constructor(ctx: LeaseContext) {
    this.#ctx = ctx;
  }

  #monotonic(): number {
    const { clock } = this.#ctx;
    return clock.monotonicNow ? clock.monotonicNow() : clock.now();
  }

  /** When we first saw this version of the record (now, if it is new to us). */
  #observe(lease: V1Lease): number {
    const name = lease.metadata?.name ?? '';
    const version = lease.metadata?.resourceVersion ?? JSON.stringify(lease.spec ?? null);
    const seen = this.#observed.get(name);
    if (seen && seen.version === version) return seen.at;
    const at = this.#monotonic();
    this.#observed.set(name, { version, at });
    return at;
  }

  async acquire(request: LeaseRequest): Promise<LeaseResult> {
    const { coordination, requests, clock, namespace } = this.#ctx;
    const name = leaseObjectName(request.name);
    const base: ApiRequest = { verb: 'create', resource: 'leases', group: 'coordination.k8s.io', namespace, name };
    for (let round = 0; ; round++) {
      const current = await this.#read(name);
      if (current === null) {
        const now = new V1MicroTime(clock.now());
        try {
          await requests.send(
            base,
            (o) =>
              coordination.createNamespacedLease(
                {
                  namespace,
                  body: {
                    metadata: { name, namespace },
                    spec: { holderIdentity: request.holder, leaseDurationSeconds: request.durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
                  },
                },
                o,
              ),
            { handles: [409] },
          );
          return { acquired: true, generation: 0, previousHolder: '' };
        } catch (err) {
          if (!isStatus(err, 409)) throw err;
          continue;
        }
      }
      const result = await this.#claim(current, request);
      // Our own renewal lost a race with nobody (a status update, a hand edit): read and decide again, a few times.
      if (result === 'conflict') {
        if (round < 3) continue;
        const winner = await this.#read(name);
        return winner ? this.#refusal(winner, request) : { acquired: false, holder: '', since: null, expiresAt: clock.now(), problem: null };
      }
      return result;
    }
  }

  async renew(request: LeaseRequest): Promise<LeaseResult> {
    return this.acquire(request);
  }

  /**
   * Gives the lease up if we hold it, as client-go's ReleaseOnCancel does: the holder is cleared and the duration set
   * to one second, so the next orchestrator waits only that long after it sees the release. Best effort, and never
   * throws: a lease we fail to release simply expires.
   */
  async release(leaseName: string, holder: string): Promise<void> {
    const { coordination, requests, clock, namespace } = this.#ctx;
    const name = leaseObjectName(leaseName);
    const request: ApiRequest = { verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace, name };
    await requests
      .untilNoConflict(request, async () => {
        const current = await this.#read(name);
        if (current === null || current.spec?.holderIdentity !== holder) return;
        const now = new V1MicroTime(clock.now());
        const { holderIdentity: _released, ...spec } = current.spec ?? {};
        const body: V1Lease = { ...current, spec: { ...spec, leaseDurationSeconds: 1, renewTime: now } };
        await requests.send(request, (o) => coordination.replaceNamespacedLease({ name, namespace, body }, o));
      })
      .catch(() => undefined);
  }

  /** The Lease as it is now (doctor, unstick), or null when there is none. */
  async info(leaseName: string, signal?: AbortSignal): Promise<LeaseInfo | null> {
    const lease = await this.#read(leaseObjectName(leaseName), signal);
    if (lease === null) return null;
    const renewedAt = timeOf(lease.spec?.renewTime) || null;
    return {
      name: lease.metadata?.name ?? leaseObjectName(leaseName),
      holder: lease.spec?.holderIdentity || null,
      renewedAt,
      expiresAt: renewedAt === null ? null : expiresAt(lease),
    };
  }

  /** Not acquired: who holds it, since when, and until when by our own clock. */
  #refusal(current: V1Lease, request: LeaseRequest): LeaseResult & { acquired: false } {
    const observedAt = this.#observe(current);
    const { seconds, problem } = recordDuration(current);
    const durationMs = (seconds ?? request.durationSeconds) * 1000;
    const remaining = Math.max(0, observedAt + durationMs - this.#monotonic());
    return {
      acquired: false,
      holder: current.spec?.holderIdentity ?? '',
      since: timeOf(current.spec?.acquireTime) || null,
      expiresAt: this.#ctx.clock.now() + remaining,
      problem: problem ? `${problem}; judged with ${request.durationSeconds} s instead` : null,
    };
  }

  async #claim(current: V1Lease, request: LeaseRequest): Promise<LeaseResult | 'conflict'> {
    const { coordination, requests, clock, namespace } = this.#ctx;
    const name = current.metadata?.name ?? '';
    const holder = current.spec?.holderIdentity ?? '';
    const ours = holder === request.holder;
    // Released (no holder, as client-go says "all callers may acquire") is free at once. Someone else's record, or
    // one we cannot read a holder and a duration from (no spec, a negative duration), is ours only once it has gone
    // unchanged for its duration, by our clock: a hand-edited Lease never makes a second writer, at worst a wait.
    const released = holder === '' && recordDuration(current).seconds !== null;
    if (!ours && !released) {
      const refusal = this.#refusal(current, request);
      if (refusal.expiresAt > clock.now()) return refusal;
    }
    const now = new V1MicroTime(clock.now());
    const transitions = Number.isInteger(current.spec?.leaseTransitions) && (current.spec?.leaseTransitions ?? 0) >= 0 ? current.spec!.leaseTransitions! : 0;
    const generation = ours ? transitions : transitions + 1;
    const body: V1Lease = {
      ...current,
      spec: {
        ...current.spec,
        holderIdentity: request.holder,
        leaseDurationSeconds: request.durationSeconds,
        renewTime: now,
        leaseTransitions: generation,
        ...(ours && current.spec?.acquireTime ? {} : { acquireTime: now }),
      },
    };
    try {
      await requests.send(
        { verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace, name },
        (o) => coordination.replaceNamespacedLease({ name, namespace, body }, o),
        { handles: [409] },
      );
      return { acquired: true, generation, previousHolder: holder };
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
    }
    if (ours) return 'conflict';
    // Someone else wrote the Lease since we read it: they won.
    const winner = await this.#read(name);
    return winner ? this.#refusal(winner, request) : 'conflict';
  }

  async #read(name: string, signal?: AbortSignal): Promise<V1Lease | null> {
    const { coordination, requests, namespace } = this.#ctx;
    try {
      return await requests.send(
        { verb: 'get', resource: 'leases', group: 'coordination.k8s.io', namespace, name },
        (o) => coordination.readNamespacedLease({ name, namespace }, o),
        { signal },
      );
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }
}
