/**
 * API chaos: the transient failures a busy real API server gives, on any resource endpoint (evictions, logs, Leases,
 * Events included), at a rate: API Priority and Fairness' 429 with Retry-After, 500s, 409 Conflicts on Node writes
 * (where a real cluster's kubelet and controllers race the client), and watch connections dropped mid-stream.
 *
 * Transient means transient: the same request (verb, resource, subresource, namespace, name) is never struck twice in
 * a row, so a client that retries as client-go does gets through; chaos tests robustness, not a client's give-up
 * budget. Conflicts only strike Node patches and updates, where patchpilot's writes carry preconditions and a 409
 * means "read again", never where a 409 would mean something else (a Lease someone else holds, a Job that exists).
 * Draws come from a seeded stream, so a run with the same seed meets the same chaos.
 */
import type { RequestInfo } from './hooks.ts';
import { seededRandom } from './objects.ts';
import { conflict, internalError, STALE_OBJECT, tooManyRequests, type StatusError } from './status.ts';

export interface ChaosOptions {
  /** Probability in [0, 1) that a request fails, and that a watch is dropped before it would end. */
  rate: number;
  seed?: number;
  /** A dropped watch ends after a uniform draw up to this many clock milliseconds (default 60 s). */
  maxWatchMs?: number;
}

export class ApiChaos {
  readonly rate: number;
  readonly #random: () => number;
  readonly #maxWatchMs: number;
  /** Keys of requests struck last time: their next attempt passes. */
  readonly #struck = new Set<string>();
  /** How many of each were injected, for tests and the sandbox's narration. */
  readonly injected = { tooManyRequests: 0, internalError: 0, conflict: 0, watchDropped: 0 };

  constructor(options: ChaosOptions) {
    if (!(options.rate >= 0 && options.rate < 1)) throw new Error(`chaos rate must be at least 0 and below 1, not ${options.rate}`);
    this.rate = options.rate;
    this.#random = seededRandom((options.seed ?? 1) ^ 0x2545f491);
    this.#maxWatchMs = options.maxWatchMs ?? 60_000;
  }

  /** The failure to answer this request with, if chaos strikes it. */
  strike(request: RequestInfo): StatusError | undefined {
    if (this.rate === 0 || request.verb === 'watch') return undefined;
    const key = [request.verb, request.group, request.resource, request.subresource ?? '', request.namespace ?? '', request.name ?? ''].join('|');
    if (this.#struck.delete(key)) return undefined;
    if (this.#random() >= this.rate) return undefined;
    this.#struck.add(key);
    const draw = this.#random();
    const nodeWrite = request.resource === 'nodes' && request.group === '' && (request.verb === 'patch' || request.verb === 'update');
    if (nodeWrite && draw < 0.2) {
      this.injected.conflict += 1;
      return conflict({ group: '', resource: 'nodes' }, request.name ?? '', STALE_OBJECT);
    }
    if (draw < 0.6) {
      this.injected.tooManyRequests += 1;
      // What API Priority and Fairness answers when a priority level's queues are full.
      return tooManyRequests('Too many requests, please try again later.', 1);
    }
    this.injected.internalError += 1;
    return internalError('etcdserver: request timed out');
  }

  /** Clock milliseconds after which to drop a new watch, or undefined to leave it be. */
  watchDropAfter(): number | undefined {
    if (this.rate === 0 || this.#random() >= this.rate) return undefined;
    return 1 + Math.floor(this.#random() * this.#maxWatchMs);
  }

  watchDropped(): void {
    this.injected.watchDropped += 1;
  }
}
