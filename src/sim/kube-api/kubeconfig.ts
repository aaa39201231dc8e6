/** A kubeconfig for the sandbox server, for kubectl and client-node alike. */
import { stringify } from 'yaml';

/**
 * YAML of a kubeconfig with one cluster, one user and one current context. `insecure-skip-tls-verify` is set because
 * client-node 2 refuses an http:// server without it.
 */
export function kubeconfig(url: string, token?: string, name = 'patchpilot-sandbox'): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name, user: token === undefined ? {} : { token } }],
    contexts: [{ name, context: { cluster: name, user: name } }],
    'current-context': name,
    preferences: {},
  });
}
