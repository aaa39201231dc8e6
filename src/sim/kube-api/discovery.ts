/**
 * API discovery in its legacy form (/api, /apis, /api/v1, /apis/<group>/<version>). kubectl asks for the aggregated
 * form first and falls back to this one when the answer is plain application/json. The pods/eviction entry names
 * group policy and version v1, which is what kubectl drain's CheckEvictionSupport looks for.
 */
import { apiVersionOf, type ResourceRegistry, type ResourceType } from './resources.ts';

export interface VersionInfo {
  major: string;
  minor: string;
  gitVersion: string;
  gitCommit: string;
  gitTreeState: string;
  buildDate: string;
  goVersion: string;
  compiler: string;
  platform: string;
}

export function versionInfo(gitVersion: string): VersionInfo {
  const [, major = '1', minor = '32'] = /^v(\d+)\.(\d+)/.exec(gitVersion) ?? [];
  return {
    major,
    minor,
    gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2025-01-01T00:00:00Z',
    goVersion: 'go1.23.8',
    compiler: 'gc',
    platform: 'linux/amd64',
  };
}

export function apiVersions(serverAddress: string): unknown {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
}

function apiGroup(name: string, versions: string[]): unknown {
  const entries = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
  return { name, versions: entries, preferredVersion: entries[0] };
}

export function apiGroupList(registry: ResourceRegistry): unknown {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...registry.groups()].map(([name, versions]) => apiGroup(name, versions)) };
}

export function apiGroupDocument(registry: ResourceRegistry, group: string): unknown | undefined {
  const versions = registry.groups().get(group);
  return versions === undefined ? undefined : { kind: 'APIGroup', apiVersion: 'v1', ...(apiGroup(group, versions) as object) };
}

function resourceEntries(type: ResourceType): unknown[] {
  const main: Record<string, unknown> = {
    name: type.plural,
    singularName: type.singular,
    namespaced: type.namespaced,
    kind: type.kind,
    verbs: type.verbs,
  };
  if (type.shortNames.length > 0) main.shortNames = type.shortNames;
  if (type.categories.length > 0) main.categories = type.categories;
  const subresources = type.subresources.map((sub) => {
    const entry: Record<string, unknown> = { name: `${type.plural}/${sub.name}`, singularName: '', namespaced: type.namespaced };
    if (sub.group !== undefined) entry.group = sub.group;
    if (sub.version !== undefined) entry.version = sub.version;
    entry.kind = sub.kind;
    entry.verbs = sub.verbs;
    return entry;
  });
  return [main, ...subresources];
}

export function apiResourceList(registry: ResourceRegistry, group: string, version: string): unknown | undefined {
  const types = registry.inGroupVersion(group, version);
  if (types.length === 0) return undefined;
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersionOf(types[0]!), resources: types.flatMap(resourceEntries) };
}
