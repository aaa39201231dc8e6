/**
 * Finding the cluster's credentials the way kubectl does (--kubeconfig, then $KUBECONFIG, then ~/.kube/config, then
 * the pod's service account), but refusing where client-node would guess: with none of them, its loadFromDefault()
 * silently points at http://localhost:8080, and the first call then fails with an unrelated TLS message.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { checkUserFile, describeErrno, readUserFile, UserFileError } from '../../io/user-file.ts';
import { KubeConfigError } from './config-error.ts';

export { KubeConfigError };

export interface KubeConfigRequest {
  /** --kubeconfig */
  path?: string | undefined;
  /** --context */
  context?: string | undefined;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

export interface LoadedKubeConfig {
  kubeConfig: KubeConfig;
  /** Where it came from, for messages: a file path, or "in-cluster service account". */
  source: string;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export function loadKubeConfig(request: KubeConfigRequest = {}): LoadedKubeConfig {
  const env = request.env ?? process.env;
  const kc = new KubeConfig();
  let source: string;
  if (request.path !== undefined) {
    source = request.path;
    loadFile(kc, request.path, '--kubeconfig');
  } else if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(delimiter).filter(Boolean);
    source = files.join(delimiter);
    loadFile(kc, files[0]!, 'KUBECONFIG');
    for (const file of files.slice(1)) {
      if (!existsSync(file)) continue;
      const more = new KubeConfig();
      loadFile(more, file, 'KUBECONFIG');
      kc.mergeConfig(more);
    }
  } else {
    const home = request.home ?? homedir();
    const defaultPath = join(home, '.kube', 'config');
    if (existsSync(defaultPath)) {
      source = defaultPath;
      loadFile(kc, defaultPath, 'default kubeconfig');
    } else if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
      source = 'in-cluster service account';
      kc.loadFromCluster();
    } else {
      throw new KubeConfigError(
        `no kubeconfig: KUBECONFIG is not set, ${defaultPath} does not exist, and this is not running in a pod`,
        'pass --kubeconfig PATH (for kind: kind get kubeconfig --name NAME > kubeconfig.yaml)',
      );
    }
  }
  selectContext(kc, request.context, source);
  checkToken(kc, source);
  checkCredentialFiles(kc, source);
  explainCredentialFailures(kc, source);
  return { kubeConfig: kc, source };
}

/** A character an HTTP header value cannot carry (RFC 9110 field-value: visible ASCII, space, tab, obs-text). */
const HEADER_UNSAFE = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * A bearer token goes into an Authorization header, which cannot carry a line break or a control character; fetch
 * refuses such a header with a message quoting it, token and all. Refused here, without showing the token.
 */
function checkToken(kc: KubeConfig, source: string): void {
  const user = kc.getCurrentUser();
  const token = user?.token;
  if (token === undefined || !HEADER_UNSAFE.test(token)) return;
  throw new KubeConfigError(
    `the token of user "${user!.name}" in kubeconfig ${source} contains a line break or another character an HTTP header cannot carry`,
    'copy the token again, on one line (kubectl --kubeconfig PATH config view --raw shows it)',
  );
}

/** Certificates, keys and tokens are kilobytes; anything near this is the wrong file (or /dev/zero behind a link). */
const MAX_CREDENTIAL_FILE_BYTES = 1024 * 1024;

/**
 * The files the current context's cluster and user name: client-node reads them with readFileSync on every request,
 * which blocks for ever on a FIFO, and says only "ENOENT" about a missing one, without naming the kubeconfig's entry.
 */
function checkCredentialFiles(kc: KubeConfig, source: string): void {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  const files: Array<[string | undefined, string]> = [
    [cluster?.caFile, `certificate-authority of cluster "${cluster?.name}"`],
    [user?.certFile, `client-certificate of user "${user?.name}"`],
    [user?.keyFile, `client-key of user "${user?.name}"`],
  ];
  for (const [file, field] of files) {
    if (!file) continue;
    try {
      checkUserFile(file, `file the kubeconfig's ${field.split(' of ')[0]} names`, MAX_CREDENTIAL_FILE_BYTES);
    } catch (err) {
      if (err instanceof UserFileError) throw new KubeConfigError(`the ${field} in kubeconfig ${source}: ${err.message}`, 'fix that path in the kubeconfig (kubectl --kubeconfig PATH config view shows it)');
      throw err;
    }
  }
}

/**
 * The token file of each user: `token-file`, which client-node reads (every user's, whatever the context) while it
 * parses, and `tokenFile`, kubectl's spelling (client-go's AuthInfo), which client-node ignores: that user would go
 * without credentials. Returns the tokens read from `tokenFile` by user name, for `loadFile` to give client-node.
 */
function checkTokenFiles(text: string, path: string): Map<string, string> {
  const tokens = new Map<string, string>();
  let users: unknown;
  try {
    users = (parseYaml(text) as { users?: unknown } | null)?.users;
  } catch {
    return tokens; // client-node's own parse names the problem
  }
  if (!Array.isArray(users)) return tokens;
  for (const entry of users) {
    const user = (entry as { user?: Record<string, unknown> } | null)?.user;
    const name = String((entry as { name?: unknown }).name);
    for (const field of ['token-file', 'tokenFile'] as const) {
      const file = user?.[field];
      if (typeof file !== 'string' || file === '') continue;
      // As each reader takes it: kubectl relative to the kubeconfig's directory, client-node to the working directory.
      const where = field === 'tokenFile' ? resolve(dirname(path), file) : file;
      try {
        checkUserFile(where, `file the kubeconfig's ${field} names`, MAX_CREDENTIAL_FILE_BYTES);
        if (field === 'tokenFile' && user?.token === undefined && user?.['token-file'] === undefined) {
          tokens.set(name, readUserFile(where, `the kubeconfig's ${field}`).trim());
        }
      } catch (err) {
        if (err instanceof UserFileError) throw new KubeConfigError(`the ${field} of user ${JSON.stringify(name)} in kubeconfig ${path}: ${err.message}`, 'fix that path in the kubeconfig (kubectl --kubeconfig PATH config view shows it)');
        throw err;
      }
    }
  }
  return tokens;
}

/**
 * Credentials are obtained on each request (an exec plugin such as aws or gke-gcloud-auth-plugin, a file read): a
 * plugin that fails or prints something else than an ExecCredential surfaced as a bare Error with its stderr (or a
 * SyntaxError taken for the API server's answer). Either is said as what it is: the kubeconfig user's credentials.
 */
function explainCredentialFailures(kc: KubeConfig, source: string): void {
  const explain = (err: unknown): unknown => {
    if (err instanceof KubeConfigError) return err;
    const user = kc.getCurrentUser();
    const who = `the credentials of user "${user?.name ?? '?'}" in kubeconfig ${source} could not be obtained`;
    const code = (err as NodeJS.ErrnoException | null)?.code;
    const text = (err instanceof Error ? err.message : String(err)).trim().split('\n')[0]!.slice(0, 200);
    const command = user?.exec?.command;
    if (command) {
      const problem = err instanceof SyntaxError ? 'printed no ExecCredential JSON' : code === 'ENOENT' ? 'does not exist (is it installed and on PATH?)' : `failed: ${text || 'it exited with an error and printed nothing'}`;
      return new KubeConfigError(`${who}: its exec plugin ${command} ${problem}`, `run the plugin by hand (kubectl --kubeconfig PATH get nodes runs it too) and fix what it says`);
    }
    const path = (err as NodeJS.ErrnoException | null)?.path;
    const reason = typeof path === 'string' ? `${path} ${describeErrno(code) ?? text}` : text;
    return new KubeConfigError(`${who}: ${reason}`, 'check the user entry of the kubeconfig (kubectl --kubeconfig PATH config view)');
  };
  // The credentials as they reach the request, whatever gave them (a token, a file, an exec plugin's output): fetch
  // refuses a header value with a line break, quoting it, token and all. Refused here, without it.
  const checkHeaders = (headers: Record<string, unknown> | undefined) => {
    for (const [name, value] of Object.entries(headers ?? {})) {
      if (typeof value !== 'string' || !HEADER_UNSAFE.test(value)) continue;
      const user = kc.getCurrentUser();
      throw new KubeConfigError(
        `the ${name} credential of user "${user?.name ?? '?'}" in kubeconfig ${source}${user?.exec?.command ? ` (from its exec plugin ${user.exec.command})` : ''} contains a line break or another character an HTTP header cannot carry`,
        'fix the token where it comes from (kubectl --kubeconfig PATH config view --raw shows the kubeconfig)',
      );
    }
  };
  const applySecurityAuthentication = kc.applySecurityAuthentication.bind(kc);
  const applyToHTTPSOptions = kc.applyToHTTPSOptions.bind(kc);
  kc.applySecurityAuthentication = async (context) => {
    try {
      await applySecurityAuthentication(context);
    } catch (err) {
      throw explain(err);
    }
    checkHeaders(context.getHeaders());
  };
  kc.applyToHTTPSOptions = async (options) => {
    try {
      await applyToHTTPSOptions(options);
    } catch (err) {
      throw explain(err);
    }
    checkHeaders(options.headers as Record<string, unknown> | undefined);
  };
}

function loadFile(kc: KubeConfig, path: string, from: string): void {
  if (!existsSync(path)) throw new KubeConfigError(`kubeconfig ${path} (from ${from}) does not exist`, 'pass --kubeconfig PATH to an existing file');
  let text: string;
  try {
    text = readUserFile(path, 'kubeconfig');
  } catch (err) {
    if (err instanceof UserFileError) throw new KubeConfigError(`kubeconfig ${path} (from ${from}) ${err.reason}`, err.hint);
    throw err;
  }
  const tokens = checkTokenFiles(text, path);
  try {
    // What kc.loadFromFile does, on text read safely: it would block on a FIFO and read /dev/zero without end.
    kc.loadFromString(text);
    kc.makePathsAbsolute(dirname(path));
    for (const user of kc.users) {
      const token = tokens.get(user.name);
      if (token !== undefined) (user as { token?: string }).token = token;
    }
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${path} cannot be read: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`, 'check the file with: kubectl --kubeconfig PATH config view');
  }
}

function selectContext(kc: KubeConfig, context: string | undefined, source: string): void {
  const names = kc.getContexts().map((c) => c.name);
  const available = names.length > 0 ? `contexts in it: ${names.join(', ')}` : 'it defines no context';
  if (context !== undefined) {
    if (!names.includes(context)) throw new KubeConfigError(`context "${context}" is not in kubeconfig ${source}`, `pass --context with one of the ${available}`);
    kc.setCurrentContext(context);
  }
  const current = kc.getCurrentContext();
  if (!current || !kc.getContextObject(current)) {
    throw new KubeConfigError(`kubeconfig ${source} has no current context`, `pass --context NAME (${available})`);
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new KubeConfigError(`context "${current}" in kubeconfig ${source} names no known cluster`, 'fix the context, or pass --context NAME');
  // client-node would go on without credentials (kubectl refuses), and the API server then answers 401 or 403.
  const userName = kc.getContextObject(current)?.user;
  if (userName && !kc.getUser(userName)) {
    throw new KubeConfigError(`context "${current}" in kubeconfig ${source} names user "${userName}", which it does not define`, 'fix the context\'s user, or pass --context NAME');
  }
  const url = URL.parse(cluster.server);
  if (url !== null && (url.username !== '' || url.password !== '')) {
    // Said without the URL: its password would be in the message (and fetch refuses such a URL, naming it in full).
    throw new KubeConfigError(
      `cluster "${cluster.name}" in kubeconfig ${source} has a user name or password in its server URL`,
      'remove them from the URL: credentials belong in the user entry (a token or a client certificate)',
    );
  }
  if (url !== null && (url.search !== '' || url.hash !== '')) {
    // An API server URL has none; a token put there would be in every message that names the server.
    throw new KubeConfigError(`cluster "${cluster.name}" in kubeconfig ${source} has a query or fragment in its server URL`, 'give the API server\'s URL alone, e.g. https://10.0.0.1:6443');
  }
  if (!/^https?:$/.test(url?.protocol ?? '')) {
    // client-node would throw "You need to define an absolute base url" from deep inside the first request.
    throw new KubeConfigError(`cluster "${cluster.name}" in kubeconfig ${source} has no https:// server URL (got ${JSON.stringify(cluster.server)})`, 'set its server to the API server\'s URL, e.g. https://10.0.0.1:6443');
  }
  if (cluster.server.startsWith('http://') && !cluster.skipTLSVerify) {
    // client-node refuses plain HTTP unless the cluster entry opts in, and says so only on the first request.
    throw new KubeConfigError(
      `cluster "${cluster.name}" in kubeconfig ${source} uses plain HTTP (${cluster.server}) without insecure-skip-tls-verify`,
      'use the https:// endpoint, or set insecure-skip-tls-verify: true on that cluster entry (test servers only)',
    );
  }
}
