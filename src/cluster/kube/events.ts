/**
 * A Kubernetes Event on the Node for each step, so `kubectl describe node` and `kubectl get events` tell what
 * patchpilot did there and why it failed. An Event is a courtesy: writing one is tried once and never fails the step
 * it describes; a refused write is reported through `onWarning` once per distinct answer (with the API's reason), so
 * a cluster that refuses every Event says so instead of showing nothing, without a line per step.
 *
 * Where the Event lives is upstream's rule, not ours (legacyValidateEvent in pkg/apis/core/validation/events.go): a
 * core/v1 Event without eventTime about a cluster-scoped object (a Node) must be in `default`; anywhere else the API
 * server answers 422 "involvedObject.namespace: Invalid value: \"\": does not match event.namespace". client-go's
 * recorder does the same for Nodes. So Events go to `default`, whatever patchpilot's own namespace is.
 */
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import type { Clock } from '../../engine/clock.ts';
import { boundedName } from '../jobs.ts';
import { KubeApiError } from './errors.ts';
import type { KubeRequests } from './requests.ts';

/** Where core/v1 Events about cluster-scoped objects must be written (metav1.NamespaceDefault). */
export const NODE_EVENTS_NAMESPACE = 'default';

export type EventReason =
  | 'PatchpilotCordon'
  | 'PatchpilotDrain'
  | 'PatchpilotScan'
  | 'PatchpilotPrefetch'
  | 'PatchpilotPatch'
  | 'PatchpilotReboot'
  | 'PatchpilotUncordon'
  | 'PatchpilotMark';

export const EVENT_SOURCE = 'patchpilot';

/** Kubernetes caps an Event message at 1 KiB in events.k8s.io; keep core/v1 Events within the same bound. */
const MAX_MESSAGE = 1024;

export interface NodeEventsOptions {
  core: CoreV1Api;
  requests: KubeRequests;
  clock: Clock;
  enabled: boolean;
  /** Told once per distinct refusal (status and reason) why an Event could not be written. */
  onWarning: (message: string) => void;
  /** The node's uid when known: `kubectl describe node` finds Events by it. */
  uidOf: (node: string) => string | undefined;
}

export class NodeEvents {
  readonly #options: NodeEventsOptions;
  #sequence = 0;
  readonly #reported = new Set<string>();

  constructor(options: NodeEventsOptions) {
    this.#options = options;
  }

  async record(node: string, reason: EventReason, message: string, type: 'Normal' | 'Warning' = 'Normal'): Promise<void> {
    const { core, requests, clock, enabled, uidOf } = this.#options;
    const namespace = NODE_EVENTS_NAMESPACE;
    if (!enabled) return;
    const now = new Date(clock.now());
    this.#sequence += 1;
    // Unique per process and time, as client-go names them (<object>.<hex time>); bounded because node names may
    // already be 253 characters.
    const name = `${boundedName(node)}.${now.getTime().toString(16)}${this.#sequence.toString(16)}`;
    const uid = uidOf(node);
    const body: CoreV1Event = {
      metadata: { name, namespace },
      involvedObject: { apiVersion: 'v1', kind: 'Node', name: node, ...(uid ? { uid } : {}) },
      reason,
      message: message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message,
      type,
      source: { component: EVENT_SOURCE },
      reportingComponent: EVENT_SOURCE,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    try {
      await requests.send({ verb: 'create', resource: 'events', group: '', namespace }, (o) => core.createNamespacedEvent({ namespace, body }, o), {
        attempts: 1,
      });
    } catch (error) {
      // An Event that cannot be written (RBAC, a throttled API server) must not fail the step it describes.
      this.#report(error);
    }
  }

  #report(error: unknown): void {
    const key = error instanceof KubeApiError ? `${error.status} ${error.reason}` : error instanceof Error ? error.name : 'error';
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    const why = error instanceof Error ? error.message : String(error);
    this.#options.onWarning(`patchpilot could not write a Kubernetes Event in namespace ${NODE_EVENTS_NAMESPACE} (further Events refused the same way are not reported): ${why}`);
  }
}
