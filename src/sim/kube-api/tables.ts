/**
 * Server-side printing: the meta.k8s.io/v1 Table the API server returns when a client (kubectl get) asks for one,
 * with the columns of Kubernetes' own printers for the resources served here, and NAME AGE for the rest.
 */
import { isPlainObject, readPath, type KubeObject } from './objects.ts';
import type { ResourceType } from './resources.ts';

export interface TableColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  format: string;
  description: string;
  priority: number;
}

export interface TableRow {
  cells: unknown[];
  object?: KubeObject;
}

export interface Table {
  kind: 'Table';
  apiVersion: 'meta.k8s.io/v1';
  metadata: { resourceVersion?: string };
  columnDefinitions: TableColumn[];
  rows: TableRow[];
}

/** What each row carries besides its cells: metadata only by default, so `--show-labels` and -A work. */
export type IncludeObject = 'None' | 'Metadata' | 'Object';

/** duration.HumanDuration: how kubectl shows an age ("45s", "5m10s", "3h20m", "12d"). */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const days = Math.floor(hours / 24) % 365;
    return days === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${days}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function since(timestamp: unknown, now: number): string {
  if (typeof timestamp !== 'string') return '<unknown>';
  const at = Date.parse(timestamp);
  return Number.isNaN(at) ? '<unknown>' : humanDuration(now - at);
}

function column(name: string, description: string, options: Partial<TableColumn> = {}): TableColumn {
  return { name, type: 'string', format: '', description, priority: 0, ...options };
}

const NAME = column('Name', 'Name must be unique within a namespace.', { format: 'name' });
const AGE = column('Age', 'CreationTimestamp is a timestamp representing the server time when this object was created.');

function wide(c: TableColumn): TableColumn {
  return { ...c, priority: 1 };
}

function list(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isPlainObject) : [];
}

function str(value: unknown, fallback = ''): string {
  return value === undefined || value === null ? fallback : String(value);
}

function num(value: unknown): number {
  return typeof value === 'number' ? value : 0;
}

function conditionTrue(obj: KubeObject, type: string): boolean {
  return list(readPath(obj, 'status.conditions')).some((c) => c.type === type && c.status === 'True');
}

interface Printer {
  columns: TableColumn[];
  cells: (obj: KubeObject, now: number) => unknown[];
}

function nodeStatus(node: KubeObject): string {
  const ready = list(readPath(node, 'status.conditions')).find((c) => c.type === 'Ready');
  const parts = [ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : 'NotReady'];
  if (readPath(node, 'spec.unschedulable') === true) parts.push('SchedulingDisabled');
  return parts.join(',');
}

function nodeRoles(node: KubeObject): string {
  const roles = new Set<string>();
  for (const [key, value] of Object.entries(node.metadata.labels ?? {})) {
    if (key.startsWith('node-role.kubernetes.io/') && key.length > 'node-role.kubernetes.io/'.length) roles.add(key.slice('node-role.kubernetes.io/'.length));
    else if (key === 'kubernetes.io/role' && value !== '') roles.add(value);
  }
  return roles.size === 0 ? '<none>' : [...roles].sort().join(',');
}

function nodeAddress(node: KubeObject, type: string): string {
  return str(list(readPath(node, 'status.addresses')).find((a) => a.type === type)?.address, '<none>');
}

/** printPod's STATUS: the phase, overridden by a container's waiting or terminated reason, or Terminating. */
function podStatus(pod: KubeObject): string {
  let reason = str(readPath(pod, 'status.reason')) || str(readPath(pod, 'status.phase'));
  let running = false;
  for (const status of list(readPath(pod, 'status.containerStatuses')).reverse()) {
    const waiting = readPath(status, 'state.waiting.reason');
    const terminated = readPath(status, 'state.terminated');
    if (typeof waiting === 'string' && waiting !== '') reason = waiting;
    else if (isPlainObject(terminated)) {
      if (typeof terminated.reason === 'string' && terminated.reason !== '') reason = terminated.reason;
      else if (num(terminated.signal) !== 0) reason = `Signal:${num(terminated.signal)}`;
      else reason = `ExitCode:${num(terminated.exitCode)}`;
    } else if (status.ready === true && isPlainObject(readPath(status, 'state.running'))) running = true;
  }
  if (reason === 'Completed' && running) reason = conditionTrue(pod, 'Ready') ? 'Running' : 'NotReady';
  if (pod.metadata.deletionTimestamp !== undefined) return reason === 'NodeLost' ? 'Unknown' : 'Terminating';
  return reason;
}

function podRestarts(pod: KubeObject, now: number): string {
  let restarts = 0;
  let lastFinished: number | undefined;
  for (const status of list(readPath(pod, 'status.containerStatuses'))) {
    restarts += num(status.restartCount);
    const finished = readPath(status, 'lastState.terminated.finishedAt');
    if (typeof finished === 'string') {
      const at = Date.parse(finished);
      if (lastFinished === undefined || at > lastFinished) lastFinished = at;
    }
  }
  return restarts > 0 && lastFinished !== undefined ? `${restarts} (${humanDuration(now - lastFinished)} ago)` : String(restarts);
}

function jobStatus(job: KubeObject): string {
  if (conditionTrue(job, 'Complete')) return 'Complete';
  if (conditionTrue(job, 'Failed')) return 'Failed';
  if (job.metadata.deletionTimestamp !== undefined) return 'Terminating';
  if (conditionTrue(job, 'Suspended')) return 'Suspended';
  if (conditionTrue(job, 'FailureTarget')) return 'FailureTarget';
  return 'Running';
}

function jobCompletions(job: KubeObject): string {
  const succeeded = num(readPath(job, 'status.succeeded'));
  const completions = readPath(job, 'spec.completions');
  if (typeof completions === 'number') return `${succeeded}/${completions}`;
  const parallelism = num(readPath(job, 'spec.parallelism'));
  return parallelism > 1 ? `${succeeded}/1 of ${parallelism}` : `${succeeded}/1`;
}

function jobDuration(job: KubeObject, now: number): string {
  const start = readPath(job, 'status.startTime');
  if (typeof start !== 'string') return '';
  const end = readPath(job, 'status.completionTime');
  return humanDuration((typeof end === 'string' ? Date.parse(end) : now) - Date.parse(start));
}

function containers(podSpec: unknown): { names: string; images: string } {
  const all = list(readPath(podSpec, 'containers'));
  return { names: all.map((c) => str(c.name)).join(','), images: all.map((c) => str(c.image)).join(',') };
}

function selectorText(selector: unknown): string {
  if (!isPlainObject(selector)) return '<none>';
  const parts = Object.entries(isPlainObject(selector.matchLabels) ? selector.matchLabels : {}).map(([k, v]) => `${k}=${str(v)}`);
  for (const e of list(selector.matchExpressions)) {
    const values = Array.isArray(e.values) ? e.values.join(',') : '';
    parts.push(e.operator === 'Exists' ? str(e.key) : e.operator === 'DoesNotExist' ? `!${str(e.key)}` : `${str(e.key)} ${str(e.operator).toLowerCase()} (${values})`);
  }
  return parts.length === 0 ? '<none>' : parts.join(',');
}

function mapText(value: unknown): string {
  if (!isPlainObject(value) || Object.keys(value).length === 0) return '<none>';
  return Object.entries(value)
    .map(([k, v]) => `${k}=${str(v)}`)
    .join(',');
}

const PRINTERS: Readonly<Record<string, Printer>> = {
  nodes: {
    columns: [
      NAME,
      column('Status', 'The status of the node'),
      column('Roles', 'The roles of the node'),
      AGE,
      column('Version', 'Kubelet Version reported by the node.'),
      wide(column('Internal-IP', 'List of internal IPs.')),
      wide(column('External-IP', 'List of external IPs.')),
      wide(column('OS-Image', 'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).')),
      wide(column('Kernel-Version', "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).")),
      wide(column('Container-Runtime', 'Container Runtime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).')),
    ],
    cells: (node, now) => [
      node.metadata.name,
      nodeStatus(node),
      nodeRoles(node),
      since(node.metadata.creationTimestamp, now),
      str(readPath(node, 'status.nodeInfo.kubeletVersion')),
      nodeAddress(node, 'InternalIP'),
      nodeAddress(node, 'ExternalIP'),
      str(readPath(node, 'status.nodeInfo.osImage'), '<unknown>'),
      str(readPath(node, 'status.nodeInfo.kernelVersion'), '<unknown>'),
      str(readPath(node, 'status.nodeInfo.containerRuntimeVersion'), '<unknown>'),
    ],
  },
  pods: {
    columns: [
      NAME,
      column('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
      column('Status', 'The aggregate status of the containers in this pod.'),
      column('Restarts', 'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.'),
      AGE,
      wide(column('IP', 'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.')),
      wide(column('Node', 'NodeName is a request to schedule this pod onto a specific node.')),
      wide(column('Nominated Node', 'nominatedNodeName is set when this pod preempts other pods on the node.')),
      wide(column('Readiness Gates', 'If specified, all readiness gates will be evaluated for pod readiness.')),
    ],
    cells: (pod, now) => {
      const statuses = list(readPath(pod, 'status.containerStatuses'));
      const total = list(readPath(pod, 'spec.containers')).length;
      const ready = statuses.filter((s) => s.ready === true).length;
      return [
        pod.metadata.name,
        `${ready}/${total}`,
        podStatus(pod),
        podRestarts(pod, now),
        since(pod.metadata.creationTimestamp, now),
        str(readPath(pod, 'status.podIP'), '<none>'),
        str(readPath(pod, 'spec.nodeName'), '<none>'),
        str(readPath(pod, 'status.nominatedNodeName'), '<none>'),
        list(readPath(pod, 'spec.readinessGates')).length === 0 ? '<none>' : `${list(readPath(pod, 'spec.readinessGates')).length}`,
      ];
    },
  },
  'jobs.batch': {
    columns: [
      NAME,
      column('Status', 'Status of the job.'),
      column('Completions', 'The completion status of the job, as succeeded/desired.'),
      column('Duration', 'Time required to complete the job.'),
      AGE,
      wide(column('Containers', 'Names of each container in the template.')),
      wide(column('Images', 'Images referenced by each container in the template.')),
      wide(column('Selector', 'Selector is a label query over pods that should match the pod count.')),
    ],
    cells: (job, now) => {
      const template = containers(readPath(job, 'spec.template.spec'));
      return [
        job.metadata.name,
        jobStatus(job),
        jobCompletions(job),
        jobDuration(job, now),
        since(job.metadata.creationTimestamp, now),
        template.names,
        template.images,
        selectorText(readPath(job, 'spec.selector')),
      ];
    },
  },
  events: {
    columns: [
      column('Last Seen', 'The time of the last occurrence of the event.'),
      column('Type', 'Type of this event (Normal, Warning), new types could be added in the future.'),
      column('Reason', 'This should be a short, machine understandable string that gives the reason for the transition into the object\'s current status.'),
      column('Object', 'The object that this event is about.'),
      wide(column('Subobject', 'The subobject (a field path) the event is about.')),
      wide(column('Source', 'The component reporting this event.')),
      column('Message', 'A human-readable description of the status of this operation.'),
      wide(column('First Seen', 'The time at which the event was first recorded.')),
      wide(column('Count', 'The number of times this event has occurred.', { type: 'integer' })),
      wide(column('Name', 'Name must be unique within a namespace.', { format: 'name' })),
    ],
    cells: (event, now) => {
      const e = event as Record<string, unknown>;
      const last = since(e.lastTimestamp ?? e.eventTime ?? event.metadata.creationTimestamp, now);
      const first = since(e.firstTimestamp ?? e.eventTime ?? event.metadata.creationTimestamp, now);
      const count = num(e.count);
      return [
        count > 1 ? `${last} (x${count} over ${first})` : last,
        str(e.type),
        str(e.reason),
        `${str(readPath(e, 'involvedObject.kind')).toLowerCase()}/${str(readPath(e, 'involvedObject.name'))}`,
        str(readPath(e, 'involvedObject.fieldPath')),
        str(readPath(e, 'source.component')) || str(e.reportingComponent),
        str(e.message),
        first,
        count,
        event.metadata.name,
      ];
    },
  },
  'leases.coordination.k8s.io': {
    columns: [NAME, column('Holder', 'The holder of the lease.'), AGE],
    cells: (lease, now) => [lease.metadata.name, str(readPath(lease, 'spec.holderIdentity')), since(lease.metadata.creationTimestamp, now)],
  },
  namespaces: {
    columns: [NAME, column('Status', 'The status of the namespace'), AGE],
    cells: (ns, now) => [ns.metadata.name, str(readPath(ns, 'status.phase')), since(ns.metadata.creationTimestamp, now)],
  },
  configmaps: {
    columns: [NAME, column('Data', 'Data contains the configuration data.', { type: 'integer' }), AGE],
    cells: (cm, now) => [
      cm.metadata.name,
      Object.keys(isPlainObject(cm.data) ? cm.data : {}).length + Object.keys(isPlainObject(cm.binaryData) ? cm.binaryData : {}).length,
      since(cm.metadata.creationTimestamp, now),
    ],
  },
  serviceaccounts: {
    columns: [NAME, column('Secrets', 'Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.', { type: 'integer' }), AGE],
    cells: (sa, now) => [sa.metadata.name, list(readPath(sa, 'secrets')).length, since(sa.metadata.creationTimestamp, now)],
  },
  'poddisruptionbudgets.policy': {
    columns: [
      NAME,
      column('Min Available', 'The minimum number of pods that must be available.'),
      column('Max Unavailable', 'The maximum number of pods that may be unavailable.'),
      column('Allowed Disruptions', 'Calculated number of pods that may be disrupted at this time.', { type: 'integer' }),
      AGE,
    ],
    cells: (pdb, now) => [
      pdb.metadata.name,
      str(readPath(pdb, 'spec.minAvailable'), 'N/A'),
      str(readPath(pdb, 'spec.maxUnavailable'), 'N/A'),
      num(readPath(pdb, 'status.disruptionsAllowed')),
      since(pdb.metadata.creationTimestamp, now),
    ],
  },
  'daemonsets.apps': {
    columns: [
      NAME,
      column('Desired', 'The desired number of nodes that should be running the daemon pod.', { type: 'integer' }),
      column('Current', 'The number of nodes that are running at least 1 daemon pod.', { type: 'integer' }),
      column('Ready', 'The number of nodes that should be running the daemon pod and have one or more running and ready.', { type: 'integer' }),
      column('Up-to-date', 'The total number of nodes that are running updated daemon pod.', { type: 'integer' }),
      column('Available', 'The number of nodes that should be running the daemon pod and have one or more running and available.', { type: 'integer' }),
      column('Node Selector', 'NodeSelector is a selector which must be true for the pod to fit on a node.'),
      AGE,
      wide(column('Containers', 'Names of each container in the template.')),
      wide(column('Images', 'Images referenced by each container in the template.')),
      wide(column('Selector', 'A label query over pods that are managed by the daemon set.')),
    ],
    cells: (ds, now) => {
      const template = containers(readPath(ds, 'spec.template.spec'));
      return [
        ds.metadata.name,
        num(readPath(ds, 'status.desiredNumberScheduled')),
        num(readPath(ds, 'status.currentNumberScheduled')),
        num(readPath(ds, 'status.numberReady')),
        num(readPath(ds, 'status.updatedNumberScheduled')),
        num(readPath(ds, 'status.numberAvailable')),
        mapText(readPath(ds, 'spec.template.spec.nodeSelector')),
        since(ds.metadata.creationTimestamp, now),
        template.names,
        template.images,
        selectorText(readPath(ds, 'spec.selector')),
      ];
    },
  },
  'replicasets.apps': {
    columns: [
      NAME,
      column('Desired', 'Number of desired pods.', { type: 'integer' }),
      column('Current', 'Number of actual replicas.', { type: 'integer' }),
      column('Ready', 'The number of ready replicas for this replica set.', { type: 'integer' }),
      AGE,
    ],
    cells: (rs, now) => [
      rs.metadata.name,
      num(readPath(rs, 'spec.replicas') ?? 1),
      num(readPath(rs, 'status.replicas')),
      num(readPath(rs, 'status.readyReplicas')),
      since(rs.metadata.creationTimestamp, now),
    ],
  },
};

const DEFAULT_PRINTER: Printer = {
  columns: [NAME, AGE],
  cells: (obj, now) => [obj.metadata.name, since(obj.metadata.creationTimestamp, now)],
};

function printerFor(type: ResourceType): Printer {
  return PRINTERS[type.group === '' ? type.plural : `${type.plural}.${type.group}`] ?? DEFAULT_PRINTER;
}

export interface TableOptions {
  now: number;
  includeObject: IncludeObject;
  /** Watch events after the first leave the columns out, as the server does; kubectl reuses the last ones. */
  withColumns: boolean;
  resourceVersion?: string;
}

export function toTable(type: ResourceType, objects: readonly KubeObject[], options: TableOptions): Table {
  const printer = printerFor(type);
  const table: Table = {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: options.resourceVersion === undefined ? {} : { resourceVersion: options.resourceVersion },
    columnDefinitions: options.withColumns ? printer.columns : [],
    rows: objects.map((obj) => {
      const row: TableRow = { cells: printer.cells(obj, options.now) };
      if (options.includeObject === 'Object') row.object = obj;
      else if (options.includeObject === 'Metadata') row.object = { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
      return row;
    }),
  };
  return table;
}
