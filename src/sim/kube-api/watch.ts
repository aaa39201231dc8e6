/**
 * Watches: a bounded history of changes (so a client can resume from a resourceVersion it saw), and the live fan-out
 * to watchers with the API server's semantics: synthetic ADDED events for a watch without a resourceVersion, an
 * ERROR 410 for one older than the history, ADDED/DELETED when an object enters or leaves a watcher's selectors, and
 * BOOKMARKs when asked for.
 */
import type { Clock, TimerId } from '../../engine/clock.ts';
import type { KubeObject } from './objects.ts';
import { apiVersionOf, type ResourceType } from './resources.ts';
import { matchesFields, matchesLabels, type FieldSelector, type LabelSelector } from './selectors.ts';
import { resourceVersionTooOld, unexpectedError, type Status } from './status.ts';

/**
 * A resourceVersion as the storage's versioner parses it (APIObjectVersioner.ParseResourceVersion): "" and "0" are 0,
 * anything else strconv.ParseUint, whose failure is a field error on resourceVersion. The watch cache, which serves
 * watches, gets and most lists, returns that error as it is, so the client gets a 500 with no reason: "resourceVersion:
 * Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax" (kubernetes#113939, #139485; a fix to 400
 * is proposed, not merged). Callers that answer otherwise (etcd's path) catch it.
 */
export function parseResourceVersion(value: string): number {
  if (value === '' || value === '0') return 0;
  const fail = (why: string) => unexpectedError(`resourceVersion: Invalid value: ${JSON.stringify(value)}: strconv.ParseUint: parsing ${JSON.stringify(value)}: ${why}`);
  if (!/^\d+$/.test(value)) throw fail('invalid syntax');
  if (BigInt(value) > 2n ** 64n - 1n) throw fail('value out of range');
  return Number(value);
}

export interface Change {
  rv: number;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  resource: ResourceType;
  object: KubeObject;
  oldObject?: KubeObject;
}

export type WatchEvent =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED'; object: KubeObject }
  | { type: 'BOOKMARK'; object: KubeObject }
  | { type: 'ERROR'; object: Status };

export interface WatchOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Unset or "0": synthetic ADDED events for what exists, then changes. A number: changes after it. */
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

export interface WatchHandle {
  /** Ends the watch from the client's side; onEnd is not called. */
  stop(): void;
}

export interface WatchRequest {
  type: ResourceType;
  namespace: string | undefined;
  labels: LabelSelector;
  fields: FieldSelector;
  resourceVersion: string | undefined;
  allowWatchBookmarks: boolean;
  timeoutSeconds: number | undefined;
  /** What exists now (for synthetic ADDED events), sorted, at `currentRv`. */
  current: () => KubeObject[];
  currentRv: number;
  onEvent: (event: WatchEvent) => void;
  onEnd: () => void;
}

class Watcher {
  #lastRv: number;
  #bookmarkTimer: TimerId | undefined;
  #timeoutTimer: TimerId | undefined;
  #ended = false;
  readonly request: WatchRequest;
  readonly #hub: WatchHub;

  constructor(hub: WatchHub, request: WatchRequest, fromRv: number) {
    this.#hub = hub;
    this.request = request;
    this.#lastRv = fromRv;
  }

  matches(object: KubeObject): boolean {
    const { namespace, labels, fields, type } = this.request;
    if (namespace !== undefined && object.metadata.namespace !== namespace) return false;
    return matchesLabels(labels, object.metadata.labels) && matchesFields(fields, type, object);
  }

  deliver(change: Change): void {
    if (this.#ended || change.rv <= this.#lastRv) return;
    this.#lastRv = change.rv;
    const { object } = change;
    if (change.type === 'ADDED') {
      if (this.matches(object)) this.request.onEvent({ type: 'ADDED', object });
      return;
    }
    if (change.type === 'DELETED') {
      if (this.matches(object)) this.request.onEvent({ type: 'DELETED', object });
      return;
    }
    const now = this.matches(object);
    const before = change.oldObject !== undefined && this.matches(change.oldObject);
    if (now && before) this.request.onEvent({ type: 'MODIFIED', object });
    else if (now) this.request.onEvent({ type: 'ADDED', object });
    else if (before) this.request.onEvent({ type: 'DELETED', object });
  }

  start(clock: Clock, bookmarkIntervalMs: number, defaultTimeoutSeconds: number): void {
    const { allowWatchBookmarks } = this.request;
    const timeoutSeconds = this.request.timeoutSeconds ?? defaultTimeoutSeconds;
    if (allowWatchBookmarks) {
      const tick = () => {
        this.#bookmark();
        this.#bookmarkTimer = clock.setTimeout(tick, bookmarkIntervalMs);
      };
      this.#bookmarkTimer = clock.setTimeout(tick, bookmarkIntervalMs);
    }
    if (timeoutSeconds !== undefined && timeoutSeconds > 0) {
      this.#timeoutTimer = clock.setTimeout(() => {
        // The server sends a last bookmark as a watch times out, so the client resumes from a fresh resourceVersion.
        if (allowWatchBookmarks) this.#bookmark();
        this.end();
      }, timeoutSeconds * 1000);
    }
  }

  #bookmark(): void {
    const rv = Math.max(this.#lastRv, this.#hub.publishedRv);
    const { type } = this.request;
    this.request.onEvent({ type: 'BOOKMARK', object: { kind: type.kind, apiVersion: apiVersionOf(type), metadata: { resourceVersion: String(rv) } } });
  }

  /** Ends from the server's side (timeout, server closing): tells the client. */
  end(): void {
    if (this.#ended) return;
    this.stop();
    this.request.onEnd();
  }

  stop(): void {
    if (this.#ended) return;
    this.#ended = true;
    const clock = this.#hub.clock;
    if (this.#bookmarkTimer !== undefined) clock.clearTimeout(this.#bookmarkTimer);
    if (this.#timeoutTimer !== undefined) clock.clearTimeout(this.#timeoutTimer);
    this.#hub.detach(this);
  }
}

export interface WatchHubOptions {
  /** How many changes a watch can resume across at most. */
  historyLimit: number;
  /** Clock time a change stays resumable (etcd's compaction interval: 5 minutes by default). */
  compactionWindowMs: number;
  bookmarkIntervalMs: number;
  /**
   * A watch without timeoutSeconds ends after this many seconds times a random factor in [1, 2), as the API server's
   * --min-request-timeout (1800 s) spreads its watches; the client then watches again from where it was.
   */
  minRequestTimeoutSeconds: number;
  random: () => number;
}

export class WatchHub {
  readonly clock: Clock;
  readonly #options: WatchHubOptions;
  /** Resumable changes, oldest at `#historyStart`; what is before it was compacted away. */
  #history: Array<{ change: Change; at: number }> = [];
  #historyStart = 0;
  /** The newest resourceVersion dropped from the history: a watch must start at or after it. */
  #compactedRv = 0;
  #publishedRv = 0;
  #watchers = new Map<ResourceType, Set<Watcher>>();

  constructor(clock: Clock, options: WatchHubOptions) {
    this.clock = clock;
    this.#options = { ...options, historyLimit: Math.max(1, options.historyLimit) };
  }

  get publishedRv(): number {
    return this.#publishedRv;
  }

  publish(change: Change): void {
    this.#publishedRv = change.rv;
    this.#history.push({ change, at: this.clock.now() });
    this.#compact();
    const watchers = this.#watchers.get(change.resource);
    if (watchers) for (const watcher of [...watchers]) watcher.deliver(change);
  }

  /** Drops changes beyond the history limit or older than the compaction window; the newest dropped bounds resumes. */
  #compact(): void {
    const cutoff = this.clock.now() - this.#options.compactionWindowMs;
    while (this.#historyStart < this.#history.length) {
      const oldest = this.#history[this.#historyStart]!;
      if (this.#history.length - this.#historyStart <= this.#options.historyLimit && oldest.at >= cutoff) break;
      this.#compactedRv = oldest.change.rv;
      this.#historyStart++;
    }
    if (this.#historyStart > 1024 && this.#historyStart * 2 > this.#history.length) {
      this.#history = this.#history.slice(this.#historyStart);
      this.#historyStart = 0;
    }
  }

  /** Starts a watch; a request for a resourceVersion older than the history gets the 410 ERROR event and ends. */
  watch(request: WatchRequest): WatchHandle {
    this.#compact();
    const rvText = request.resourceVersion;
    if (rvText === undefined || rvText === '' || rvText === '0') {
      const watcher = new Watcher(this, request, request.currentRv);
      for (const object of request.current()) if (watcher.matches(object)) request.onEvent({ type: 'ADDED', object });
      return this.#attach(watcher);
    }
    const from = parseResourceVersion(rvText);
    if (from < this.#compactedRv) {
      request.onEvent({ type: 'ERROR', object: resourceVersionTooOld(from, this.#compactedRv + 1).status });
      request.onEnd();
      return { stop: () => {} };
    }
    const watcher = new Watcher(this, request, from);
    for (const change of this.#historySince(from)) if (change.resource === request.type) watcher.deliver(change);
    return this.#attach(watcher);
  }

  /** Ends every watch, telling each client (the server is closing). */
  endAll(): void {
    for (const watchers of this.#watchers.values()) for (const watcher of [...watchers]) watcher.end();
  }

  detach(watcher: Watcher): void {
    this.#watchers.get(watcher.request.type)?.delete(watcher);
  }

  #attach(watcher: Watcher): WatchHandle {
    const set = this.#watchers.get(watcher.request.type) ?? new Set();
    set.add(watcher);
    this.#watchers.set(watcher.request.type, set);
    const { bookmarkIntervalMs, minRequestTimeoutSeconds, random } = this.#options;
    watcher.start(this.clock, bookmarkIntervalMs, Math.floor(minRequestTimeoutSeconds * (1 + random())));
    return { stop: () => watcher.stop() };
  }

  /** Every change after `rv`, oldest first; undefined when some were compacted away (a list at `rv` is gone). */
  changesAfter(rv: number): Change[] | undefined {
    this.#compact();
    if (rv < this.#compactedRv) return undefined;
    return [...this.#historySince(rv)];
  }

  *#historySince(rv: number): Generator<Change> {
    for (let i = this.#historyStart; i < this.#history.length; i++) {
      const { change } = this.#history[i]!;
      if (change.rv > rv) yield change;
    }
  }
}
