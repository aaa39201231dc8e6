/**
 * What the API server's decoder refuses: an object whose fields have the wrong JSON types for its kind (labels that
 * are not a map, `spec.unschedulable: "yes"`, `leaseDurationSeconds: "sixty"`), checked against the upstream OpenAPI
 * schema of the kind as the `kubernetes-models` package ships it (generated from Kubernetes' own OpenAPI document;
 * nothing here is hand-written), and MicroTime values that are not RFC 3339 with exactly six fractional digits, as
 * metav1.MicroTime's decoder insists (`time.Parse(RFC3339Micro, ...)`), which the schema's `date-time` does not say.
 *
 * The model of a kind is found from its apiVersion and kind alone (`kubernetes-models/<group>/<version>/<Kind>`, core
 * as `v1/<Kind>`), so a resource added to the registry is checked without a line here; a kind the package does not
 * ship (a CRD) is decoded as the server decodes an unstructured object: anything that is JSON goes.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { KubeObject } from './objects.ts';
import { readPath } from './objects.ts';

interface SchemaError {
  instancePath: string;
  keyword: string;
  message?: string;
}

/**
 * The schema keywords a Go decoder enforces: JSON types, and formats (a time that does not parse, an int32 out of
 * range). `required` and `enum` are left to validation, which upstream writes per kind (validation.ts): the decoder
 * accepts a container status without imageID, and so does the server.
 */
const DECODER_KEYWORDS = new Set(['type', 'format']);

type Validator = (object: KubeObject) => SchemaError[];

// The package is ESM-only; require() of ES modules (Node >= 22.12) loads one kind's model synchronously, so the
// synchronous store can check a write without first awaiting an import of every kind.
const require = createRequire(import.meta.url);
const validators = new Map<string, Validator | null>();

function modelPath(group: string, version: string, kind: string): string {
  return group === '' ? `kubernetes-models/${version}/${kind}` : `kubernetes-models/${group}/${version}/${kind}`;
}

function validatorFor(group: string, version: string, kind: string): Validator | null {
  const key = `${group}/${version}/${kind}`;
  const known = validators.get(key);
  if (known !== undefined) return known;
  let validator: Validator | null = null;
  try {
    const module = require(fileURLToPath(import.meta.resolve(modelPath(group, version, kind)))) as Record<string, unknown>;
    const Model = module[kind] as (new (data: unknown) => { validate(): void }) | undefined;
    if (typeof Model === 'function') {
      validator = (object) => {
        try {
          new Model(object).validate();
          return [];
        } catch (error) {
          const errors = (error as { errors?: SchemaError[] }).errors;
          if (Array.isArray(errors)) return errors;
          throw error;
        }
      };
    }
  } catch {
    validator = null;
  }
  validators.set(key, validator);
  return validator;
}

/** MicroTime fields per kind (Go's metav1.MicroTime): the schema calls them date-time; the decoder wants RFC3339Micro. */
const MICRO_TIME_FIELDS: Record<string, readonly string[]> = {
  'coordination.k8s.io/Lease': ['spec.acquireTime', 'spec.renewTime'],
  '/Event': ['eventTime', 'series.lastObservedTime'],
  'events.k8s.io/Event': ['eventTime', 'series.lastObservedTime'],
};

const RFC3339_MICRO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$/;

/** The Go path of a JSON pointer: `/spec/taints/0/key` → `spec.taints[0].key`. */
function fieldPath(pointer: string): string {
  return pointer
    .split('/')
    .filter((p) => p !== '')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((path, part) => (/^\d+$/.test(part) ? `${path}[${part}]` : path === '' ? part : `${path}.${part}`), '');
}

/**
 * Why the server could not decode the object as its kind, in one line (`spec.unschedulable: must be boolean`), or
 * undefined when it decodes.
 */
export function decodeError(group: string, version: string, kind: string, object: KubeObject): string | undefined {
  const problems: string[] = [];
  const validator = validatorFor(group, version, kind);
  if (validator) {
    for (const error of validator(object)) if (DECODER_KEYWORDS.has(error.keyword)) problems.push(`${fieldPath(error.instancePath) || '(root)'}: ${error.message ?? 'is invalid'}`);
  }
  for (const path of MICRO_TIME_FIELDS[`${group}/${kind}`] ?? []) {
    const value = readPath(object, path);
    if (typeof value === 'string' && !RFC3339_MICRO.test(value)) {
      problems.push(`${path}: parsing time ${JSON.stringify(value)} as "2006-01-02T15:04:05.000000Z07:00": not RFC 3339 with six fractional digits`);
    }
  }
  return problems.length === 0 ? undefined : [...new Set(problems)].join(', ');
}

// ---------------------------------------------------------------------------------------------------------------
// Unknown fields

/**
 * The fields a Go type has, by JSON name, with their types as @kubernetes/client-node's models name them (generated
 * from the same upstream OpenAPI document): `V1ObjectMeta`, `Array<V1Container>`, `{ [key: string]: string; }`,
 * or a leaf (`string`, `number`, `boolean`, `Date`, `IntOrString`, `any`, `object`). The models are loaded one by one
 * as they are met (each is a module of its own), like the kubernetes-models validators above.
 */
const LEAF_TYPES = new Set(['string', 'number', 'boolean', 'Date', 'IntOrString', 'any', 'object']);
const modelFields = new Map<string, Map<string, string> | null>();

function fieldsOfModel(name: string): Map<string, string> | null {
  const known = modelFields.get(name);
  if (known !== undefined) return known;
  let fields: Map<string, string> | null = null;
  if (/^[A-Za-z0-9]+$/.test(name) && !LEAF_TYPES.has(name)) {
    try {
      const module = require(fileURLToPath(import.meta.resolve(`@kubernetes/client-node/dist/gen/models/${name}.js`))) as Record<string, unknown>;
      const Model = module[name] as { getAttributeTypeMap?: () => Array<{ baseName: string; type: string }> } | undefined;
      if (typeof Model?.getAttributeTypeMap === 'function') fields = new Map(Model.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
    } catch {
      fields = null;
    }
  }
  modelFields.set(name, fields);
  return fields;
}

/** The model of a served kind: `V1ConfigMap`, or with its group's prefix where names clash (`CoreV1Event`). */
function modelOfKind(group: string, version: string, kind: string): string | undefined {
  const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
  const prefix = group === '' ? 'Core' : capital(group.split('.')[0]!);
  return [`${capital(version)}${kind}`, `${prefix}${capital(version)}${kind}`].find((name) => fieldsOfModel(name) !== null);
}

function dropUnknown(value: unknown, type: string, path: string, found: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const array = /^Array<(.+)>$/.exec(type);
  if (array) {
    if (Array.isArray(value)) value.forEach((item, i) => dropUnknown(item, array[1]!, `${path}[${i}]`, found));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  const object = value as Record<string, unknown>;
  if (map) {
    if (!Array.isArray(value)) for (const key of Object.keys(object)) dropUnknown(object[key], map[1]!, `${path}.${key}`, found);
    return;
  }
  const fields = fieldsOfModel(type);
  if (fields === null || Array.isArray(value)) return;
  for (const key of Object.keys(object)) {
    const fieldPath = path === '' ? key : `${path}.${key}`;
    const fieldType = fields.get(key);
    if (fieldType === undefined) {
      found.push(fieldPath);
      delete object[key];
    } else {
      dropUnknown(object[key], fieldType, fieldPath, found);
    }
  }
}

/**
 * What the decoder does with the fields of an object its Go type does not have: it drops them, and in strict mode
 * (fieldValidation Strict or Warn) names them, as sigs.k8s.io/json's strict decoding names them: the path from the
 * top, `metadata.labelz`, `spec.template.spec.containers[0].imagePullPolize`, in the order they appear. Removes them
 * from `object` and returns their paths; a kind without a model (a custom resource) is decoded as unstructured, so
 * nothing of it is unknown.
 */
export function dropUnknownFields(group: string, version: string, kind: string, object: KubeObject): string[] {
  const model = modelOfKind(group, version, kind);
  const found: string[] = [];
  if (model !== undefined) dropUnknown(object, model, '', found);
  return found;
}
