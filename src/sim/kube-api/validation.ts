/**
 * Upstream's semantic validation for what patchpilot and kubectl write, with upstream's messages (apimachinery's
 * pkg/util/validation and pkg/api/validation, kubernetes' pkg/apis/core/validation/events.go, pkg/apis/coordination
 * /validation, ValidateNode/ValidateNodeUpdate): label and annotation keys and values, the total annotation size,
 * the namespace an Event may live in, a Lease's numbers, a Node's taints and its write-once spec fields, a ConfigMap's keys and size. Types are the
 * decoder's business (schema.ts); this is what a well-typed object can still get wrong (422 Invalid).
 */
import { dns1123SubdomainError, isPlainObject, type KubeObject } from './objects.ts';
import type { ResourceType } from './resources.ts';
import {
  duplicateField,
  forbiddenField,
  invalidField,
  notSupportedField,
  requiredField,
  tooLongField,
  type FieldError,
} from './status.ts';

const QUALIFIED_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUALIFIED_NAME_MAX = 63;
const QUALIFIED_NAME_FORMAT = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
/** apimachinery's TotalAnnotationSizeLimitB: 256 KiB over all keys and values. */
export const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;

/** validation.IsQualifiedName: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63 characters. */
export function qualifiedNameErrors(value: string): string[] {
  const parts = value.split('/');
  let name: string;
  const errors: string[] = [];
  if (parts.length === 1) {
    name = parts[0]!;
  } else if (parts.length === 2) {
    const prefix = parts[0]!;
    name = parts[1]!;
    if (prefix.length === 0) errors.push('prefix part must be non-empty');
    else {
      const problem = dns1123SubdomainError(prefix);
      if (problem) errors.push(`prefix part ${problem}`);
    }
  } else {
    return [
      "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    ];
  }
  if (name.length === 0) errors.push('name part must be non-empty');
  else if (name.length > QUALIFIED_NAME_MAX) errors.push(`name part must be no more than ${QUALIFIED_NAME_MAX} characters`);
  if (name.length > 0 && !QUALIFIED_NAME.test(name)) errors.push(QUALIFIED_NAME_FORMAT);
  return errors;
}

/** validation.IsValidLabelValue. */
export function labelValueErrors(value: string): string[] {
  const errors: string[] = [];
  if (value.length > QUALIFIED_NAME_MAX) errors.push(`must be no more than ${QUALIFIED_NAME_MAX} characters`);
  if (!LABEL_VALUE.test(value)) {
    errors.push(
      "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
    );
  }
  return errors;
}

/** ValidateLabels and ValidateAnnotations of ObjectMeta. */
export function metadataErrors(object: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const { labels, annotations } = object.metadata;
  for (const [key, value] of Object.entries(labels ?? {})) {
    for (const message of qualifiedNameErrors(key)) errors.push(invalidField('metadata.labels', key, message));
    if (typeof value === 'string') for (const message of labelValueErrors(value)) errors.push(invalidField('metadata.labels', value, message));
  }
  let size = 0;
  for (const [key, value] of Object.entries(annotations ?? {})) {
    for (const message of qualifiedNameErrors(key.toLowerCase())) errors.push(invalidField('metadata.annotations', key, message));
    size += Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
  }
  if (size > TOTAL_ANNOTATION_SIZE_LIMIT) errors.push(tooLongField('metadata.annotations', TOTAL_ANNOTATION_SIZE_LIMIT));
  return errors;
}

const str = (value: unknown): string => (typeof value === 'string' ? value : '');

/**
 * legacyValidateEvent (what every Event passes, core/v1 included): an Event about a cluster-scoped object (a Node)
 * without eventTime lives in `default` (or nowhere); with eventTime in `default` or `kube-system`, and then it needs
 * reportingController, reportingInstance, action and reason. An Event about a namespaced object lives in its namespace.
 */
export function legacyEventErrors(event: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const involved = isPlainObject(event.involvedObject) ? event.involvedObject : {};
  const involvedNamespace = str(involved.namespace);
  const namespace = event.metadata.namespace ?? '';
  const mismatch = () => errors.push(invalidField('involvedObject.namespace', involvedNamespace, 'does not match event.namespace'));
  if (event.eventTime === undefined || event.eventTime === null) {
    if (involvedNamespace === '') {
      if (namespace !== '' && namespace !== 'default') mismatch();
    } else if (namespace !== involvedNamespace) {
      mismatch();
    }
  } else {
    if (involvedNamespace === '' && namespace !== 'default' && namespace !== 'kube-system') mismatch();
    const controller = str(event.reportingComponent ?? event.reportingController);
    if (controller === '') errors.push(requiredField('reportingController', ''));
    else for (const message of qualifiedNameErrors(controller)) errors.push(invalidField('reportingController', controller, message));
    const instance = str(event.reportingInstance);
    if (instance === '') errors.push(requiredField('reportingInstance', ''));
    if (instance.length > 128) errors.push(invalidField('reportingInstance', '', 'can have at most 128 characters'));
    const action = str(event.action);
    if (action === '') errors.push(requiredField('action', ''));
    if (action.length > 128) errors.push(invalidField('action', '', 'can have at most 128 characters'));
    const reason = str(event.reason);
    if (reason === '') errors.push(requiredField('reason', ''));
    if (reason.length > 128) errors.push(invalidField('reason', '', 'can have at most 128 characters'));
    if (str(event.message).length > 1024) errors.push(invalidField('message', '', 'can have at most 1024 characters'));
  }
  const problem = namespace === '' ? undefined : dns1123SubdomainError(namespace);
  if (problem) errors.push(invalidField('namespace', namespace, problem));
  return errors;
}

/** ValidateLeaseSpec. */
export function leaseErrors(lease: KubeObject): FieldError[] {
  const errors: FieldError[] = [];
  const spec = isPlainObject(lease.spec) ? lease.spec : {};
  if (typeof spec.leaseDurationSeconds === 'number' && spec.leaseDurationSeconds <= 0) {
    errors.push(invalidField('spec.leaseDurationSeconds', spec.leaseDurationSeconds, 'must be greater than 0'));
  }
  if (typeof spec.leaseTransitions === 'number' && spec.leaseTransitions < 0) {
    errors.push(invalidField('spec.leaseTransitions', spec.leaseTransitions, 'must be greater than or equal to 0'));
  }
  return errors;
}

const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;

/** ValidateNode's taints, and ValidateNodeUpdate's write-once podCIDR and providerID. */
export function nodeErrors(node: KubeObject, old: KubeObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const spec = isPlainObject(node.spec) ? node.spec : {};
  const seen = new Set<string>();
  (Array.isArray(spec.taints) ? spec.taints : []).forEach((taint: unknown, i) => {
    if (!isPlainObject(taint)) return;
    const path = `spec.taints[${i}]`;
    const key = str(taint.key);
    for (const message of qualifiedNameErrors(key)) errors.push(invalidField(`${path}.key`, key, message));
    const value = str(taint.value);
    for (const message of labelValueErrors(value)) errors.push(invalidField(`${path}.value`, value, message));
    const effect = str(taint.effect);
    if (effect === '') errors.push(requiredField(`${path}.effect`, ''));
    else if (!(TAINT_EFFECTS as readonly string[]).includes(effect)) errors.push(notSupportedField(`${path}.effect`, effect, TAINT_EFFECTS));
    const pair = `${key}\u0000${effect}`;
    if (seen.has(pair)) errors.push(duplicateField(path, taint));
    seen.add(pair);
  });
  if (old !== undefined) {
    const before = isPlainObject(old.spec) ? old.spec : {};
    if (str(before.podCIDR) !== '' && str(spec.podCIDR) !== str(before.podCIDR)) {
      errors.push(forbiddenField('spec.podCIDRs', 'node updates may not change podCIDR except from "" to valid'));
    }
    if (str(before.providerID) !== '' && str(spec.providerID) !== str(before.providerID)) {
      errors.push(forbiddenField('spec.providerID', 'node updates may not change providerID except from "" to valid'));
    }
  }
  return errors;
}

const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** validation.IsConfigMapKey: what a key of a ConfigMap's or a Secret's data may be (it becomes a file name). */
export function configKeyErrors(key: string): string[] {
  const errors: string[] = [];
  if (key.length > 253) errors.push('must be no more than 253 characters');
  if (!CONFIG_KEY.test(key)) errors.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')");
  if (key === '.') errors.push("must not be '.'");
  else if (key === '..') errors.push("must not be '..'");
  else if (key.startsWith('..')) errors.push("must not start with '..'");
  return errors;
}

/** core.MaxSecretSize: what a ConfigMap's data and binaryData may hold together, 1 MiB. */
export const MAX_CONFIG_MAP_BYTES = 1024 * 1024;

/**
 * ValidateConfigMap, as upstream walks it: each key of data and of binaryData is a config key, a data key also in
 * binaryData is reported once, on the data side ("duplicate of key present in binaryData"), and the values of both
 * together (binaryData counted decoded, as the []byte it is) may hold at most core.MaxSecretSize bytes: beyond it,
 * field.TooLong(field.NewPath(""), ...), a path that renders as "[]".
 */
export function configMapErrors(object: KubeObject): FieldError[] {
  const bag = (name: string) => (isPlainObject(object[name]) ? (object[name] as Record<string, unknown>) : {});
  const data = bag('data');
  const binaryData = bag('binaryData');
  const errors: FieldError[] = [];
  for (const key of Object.keys(data)) {
    for (const message of configKeyErrors(key)) errors.push(invalidField(`data[${key}]`, key, message));
    if (key in binaryData) errors.push(invalidField(`data[${key}]`, key, 'duplicate of key present in binaryData'));
  }
  for (const key of Object.keys(binaryData)) {
    for (const message of configKeyErrors(key)) errors.push(invalidField(`binaryData[${key}]`, key, message));
  }
  let size = 0;
  for (const value of Object.values(data)) if (typeof value === 'string') size += Buffer.byteLength(value);
  for (const value of Object.values(binaryData)) if (typeof value === 'string') size += Buffer.byteLength(value, 'base64');
  if (size > MAX_CONFIG_MAP_BYTES) errors.push(tooLongField('[]', MAX_CONFIG_MAP_BYTES));
  return errors;
}

/** The kind-specific rules above for a resource, beyond the metadata every object shares. */
export function kindErrors(type: ResourceType, object: KubeObject, old: KubeObject | undefined): FieldError[] {
  const key = type.group === '' ? type.plural : `${type.plural}.${type.group}`;
  switch (key) {
    case 'events':
      return legacyEventErrors(object);
    case 'leases.coordination.k8s.io':
      return leaseErrors(object);
    case 'nodes':
      return nodeErrors(object, old);
    case 'configmaps':
      return configMapErrors(object);
    default:
      return [];
  }
}
