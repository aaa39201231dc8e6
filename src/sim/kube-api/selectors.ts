/**
 * Label and field selectors with the API server's grammar and semantics (k8s.io/apimachinery/pkg/labels and
 * pkg/fields): `!=` and `notin` also match objects without the label, an empty selector matches everything.
 */
import type { KubeObject } from './objects.ts';
import type { ResourceType } from './resources.ts';
import { badRequest } from './status.ts';

export type LabelOperator = 'exists' | '!exists' | '=' | '!=' | 'in' | 'notin' | 'gt' | 'lt';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  values: string[];
}

export type LabelSelector = LabelRequirement[];

const LABEL_KEY = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

/** Splits on commas that are not inside a parenthesised value set. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

function checkKey(key: string, text: string): string {
  if (!LABEL_KEY.test(key) || key.length > 316) throw badRequest(`unable to parse requirement: invalid label key "${key}" in "${text}"`);
  return key;
}

function checkValue(value: string, text: string): string {
  if (!LABEL_VALUE.test(value) || value.length > 63) throw badRequest(`unable to parse requirement: invalid label value "${value}" in "${text}"`);
  return value;
}

const SET_REQUIREMENT = /^(\S+)\s+(in|notin)\s*\((.*)\)$/;
const BINARY_REQUIREMENT = /^([^!=<>\s]+)\s*(==|=|!=|>|<)\s*(\S*)$/;

/** Parses `a=b,c!=d,e in (f,g),!h,i`; throws a 400 StatusError as the server does for a malformed selector. */
export function parseLabelSelector(text: string | undefined): LabelSelector {
  const requirements: LabelSelector = [];
  if (text === undefined || text.trim() === '') return requirements;
  for (const raw of splitTopLevel(text)) {
    const part = raw.trim();
    if (part === '') throw badRequest(`unable to parse requirement: found ',', expected: identifier in "${text}"`);
    const set = SET_REQUIREMENT.exec(part);
    if (set) {
      const values = set[3]!.split(',').map((v) => checkValue(v.trim(), text));
      requirements.push({ key: checkKey(set[1]!, text), operator: set[2] as 'in' | 'notin', values });
      continue;
    }
    if (part.startsWith('!')) {
      requirements.push({ key: checkKey(part.slice(1).trim(), text), operator: '!exists', values: [] });
      continue;
    }
    const binary = BINARY_REQUIREMENT.exec(part);
    if (binary) {
      const op = binary[2]!;
      const value = checkValue(binary[3]!, text);
      if ((op === '>' || op === '<') && !/^-?\d+$/.test(value)) {
        throw badRequest(`unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer in "${text}"`);
      }
      const operator: LabelOperator = op === '!=' ? '!=' : op === '>' ? 'gt' : op === '<' ? 'lt' : '=';
      requirements.push({ key: checkKey(binary[1]!, text), operator, values: [value] });
      continue;
    }
    requirements.push({ key: checkKey(part, text), operator: 'exists', values: [] });
  }
  return requirements;
}

export function matchesLabels(selector: LabelSelector, labels: Readonly<Record<string, string>> | undefined): boolean {
  for (const { key, operator, values } of selector) {
    const value = labels?.[key];
    switch (operator) {
      case 'exists':
        if (value === undefined) return false;
        break;
      case '!exists':
        if (value !== undefined) return false;
        break;
      case '=':
      case 'in':
        if (value === undefined || !values.includes(value)) return false;
        break;
      case '!=':
      case 'notin':
        if (value !== undefined && values.includes(value)) return false;
        break;
      case 'gt':
      case 'lt': {
        if (value === undefined || !/^-?\d+$/.test(value)) return false;
        const n = Number(value);
        const bound = Number(values[0]);
        if (operator === 'gt' ? !(n > bound) : !(n < bound)) return false;
        break;
      }
    }
  }
  return true;
}

/** A metav1.LabelSelector (Job spec.selector, a PDB's selector) as requirements. */
export function labelSelectorFromSpec(spec: {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
} | undefined): LabelSelector {
  const requirements: LabelSelector = [];
  for (const [key, value] of Object.entries(spec?.matchLabels ?? {})) requirements.push({ key, operator: '=', values: [value] });
  for (const e of spec?.matchExpressions ?? []) {
    const operator: LabelOperator | undefined = ({ In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!exists' } as const)[
      e.operator as 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'
    ];
    if (!operator) throw badRequest(`"${e.operator}" is not a valid label selector operator`);
    requirements.push({ key: e.key, operator, values: e.values ?? [] });
  }
  return requirements;
}

export function formatLabelSelector(selector: LabelSelector): string {
  return selector
    .map(({ key, operator, values }) => {
      switch (operator) {
        case 'exists':
          return key;
        case '!exists':
          return `!${key}`;
        case 'in':
        case 'notin':
          return `${key} ${operator} (${values.join(',')})`;
        case 'gt':
          return `${key}>${values[0]}`;
        case 'lt':
          return `${key}<${values[0]}`;
        default:
          return `${key}${operator}${values[0]}`;
      }
    })
    .join(',');
}

export interface FieldRequirement {
  field: string;
  operator: '=' | '!=';
  value: string;
}

export type FieldSelector = FieldRequirement[];

const FIELD_REQUIREMENT = /^([^!=]+?)\s*(==|=|!=)\s*(.*)$/;

/** Parses `spec.nodeName=n1,status.phase!=Succeeded` against the fields `type` supports. */
export function parseFieldSelector(text: string | undefined, type: ResourceType): FieldSelector {
  const requirements: FieldSelector = [];
  if (text === undefined || text.trim() === '') return requirements;
  for (const raw of text.split(',')) {
    const match = FIELD_REQUIREMENT.exec(raw.trim());
    if (!match) throw badRequest(`invalid selector: '${text}'; can't understand '${raw}'`);
    const field = match[1]!.trim();
    if (field !== 'metadata.name' && field !== 'metadata.namespace' && !(field in type.fields)) {
      throw badRequest(`field label not supported: ${field}`);
    }
    requirements.push({ field, operator: match[2] === '!=' ? '!=' : '=', value: match[3]!.trim() });
  }
  return requirements;
}

export function fieldValue(type: ResourceType, obj: KubeObject, field: string): string {
  if (field === 'metadata.name') return obj.metadata.name ?? '';
  if (field === 'metadata.namespace') return obj.metadata.namespace ?? '';
  return type.fields[field]?.(obj) ?? '';
}

export function matchesFields(selector: FieldSelector, type: ResourceType, obj: KubeObject): boolean {
  for (const { field, operator, value } of selector) {
    const actual = fieldValue(type, obj, field);
    if ((actual === value) !== (operator === '=')) return false;
  }
  return true;
}
