/**
 * One orchestrator per cluster, by a coordination.k8s.io/v1 Lease in patchpilot's namespace, decided the way
 * client-go's leader election does: create it, or take it over only once its holder let it expire
 * (renewTime + leaseDurationSeconds is past), with an update that carries the resourceVersion we read so that of two
 * contenders exactly one wins (the other gets 409 and is told who holds it). Times are on the injected clock.
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

const isStatus = (err: unknown, status: number): err is KubeApiError => err instanceof KubeApiError && err.status === status;

export class KubeLease {
  readonly #ctx: LeaseContext;

  constructor(ctx: LeaseContext) {
    this.#ctx = ctx;
  }

  async acquire(request: LeaseRequest): Promise<LeaseResult> {
    const { coordination, requests, clock, namespace } = this.#ctx;
    const name = leaseObjectName(request.name);
    const base: ApiRequest = { verb: 'create', resource: 'leases', group: 'coordination.k8s.io', namespace, name };
    for (;;) {
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
        return { acquired: true };
      } catch (err) {
        if (!isStatus(err, 409)) throw err;
      }
      const current = await this.#read(name);
      // Released and deleted between our create and our read: try to create it again.
      if (current === null) continue;
      return this.#takeOver(current, request);
    }
  }

  async renew(request: LeaseRequest): Promise<boolean> {
    return (await this.acquire(request)).acquired;
  }

  /**
   * Gives the lease up if we hold it (the holder is cleared, so the next orchestrator need not wait for it to
   * expire). Best effort, and never throws: a lease we fail to release simply expires.
   */
  async release(leaseName: string, holder: string): Promise<void> {
    const { coordination, requests, namespace } = this.#ctx;
    const name = leaseObjectName(leaseName);
    const request: ApiRequest = { verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace, name };
    await requests
      .untilNoConflict(request, async () => {
        const current = await this.#read(name);
        if (current === null || current.spec?.holderIdentity !== holder) return;
        const { holderIdentity: _released, ...spec } = current.spec ?? {};
        const body: V1Lease = { ...current, spec };
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

  async #takeOver(current: V1Lease, request: LeaseRequest): Promise<LeaseResult> {
    const { coordination, requests, clock, namespace } = this.#ctx;
    const name = current.metadata?.name ?? '';
    const holder = current.spec?.holderIdentity ?? '';
    const now = clock.now();
    if (holder !== '' && holder !== request.holder && expiresAt(current) > now) return { acquired: false, holder, expiresAt: expiresAt(current) };
    const ours = holder === request.holder;
    const body: V1Lease = {
      ...current,
      spec: {
        ...current.spec,
        holderIdentity: request.holder,
        leaseDurationSeconds: request.durationSeconds,
        renewTime: new V1MicroTime(now),
        ...(ours ? {} : { acquireTime: new V1MicroTime(now), leaseTransitions: (current.spec?.leaseTransitions ?? 0) + 1 }),
      },
    };
    try {
      await requests.send(
        { verb: 'update', resource: 'leases', group: 'coordination.k8s.io', namespace, name },
        (o) => coordination.replaceNamespacedLease({ name, namespace, body }, o),
        { handles: [409] },
      );
      return { acquired: true };
    } catch (err) {
      if (!isStatus(err, 409)) throw err;
    }
    // Someone else wrote the Lease since we read it: they won.
    const winner = await this.#read(name);
    return { acquired: false, holder: winner?.spec?.holderIdentity ?? '', expiresAt: winner ? expiresAt(winner) : now };
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
