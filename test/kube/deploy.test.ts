/** The manifests in deploy/ fit together, and the plan they ship is valid and safe to restart. */
import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { parsePlan } from '../../src/engine/plan.ts';

const DIR = resolve(import.meta.dirname, '../../deploy');
type Manifest = { kind: string; metadata: { name: string; namespace?: string }; [key: string]: any };
const read = (file: string) => parse(readFileSync(resolve(DIR, file), 'utf8')) as Manifest;

describe('deploy/', () => {
  it('kustomization lists every manifest', () => {
    const listed = (read('kustomization.yaml') as unknown as { resources: string[] }).resources.sort();
    expect(listed).toEqual(readdirSync(DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml').sort());
  });

  it('binds the ClusterRole to the service account the Deployment runs as, in os-patch', () => {
    const account = read('serviceaccount.yaml');
    const binding = read('clusterrolebinding.yaml');
    const deployment = read('deployment.yaml');
    expect(read('namespace.yaml').metadata.name).toBe('os-patch');
    expect(binding.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: read('clusterrole.yaml').metadata.name });
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: account.metadata.name, namespace: 'os-patch' }]);
    expect(deployment.spec.template.spec.serviceAccountName).toBe(account.metadata.name);
    expect(deployment.spec.template.spec.volumes).toContainEqual({ name: 'state', persistentVolumeClaim: { claimName: read('state.yaml').metadata.name } });
  });

  it('ships a valid plan with a schedule trigger (the Deployment restarts after each run; on-demand would patch again at once)', () => {
    const configMap = read('plan.yaml');
    const plan = parsePlan(parse(configMap.data['plan.yaml'] as string), 'deploy/plan.yaml');
    expect(plan.trigger.kind).not.toBe('on-demand');
    const args = read('deployment.yaml').spec.template.spec.containers[0].args as string[];
    expect(args.slice(0, 3)).toEqual(['run', '--plan', '/etc/patchpilot/plan.yaml']);
  });
});
