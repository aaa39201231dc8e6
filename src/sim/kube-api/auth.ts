/**
 * Bearer-token authentication and RBAC authorization, with the real server's 401 and 403 answers. The 403 message
 * is the RBAC authorizer's, word for word, because operators (and our adapter's error messages) quote it.
 * SelfSubjectAccessReviews are answered by the same rule matching, so `kubectl auth can-i` and the adapter's
 * up-front permission check say exactly what a request would meet.
 */
import type { UserInfo } from './hooks.ts';
import { isPlainObject } from './objects.ts';
import type { Verb } from './resources.ts';
import { badRequest, forbidden, invalid, invalidField, unauthorized, type StatusError } from './status.ts';

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
  /** A review may ask about any verb (`use`, `escalate`, `*`); requests only ever carry a Verb. */
  verb: Verb | (string & {});
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  const verbs: readonly string[] = rule.verbs;
  if (!verbs.includes('*') && !verbs.includes(a.verb)) return false;
  const groups = rule.apiGroups ?? [];
  if (!groups.includes('*') && !groups.includes(a.group)) return false;
  const resources = rule.resources ?? [];
  const combined = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  const resourceMatches = resources.some((r) => r === '*' || r === combined || (a.subresource !== undefined && r === `*/${a.subresource}`));
  if (!resourceMatches) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (a.name !== undefined && a.name !== '' && names.includes(a.name));
}

/** What lets the principal do it: the first matching rule, 'unrestricted' for a principal without rules, or nothing. */
function grantOf(principal: Principal, a: Attributes): PolicyRule | 'unrestricted' | undefined {
  if (principal.rules === undefined) return 'unrestricted';
  return principal.rules.find((rule) => ruleAllows(rule, a));
}

function denialReason(principal: Principal, a: Attributes): string {
  const resource = a.subresource === undefined ? a.resource : `${a.resource}/${a.subresource}`;
  const scope = a.namespace === undefined ? 'at the cluster scope' : `in the namespace ${JSON.stringify(a.namespace)}`;
  return `User ${JSON.stringify(principal.user.name)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.group)} ${scope}`;
}

/** undefined when allowed; otherwise the 403 the RBAC authorizer gives. */
export function authorize(principal: Principal, a: Attributes): StatusError | undefined {
  if (grantOf(principal, a) !== undefined) return undefined;
  return forbidden({ group: a.group, resource: a.resource }, a.name ?? '', denialReason(principal, a));
}

interface AccessReviewStatus {
  allowed: boolean;
  /** Set only on a refusal: this server is the only authorizer, so its "no" is final rather than "no opinion". */
  denied?: true;
  reason: string;
}

const REVIEW_GROUP = 'authorization.k8s.io';
const REVIEW_KIND = 'SelfSubjectAccessReview';

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * The answer to a SelfSubjectAccessReview (the body a client POSTs): the review with its status. Every authenticated
 * user may ask, as the system:basic-user ClusterRole allows on a real server, so asking needs no rule of its own.
 */
export function reviewAccess(principal: Principal, body: unknown): Record<string, unknown> {
  const review = isPlainObject(body) ? body : {};
  if (review.kind !== undefined && review.kind !== REVIEW_KIND) throw badRequest(`${REVIEW_KIND} expected, got ${JSON.stringify(review.kind)}`);
  const spec = isPlainObject(review.spec) ? review.spec : {};
  const { resourceAttributes: resource, nonResourceAttributes: nonResource } = spec;
  if (isPlainObject(resource) === isPlainObject(nonResource)) {
    throw invalid(REVIEW_GROUP, REVIEW_KIND, '', [invalidField('spec.resourceAttributes', nonResource ?? null, 'exactly one of nonResourceAttributes or resourceAttributes must be specified')]);
  }
  let status: AccessReviewStatus;
  if (isPlainObject(resource)) {
    const a: Attributes = { verb: text(resource.verb), group: text(resource.group), resource: text(resource.resource) };
    if (text(resource.subresource) !== '') a.subresource = text(resource.subresource);
    if (text(resource.namespace) !== '') a.namespace = text(resource.namespace);
    if (text(resource.name) !== '') a.name = text(resource.name);
    const grant = grantOf(principal, a);
    const user = JSON.stringify(principal.user.name);
    if (grant === 'unrestricted') status = { allowed: true, reason: `User ${user} has no RBAC rules to limit it: full access` };
    else if (grant !== undefined) status = { allowed: true, reason: `allowed by the rule ${JSON.stringify(grant)} of User ${user}` };
    else status = { allowed: false, denied: true, reason: denialReason(principal, a) };
  } else {
    // Health, version and discovery paths are served to every authenticated user; PolicyRules here name no URLs.
    status = { allowed: true, reason: 'the sandbox serves non-resource paths to every authenticated user' };
  }
  return { kind: REVIEW_KIND, apiVersion: `${REVIEW_GROUP}/v1`, metadata: { creationTimestamp: null }, spec, status };
}
