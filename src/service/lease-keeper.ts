/**
 * Holding a cluster's Lease for as long as a run needs it, and knowing at every moment whether we still may write.
 *
 * As client-go's leader election does: renew every third of the duration; believe we hold the lease only until our
 * last *successful* renewal's send time plus a safety share of the duration, on our own monotonic clock. A contender
 * starts counting the duration only when it observes that renewal, which is later than we sent it, so our belief ends
 * before its patience does, whatever the wall clocks of the two machines say. `check()` is the fence every cluster
 * write passes (FencedCluster below, and the Kubernetes adapter right before each request): a process that was paused,
 * or cut off from the API server, past its lease writes nothing more.
 */
import type { Clock } from '../engine/clock.ts';
import type { ClusterPort, LeaseResult } from '../cluster/port.ts';
import { describeHolder } from './holder.ts';

/** The share of the duration we trust a renewal for: the rest absorbs clocks that run at slightly different rates. */
const TRUSTED_SHARE = 0.8;

export interface LeaseKeeperOptions {
  cluster: ClusterPort;
  clock: Clock;
  name: string;
  holder: string;
  durationSeconds: number;
}

export interface LeaseLoss {
  why: string;
  /** Another holder took the cluster: whatever we had in flight may now be theirs, so we stop for good. */
  takenBy: string | null;
}

export class LeaseKeeper {
  readonly name: string;
  readonly holder: string;
  readonly #cluster: ClusterPort;
  readonly #clock: Clock;
  readonly #durationMs: number;
  #generation = -1;
  /** Monotonic time until which we may write; -Infinity while we do not hold the lease. */
  #validUntil = Number.NEGATIVE_INFINITY;
  #timer: number | undefined;
  #running = false;
  #lost: LeaseLoss | null = null;
  #waiters = new Set<() => void>();
  #listeners: { onLost(loss: LeaseLoss): void; onRegained(): void } | null = null;

  constructor(options: LeaseKeeperOptions) {
    this.name = options.name;
    this.holder = options.holder;
    this.#cluster = options.cluster;
    this.#clock = options.clock;
    this.#durationMs = options.durationSeconds * 1000;
  }

  get durationSeconds(): number {
    return this.#durationMs / 1000;
  }

  /** The fencing token of our tenure (the Lease's leaseTransitions when we acquired it). */
  get generation(): number {
    return this.#generation;
  }

  #monotonic(): number {
    return this.#clock.monotonicNow ? this.#clock.monotonicNow() : this.#clock.now();
  }

  /** One attempt. Acquired: we may write from now on (and `start` keeps it). */
  async tryAcquire(): Promise<LeaseResult> {
    const sentAt = this.#monotonic();
    const result = await this.#cluster.acquireLease({ name: this.name, holder: this.holder, durationSeconds: this.durationSeconds });
    if (result.acquired) {
      // A new tenure (after a loss, under the generation it was granted): whatever was lost before is over.
      this.#lost = null;
      this.#granted(result.generation, sentAt);
    }
    return result;
  }

  /** null while we may write to the cluster, else why not. */
  check(): string | null {
    if (this.#lost?.takenBy) return `the cluster's lease was taken by ${describeHolder(this.#lost.takenBy)}`;
    if (this.#monotonic() < this.#validUntil) return null;
    return this.#generation < 0 ? "this orchestrator does not hold the cluster's lease" : "this orchestrator's lease on the cluster ran out before it could renew it";
  }

  /** Resolves once we may write (at once, usually); rejects when `signal` aborts. */
  whenValid(signal?: AbortSignal): Promise<void> {
    if (this.check() === null) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        if (this.check() !== null) return;
        this.#waiters.delete(done);
        signal?.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        this.#waiters.delete(done);
        reject(signal?.reason ?? new Error('aborted'));
      };
      if (signal?.aborted) return aborted();
      signal?.addEventListener('abort', aborted, { once: true });
      this.#waiters.add(done);
    });
  }

  /** Keeps renewing until `stop`; tells `onLost` when the lease is lost and `onRegained` when it is ours again. */
  start(listeners: { onLost(loss: LeaseLoss): void; onRegained(): void }): void {
    this.#listeners = listeners;
    if (this.#running) return;
    this.#running = true;
    this.#arm(this.#durationMs / 3);
  }

  stop(): void {
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Stops renewing and gives the lease up (best effort: an unreleased lease expires). We write nothing after. */
  async release(): Promise<void> {
    this.stop();
    this.#validUntil = Number.NEGATIVE_INFINITY;
    await this.#cluster.releaseLease(this.name, this.holder).catch(() => {});
  }

  #granted(generation: number, sentAt: number): void {
    this.#generation = generation;
    this.#validUntil = sentAt + this.#durationMs * TRUSTED_SHARE;
    for (const waiter of [...this.#waiters]) waiter();
  }

  #arm(delay: number): void {
    if (!this.#running) return;
    this.#timer = this.#clock.setTimeout(() => void this.#renew(), delay);
  }

  #lose(loss: LeaseLoss): void {
    const first = this.#lost === null || (loss.takenBy !== null && this.#lost.takenBy === null);
    this.#lost = loss;
    if (loss.takenBy) this.#validUntil = Number.NEGATIVE_INFINITY;
    if (first) this.#listeners?.onLost(loss);
  }

  async #renew(): Promise<void> {
    const sentAt = this.#monotonic();
    const previous = this.#generation;
    let result: LeaseResult;
    try {
      result = await this.#cluster.renewLease({ name: this.name, holder: this.holder, durationSeconds: this.durationSeconds });
    } catch (err) {
      if (!this.#running) return;
      // Until our belief runs out the writes go on; after it they wait (check() says why) for a renewal to succeed.
      if (this.check() !== null && !this.#lost) {
        this.#lose({ why: `the cluster's lease could not be renewed before it ran out (${err instanceof Error ? err.message : String(err)})`, takenBy: null });
      }
      this.#arm(this.#durationMs / 9);
      return;
    }
    if (!this.#running) return;
    if (result.acquired && result.generation !== previous) {
      // Ours again, but under a new generation: someone held the cluster meanwhile and may have acted on our nodes.
      this.#lose({ why: `another orchestrator held the cluster's lease meanwhile (generation ${previous} -> ${result.generation})`, takenBy: 'unknown' });
      return;
    }
    if (result.acquired) {
      this.#granted(result.generation, sentAt);
      if (this.#lost) {
        this.#lost = null;
        this.#listeners?.onRegained();
      }
    } else {
      this.#lose({ why: `another orchestrator holds the cluster's lease: ${describeHolder(result.holder)}`, takenBy: result.holder });
      return;
    }
    this.#arm(this.#durationMs / 3);
  }
}

/**
 * The cluster as a run's effects see it: every write waits until the lease is valid by our clock and carries the
 * generation in its cordon and its Job; reads go through. A write the adapter refused at the last moment (the lease
 * ran out between our wait and its request) is tried again once the lease is valid, since every write is idempotent.
 */
export function fencedCluster(cluster: ClusterPort, keeper: LeaseKeeper): ClusterPort {
  const fenced = async <T>(signal: AbortSignal | undefined, write: () => Promise<T>): Promise<T> => {
    for (;;) {
      await keeper.whenValid(signal);
      try {
        return await write();
      } catch (err) {
        if (!(err instanceof Error && err.name === 'FencedWriteError')) throw err;
      }
    }
  };
  const fence = () => ({ generation: keeper.generation });
  return {
    name: cluster.name,
    cordon: (name: string, owner: string, signal?: AbortSignal) => fenced(signal, () => cluster.cordon(name, owner, signal, fence())),
    uncordon: (name: string, owner: string, signal?: AbortSignal) => fenced(signal, () => cluster.uncordon(name, owner, signal)),
    drain: (name: string, options: Parameters<ClusterPort['drain']>[1]) => fenced(options.signal, () => cluster.drain(name, options)),
    startPatchJob: (spec: Parameters<ClusterPort['startPatchJob']>[0], signal?: AbortSignal) =>
      fenced(signal, () => cluster.startPatchJob({ ...spec, generation: keeper.generation }, signal)),
    reboot: (name: string, key: string, signal?: AbortSignal) => fenced(signal, () => cluster.reboot(name, key, signal)),
    // A scan changes no node, but it creates a Job: a stale holder must not leave one behind either.
    scanNode: (spec: Parameters<ClusterPort['scanNode']>[0], signal: AbortSignal) => fenced(signal, () => cluster.scanNode(spec, signal)),
    patchNodeMetadata: (name: string, patch: Parameters<ClusterPort['patchNodeMetadata']>[1], signal?: AbortSignal) =>
      fenced(signal, () => cluster.patchNodeMetadata(name, patch, signal)),
    // Reads and the lease itself go straight through, bound to the real adapter (its private fields need it).
    listNodes: cluster.listNodes.bind(cluster),
    getNode: cluster.getNode.bind(cluster),
    listPods: cluster.listPods.bind(cluster),
    controlPlaneReady: cluster.controlPlaneReady.bind(cluster),
    unhealthyNodes: cluster.unhealthyNodes.bind(cluster),
    awaitAgentReport: cluster.awaitAgentReport.bind(cluster),
    awaitReady: cluster.awaitReady.bind(cluster),
    acquireLease: cluster.acquireLease.bind(cluster),
    renewLease: cluster.renewLease.bind(cluster),
    releaseLease: cluster.releaseLease.bind(cluster),
  };
}
