/**
 * The blockers' Prometheus: which alerts are firing, from the HTTP API's `GET /api/v1/alerts` (what kured's
 * --prometheus-url asks, through the ALERTS series). Pending alerts do not block; only `state: "firing"` does.
 */
import { z } from 'zod';

/** Where the blockers learn which alerts fire: Prometheus over HTTP, or the simulator's `alert-firing` faults. */
export interface AlertSource {
  /** Names of the alerts firing now; throws when it cannot tell (the gate then stays closed). */
  firingAlerts(url: string, signal: AbortSignal): Promise<string[]>;
}

const alertsResponse = z.object({
  status: z.literal('success'),
  data: z.object({
    alerts: z.array(z.object({ labels: z.record(z.string(), z.string()), state: z.string() })),
  }),
});

/** How long one question to Prometheus may take before the gate counts it as unanswered. */
export const PROMETHEUS_TIMEOUT_MS = 10_000;

/** Credentials in a URL (`https://user:pass@prom`) never reach a message. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username || u.password) {
      u.username = '***';
      u.password = '';
    }
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

export const prometheusAlerts: AlertSource = {
  async firingAlerts(url, signal) {
    const endpoint = new URL('api/v1/alerts', url.endsWith('/') ? url : `${url}/`);
    const headers: Record<string, string> = { accept: 'application/json' };
    // fetch refuses a URL with credentials (and would quote it): they go in a Basic Authorization header instead.
    if (endpoint.username || endpoint.password) {
      const user = decodeURIComponent(endpoint.username);
      const password = decodeURIComponent(endpoint.password);
      headers.authorization = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      endpoint.username = '';
      endpoint.password = '';
    }
    let response: Response;
    try {
      response = await fetch(endpoint, { signal: AbortSignal.any([signal, AbortSignal.timeout(PROMETHEUS_TIMEOUT_MS)]), headers });
    } catch (err) {
      const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
      throw new Error(`${redactUrl(endpoint.toString())}: ${cause}`);
    }
    if (!response.ok) throw new Error(`${redactUrl(endpoint.toString())} answered HTTP ${response.status}`);
    const parsed = alertsResponse.safeParse(await response.json().catch(() => null));
    if (!parsed.success) throw new Error(`${redactUrl(endpoint.toString())} did not answer like the Prometheus alerts API`);
    return parsed.data.data.alerts.filter((a) => a.state === 'firing').map((a) => a.labels.alertname ?? '(unnamed)');
  },
};
