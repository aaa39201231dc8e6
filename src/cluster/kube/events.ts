/**
 * A Kubernetes Event on the Node for each step, so `kubectl describe node` and `kubectl get events` tell what
 * patchpilot did there and why it failed. An Event is a courtesy: writing one is tried once and a failure is ignored,
 * never failing the step it describes.
 */
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import type { Clock } from '../../engine/clock.ts';
import { boundedName } from '../jobs.ts';
import type { KubeRequests } from './requests.ts';

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
  namespace: string;
  enabled: boolean;
  /** The node's uid when known: `kubectl describe node` finds Events by it. */
  uidOf: (node: string) => string | undefined;
}

export class NodeEvents {
  readonly #options: NodeEventsOptions;
  #sequence = 0;

  constructor(options: NodeEventsOptions) {
    this.#options = options;
  }

  async record(node: string, reason: EventReason, message: string, type: 'Normal' | 'Warning' = 'Normal'): Promise<void> {
    const { core, requests, clock, namespace, enabled, uidOf } = this.#options;
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
    } catch {
      // An Event that cannot be written (RBAC, a throttled API server) must not fail the step it describes.
    }
  }
}
