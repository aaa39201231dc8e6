/**
 * A server the user pointed us at (a kubeconfig's API server, SLACK_API_URL, Palette) that cannot be reached is a
 * mistake in the address or a server that is down: one line naming where and why, not undici's "fetch failed" trace.
 */
const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused (nothing listens there)',
  ECONNRESET: 'the connection was reset',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'the host name could not be resolved (DNS)',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  UND_ERR_CONNECT_TIMEOUT: 'the connection timed out',
  UND_ERR_SOCKET: 'the connection failed',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'its TLS certificate is self-signed and not trusted',
  SELF_SIGNED_CERT_IN_CHAIN: 'its TLS certificate chain is not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its TLS certificate cannot be verified',
  ERR_TLS_CERT_ALTNAME_INVALID: 'its TLS certificate is for another host name',
  CERT_HAS_EXPIRED: 'its TLS certificate has expired',
  EPROTO: 'it does not speak the expected protocol (TLS to a plain HTTP port?)',
  ERR_SSL_WRONG_VERSION_NUMBER: 'it does not speak TLS (is the address http:// rather than https://?)',
};

/** `host:port: reason` when `err` is a failure to reach a server, else null. */
export function describeUnreachable(err: unknown): string | null {
  const seen = new Set<unknown>();
  let current: unknown = err;
  let where = '';
  let fetchFailed = false;
  while (current && typeof current === 'object' && !seen.has(current)) {
    seen.add(current);
    const { code, cause, errors, message, address, hostname, port } = current as Record<string, unknown>;
    if (message === 'fetch failed') fetchFailed = true;
    if (!where && typeof address === 'string') where = `${address}${typeof port === 'number' ? `:${port}` : ''}`;
    if (!where && typeof hostname === 'string') where = hostname;
    if (typeof code === 'string' && REASONS[code]) return `${where ? `${where}: ` : ''}${REASONS[code]} (${code})`;
    // fetch refuses some ports outright (1, 22, 25, ...: the Fetch standard's "bad ports").
    if (fetchFailed && message === 'bad port') return 'the address uses a port that HTTP clients refuse to connect to ("bad port")';
    current = cause ?? (Array.isArray(errors) ? errors[0] : undefined);
  }
  return fetchFailed ? 'the request failed before any answer' : null;
}
