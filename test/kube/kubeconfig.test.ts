/** Finding credentials as kubectl does, and refusing where client-node would silently fall back to localhost:8080. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KubeConfigError } from '../../src/cluster/kube/config-error.ts';
import { loadKubeConfig } from '../../src/cluster/kube/kubeconfig.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const scratch = scratchDirs('kubeconfig');

function kubeconfig(server: string, extra = ''): string {
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: c1\n  cluster:\n    server: ${server}\n${extra}`,
    '- name: c2\n  cluster:\n    server: https://127.0.0.1:6444',
    'users:',
    '- name: u\n  user:\n    token: t',
    'contexts:',
    '- name: one\n  context:\n    cluster: c1\n    user: u',
    '- name: two\n  context:\n    cluster: c2\n    user: u',
    'current-context: one',
  ].join('\n');
}

/** The KubeConfigError `load` throws, or null when it loads. */
function refusalOf(load: () => unknown): KubeConfigError | null {
  try {
    load();
  } catch (err) {
    if (err instanceof KubeConfigError) return err;
    throw err;
  }
  return null;
}

function file(text: string): string {
  const path = join(scratch(), 'kubeconfig.yaml');
  writeFileSync(path, text);
  return path;
}

describe('loadKubeConfig', () => {
  it('refuses to guess when there is no kubeconfig anywhere', () => {
    const attempt = () => loadKubeConfig({ env: {}, home: scratch() });
    expect(attempt).toThrow(KubeConfigError);
    expect(attempt).toThrow(/no kubeconfig: KUBECONFIG is not set, .*\.kube\/config does not exist, and this is not running in a pod/);
  });

  it('takes --kubeconfig first, then KUBECONFIG, then ~/.kube/config', () => {
    const path = file(kubeconfig('https://127.0.0.1:6443'));
    expect(loadKubeConfig({ path, env: {} }).source).toBe(path);
    expect(loadKubeConfig({ env: { KUBECONFIG: path }, home: scratch() }).kubeConfig.getCurrentCluster()?.name).toBe('c1');
    const missing = join(scratch(), 'nope.yaml');
    expect(() => loadKubeConfig({ path: missing, env: {} })).toThrow(`kubeconfig ${missing} (from --kubeconfig) does not exist`);
  });

  it('switches to the context asked for, and names the ones there are when it does not exist', () => {
    const path = file(kubeconfig('https://127.0.0.1:6443'));
    expect(loadKubeConfig({ path, context: 'two', env: {} }).kubeConfig.getCurrentCluster()?.name).toBe('c2');
    try {
      loadKubeConfig({ path, context: 'three', env: {} });
      expect.unreachable();
    } catch (err) {
      expect((err as KubeConfigError).message).toBe(`context "three" is not in kubeconfig ${path}`);
      expect((err as KubeConfigError).hint).toContain('contexts in it: one, two');
    }
  });

  it('refuses plain HTTP without insecure-skip-tls-verify, as client-node would on the first request', () => {
    expect(() => loadKubeConfig({ path: file(kubeconfig('http://127.0.0.1:8080')), env: {} })).toThrow(/uses plain HTTP .* without insecure-skip-tls-verify/);
    expect(loadKubeConfig({ path: file(kubeconfig('http://127.0.0.1:8080', '    insecure-skip-tls-verify: true')), env: {} }).kubeConfig.getCurrentCluster()?.server).toBe(
      'http://127.0.0.1:8080',
    );
  });
});

describe('loadKubeConfig and the user entry', () => {
  const withUser = (user: string, contextUser = 'u') =>
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: c1\n  cluster:\n    server: https://127.0.0.1:6443',
      'users:',
      `- name: u\n  user:\n${user}`,
      'contexts:',
      `- name: one\n  context:\n    cluster: c1\n    user: ${contextUser}`,
      'current-context: one',
    ].join('\n');

  it('refuses a context whose user the kubeconfig does not define (client-node went on without credentials)', () => {
    const path = file(withUser('    token: t', 'nobody'));
    expect(() => loadKubeConfig({ path, env: {} })).toThrow(`context "one" in kubeconfig ${path} names user "nobody", which it does not define`);
  });

  it("reads kubectl's tokenFile, relative to the kubeconfig's directory (client-node reads only token-file)", () => {
    const dir = scratch();
    writeFileSync(join(dir, 'sa.token'), 'secret-from-file\n');
    const path = join(dir, 'kubeconfig.yaml');
    writeFileSync(path, withUser('    tokenFile: sa.token'));
    expect(loadKubeConfig({ path, env: {} }).kubeConfig.getCurrentUser()?.token).toBe('secret-from-file');
    writeFileSync(path, withUser('    tokenFile: missing.token'));
    expect(() => loadKubeConfig({ path, env: {} })).toThrow(/the tokenFile of user "u" in kubeconfig .*: .*missing\.token/);
    // An explicit token wins, as in kubectl.
    writeFileSync(path, withUser('    token: inline\n    tokenFile: sa.token'));
    expect(loadKubeConfig({ path, env: {} }).kubeConfig.getCurrentUser()?.token).toBe('inline');
  });

  it('refuses a token an HTTP header cannot carry, without showing it (fetch quoted it in its error)', () => {
    const dir = scratch();
    for (const user of ['    token: "abc\\nSECRET-1"', '    token: "SECRET-1\\u0000"', '    tokenFile: sa.token']) {
      writeFileSync(join(dir, 'sa.token'), 'abc\nSECRET-1\n');
      const path = join(dir, 'kubeconfig.yaml');
      writeFileSync(path, withUser(user));
      const error = refusalOf(() => loadKubeConfig({ path, env: {} }));
      expect(error, user).toBeInstanceOf(KubeConfigError);
      expect(error!.message).toBe(`the token of user "u" in kubeconfig ${path} contains a line break or another character an HTTP header cannot carry`);
      expect(`${error!.message} ${(error as KubeConfigError).hint}`).not.toContain('SECRET');
    }
  });

  it('refuses a token an exec plugin prints that an HTTP header cannot carry, without showing it', async () => {
    const dir = scratch();
    const plugin = join(dir, 'plugin.sh');
    const credential = { apiVersion: 'client.authentication.k8s.io/v1', kind: 'ExecCredential', status: { token: 'SECRET-3\nX' } };
    writeFileSync(plugin, `#!/bin/sh\nprintf '%s\\n' '${JSON.stringify(credential)}'\n`, { mode: 0o755 });
    const path = join(dir, 'kubeconfig.yaml');
    writeFileSync(path, withUser(`    exec:\n      command: ${plugin}\n      apiVersion: client.authentication.k8s.io/v1`));
    const { kubeConfig } = loadKubeConfig({ path, env: {} });
    const error = await kubeConfig.applyToHTTPSOptions({}).then(() => null, (err: unknown) => err as KubeConfigError);
    expect(error).toBeInstanceOf(KubeConfigError);
    expect(error?.message).toBe(
      `the Authorization credential of user "u" in kubeconfig ${path} (from its exec plugin ${plugin}) contains a line break or another character an HTTP header cannot carry`,
    );
    expect(`${error?.message} ${error?.hint}`).not.toContain('SECRET');
  });

  it('refuses a server URL carrying a user name or password, without showing it', () => {
    const path = file(kubeconfig('https://admin:SECRET-2@127.0.0.1:6443'));
    const error = refusalOf(() => loadKubeConfig({ path, env: {} }));
    expect(error?.message).toBe(`cluster "c1" in kubeconfig ${path} has a user name or password in its server URL`);
    expect(`${error?.message} ${error?.hint}`).not.toContain('SECRET');
    const query = file(kubeconfig('https://127.0.0.1:6443/?token=SECRET-4'));
    const refused = refusalOf(() => loadKubeConfig({ path: query, env: {} }));
    expect(refused?.message).toBe(`cluster "c1" in kubeconfig ${query} has a query or fragment in its server URL`);
  });
});
