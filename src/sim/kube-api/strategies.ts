/**
 * What the API server does per resource beyond generic metadata: defaulting on create (a Job's selector and pod
 * template labels, a Pod's Pending status, an Event's timestamps) and validation (names, a Job's immutable template).
 */
import {
  dns1123LabelError,
  dns1123SubdomainError,
  isPlainObject,
  rfc3339,
  type KubeObject,
} from './objects.ts';
import type { ResourceType } from './resources.ts';
import { deepEqual } from './patch.ts';
import { forbiddenField, invalidField, requiredField, type FieldError } from './status.ts';
import { kindErrors, metadataErrors } from './validation.ts';

export interface CreateContext {
  now: number;
  /** A write by an API client, not by the simulation: the server decides the status then. */
  fromClient: boolean;
}

function record(parent: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = parent[key];
  if (isPlainObject(value)) return value;
  const created: Record<string, unknown> = {};
  parent[key] = created;
  return created;
}

/** An image without a tag, or tagged latest, defaults to imagePullPolicy Always. */
function pullsAlways(image: unknown): boolean {
  if (typeof image !== 'string' || image.includes('@')) return false;
  const tag = /:([^/:]+)$/.exec(image)?.[1];
  return tag === undefined || tag === 'latest';
}

function defaultPodSpec(spec: Record<string, unknown>): void {
  spec.restartPolicy ??= 'Always';
  spec.terminationGracePeriodSeconds ??= 30;
  spec.dnsPolicy ??= 'ClusterFirst';
  spec.schedulerName ??= 'default-scheduler';
  spec.securityContext ??= {};
  for (const container of Array.isArray(spec.containers) ? spec.containers : []) {
    if (!isPlainObject(container)) continue;
    container.terminationMessagePath ??= '/dev/termination-log';
    container.terminationMessagePolicy ??= 'File';
    container.imagePullPolicy ??= pullsAlways(container.image) ? 'Always' : 'IfNotPresent';
  }
}

export function applyCreateDefaults(type: ResourceType, obj: KubeObject, ctx: CreateContext): void {
  const key = type.group === '' ? type.plural : `${type.plural}.${type.group}`;
  switch (key) {
    case 'namespaces': {
      const status = record(obj, 'status');
      status.phase = 'Active';
      record(obj, 'spec').finalizers ??= ['kubernetes'];
      const labels = (obj.metadata.labels ??= {});
      labels['kubernetes.io/metadata.name'] = obj.metadata.name ?? '';
      break;
    }
    case 'pods': {
      defaultPodSpec(record(obj, 'spec'));
      if (ctx.fromClient) obj.status = { phase: 'Pending', qosClass: 'BestEffort' };
      break;
    }
    case 'events': {
      const event = obj as Record<string, unknown>;
      if (event.firstTimestamp === undefined && event.eventTime === undefined) {
        event.firstTimestamp = rfc3339(ctx.now);
        event.lastTimestamp ??= event.firstTimestamp;
      }
      event.count ??= 1;
      event.type ??= 'Normal';
      break;
    }
    case 'jobs.batch': {
      defaultJob(obj);
      if (ctx.fromClient) obj.status = {};
      break;
    }
  }
}

/** As the Job strategy's PrepareForCreate and defaulting do it, with the uid already assigned. */
function defaultJob(job: KubeObject): void {
  const spec = record(job, 'spec');
  const uid = job.metadata.uid ?? '';
  const name = job.metadata.name ?? '';
  if (spec.manualSelector !== true) {
    spec.selector = { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
    const template = record(spec, 'template');
    const meta = record(template, 'metadata');
    const labels = record(meta, 'labels');
    labels['batch.kubernetes.io/controller-uid'] = uid;
    labels['batch.kubernetes.io/job-name'] = name;
    labels['controller-uid'] = uid;
    labels['job-name'] = name;
  }
  if (spec.parallelism === undefined) {
    spec.parallelism = 1;
    spec.completions ??= 1;
  }
  spec.backoffLimit ??= 6;
  spec.completionMode ??= 'NonIndexed';
  spec.suspend ??= false;
  spec.podReplacementPolicy ??= 'TerminatingOrFailed';
  const template = record(spec, 'template');
  defaultPodSpec(record(template, 'spec'));
}

/** Validation on create and update; `old` is set for updates. */
export function validate(type: ResourceType, obj: KubeObject, old: KubeObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const name = obj.metadata.name ?? '';
  if (old === undefined) {
    if (name === '') {
      errors.push(requiredField('metadata.name', 'name or generateName is required'));
    } else {
      const problem = type.plural === 'namespaces' ? dns1123LabelError(name) : dns1123SubdomainError(name);
      if (problem) errors.push(invalidField('metadata.name', name, problem));
    }
  }
  if (old?.metadata.deletionTimestamp !== undefined) {
    const before = new Set(old.metadata.finalizers ?? []);
    const added = (obj.metadata.finalizers ?? []).filter((f) => !before.has(f));
    if (added.length > 0) {
      errors.push(forbiddenField('metadata.finalizers', `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`));
    }
  }
  errors.push(...metadataErrors(obj), ...kindErrors(type, obj, old));
  if (type.plural === 'jobs' && type.group === 'batch') errors.push(...validateJob(obj, old));
  return errors;
}

function validateJob(job: KubeObject, old: KubeObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const spec = isPlainObject(job.spec) ? job.spec : {};
  const template = isPlainObject(spec.template) ? spec.template : {};
  const podSpec = isPlainObject(template.spec) ? template.spec : {};
  const containers = podSpec.containers;
  if (!Array.isArray(containers) || containers.length === 0) errors.push(requiredField('spec.template.spec.containers', ''));
  const restartPolicy = podSpec.restartPolicy;
  if (restartPolicy !== 'Never' && restartPolicy !== 'OnFailure') {
    errors.push({
      type: 'FieldValueNotSupported',
      field: 'spec.template.spec.restartPolicy',
      body: `Unsupported value: ${JSON.stringify(restartPolicy ?? '')}: supported values: "OnFailure", "Never"`,
    });
  }
  if (old !== undefined) {
    const oldSpec = isPlainObject(old.spec) ? old.spec : {};
    if (!deepEqual(spec.selector, oldSpec.selector)) errors.push(invalidField('spec.selector', spec.selector, 'field is immutable'));
    if (!deepEqual(spec.template, oldSpec.template)) errors.push(invalidField('spec.template', spec.template, 'field is immutable'));
  }
  return errors;
}
