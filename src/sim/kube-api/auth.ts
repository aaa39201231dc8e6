/**
 * Bearer-token authentication and RBAC authorization, with the real server's 401 and 403 answers. The 403 message
 * is the RBAC authorizer's, word for word, because operators (and our adapter's error messages) quote it.
 */
import type { UserInfo } from './hooks.ts';
import type { Verb } from './resources.ts';
import { forbidden, unauthorized, type StatusError } from './status.ts';

/** An RBAC PolicyRule. `resources` may name subresources (`pods/eviction`, `*\/status`); '*' matches anything. */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: (Verb | '*')[];
  resourceNames?: string[];
}

export interface TokenGrant {
  user: string;
  groups?: string[];
  /** Without rules the user may do anything (cluster-admin). */
  rules?: PolicyRule[];
}

export interface Principal {
  user: UserInfo;
  rules: PolicyRule[] | undefined;
}

const ANONYMOUS: Principal = { user: { name: 'system:anonymous', groups: ['system:unauthenticated'] }, rules: undefined };

/** Who is asking; a StatusError 401 for a missing or unknown token when tokens are configured. */
export function authenticate(tokens: Readonly<Record<string, TokenGrant>> | undefined, authorization: string | undefined): Principal | StatusError {
  if (tokens === undefined) return ANONYMOUS;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  const grant = match ? tokens[match[1]!] : undefined;
  if (!grant) return unauthorized();
  return { user: { name: grant.user, groups: [...(grant.groups ?? []), 'system:authenticated'] }, rules: grant.rules };
}

export interface Attributes {
  verb: Verb;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(a.verb)) return false;
  const groups = rule.apiGroups ?? [];
  if (!groups.includes('*') && !groups.includes(a.group)) return false;
  const resources = rule.resources ?? [];
  const combined = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  const resourceMatches = resources.some((r) => r === '*' || r === combined || (a.subresource !== undefined && r === `*/${a.subresource}`));
  if (!resourceMatches) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (a.name !== undefined && a.name !== '' && names.includes(a.name));
}

/** undefined when allowed; otherwise the 403 the RBAC authorizer gives. */
export function authorize(principal: Principal, a: Attributes): StatusError | undefined {
  if (principal.rules === undefined || principal.rules.some((rule) => ruleAllows(rule, a))) return undefined;
  const resource = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  const scope = a.namespace === undefined ? 'at the cluster scope' : `in the namespace ${JSON.stringify(a.namespace)}`;
  const why = `User ${JSON.stringify(principal.user.name)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.group)} ${scope}`;
  return forbidden({ group: a.group, resource: a.resource }, a.name ?? '', why);
}
