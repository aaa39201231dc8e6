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
import { badRequest, resourceVersionTooOld, type Status } from './status.ts';

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

  start(clock: Clock, bookmarkIntervalMs: number): void {
    const { allowWatchBookmarks, timeoutSeconds } = this.request;
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

export class WatchHub {
  readonly clock: Clock;
  readonly #historyLimit: number;
  readonly #bookmarkIntervalMs: number;
  /** A ring of the last `historyLimit` changes, oldest at `#historyStart`. */
  #history: Change[] = [];
  #historyStart = 0;
  /** The newest resourceVersion dropped from the history: a watch must start at or after it. */
  #compactedRv = 0;
  #publishedRv = 0;
  #watchers = new Map<ResourceType, Set<Watcher>>();

  constructor(clock: Clock, historyLimit: number, bookmarkIntervalMs: number) {
    this.clock = clock;
    this.#historyLimit = Math.max(1, historyLimit);
    this.#bookmarkIntervalMs = bookmarkIntervalMs;
  }

  get publishedRv(): number {
    return this.#publishedRv;
  }

  publish(change: Change): void {
    this.#publishedRv = change.rv;
    if (this.#history.length < this.#historyLimit) {
      this.#history.push(change);
    } else {
      this.#compactedRv = this.#history[this.#historyStart]!.rv;
      this.#history[this.#historyStart] = change;
      this.#historyStart = (this.#historyStart + 1) % this.#historyLimit;
    }
    const watchers = this.#watchers.get(change.resource);
    if (watchers) for (const watcher of [...watchers]) watcher.deliver(change);
  }

  /** Starts a watch; a request for a resourceVersion older than the history gets the 410 ERROR event and ends. */
  watch(request: WatchRequest): WatchHandle {
    const rvText = request.resourceVersion;
    if (rvText === undefined || rvText === '' || rvText === '0') {
      const watcher = new Watcher(this, request, request.currentRv);
      for (const object of request.current()) if (watcher.matches(object)) request.onEvent({ type: 'ADDED', object });
      return this.#attach(watcher);
    }
    if (!/^\d+$/.test(rvText)) throw badRequest(`invalid resource version: ${rvText}`);
    const from = Number(rvText);
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
    watcher.start(this.clock, this.#bookmarkIntervalMs);
    return { stop: () => watcher.stop() };
  }

  *#historySince(rv: number): Generator<Change> {
    const n = this.#history.length;
    for (let i = 0; i < n; i++) {
      const change = this.#history[(this.#historyStart + i) % n]!;
      if (change.rv > rv) yield change;
    }
  }
}
