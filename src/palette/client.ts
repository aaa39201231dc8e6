/**
 * The Palette API client, for the one thing patchpilot needs from Palette: a cluster's OS patch settings
 * (`osPatchConfig`), to see and clear the stuck On-Demand timestamp.
 *
 * Where the shapes come from (shared/notes/anchors.md, section (c), from palette-sdk-go and the seed's guide):
 * - read: `GET /v1/spectroclusters/{uid}` returns the SpectroCluster; its OS patch settings are the SDK's
 *   `V1OsPatchConfig` at `spec.clusterConfig.machineManagementConfig.osPatchConfig`
 *   (`onDemandPatchAfter` date-time, `patchOnBoot`, `rebootIfRequired`, `schedule` cron);
 * - write: `PATCH /v1/spectroclusters/{uid}/clusterConfig/osPatch` (operation v1SpectroClustersUidOsPatchUpdate) with
 *   the SDK's `V1OsPatchEntity` body `{"osPatchConfig":{...}}`, answered 204;
 * - authentication: the `ApiKey` header (not Authorization), and `ProjectUid` for project-scoped clusters (the seed).
 * The API key is a secret: it is sent in its header and nowhere else, and every message this module builds passes
 * through `redact`, so a server or proxy that echoes it back cannot put it in a log line or an error.
 */

export const DEFAULT_PALETTE_API_URL = 'https://api.spectrocloud.com';
const DEFAULT_TIMEOUT_MS = 30_000;

/** V1OsPatchConfig, as far as patchpilot reads and writes it. Absent fields are absent in Palette's answer too. */
export interface OsPatchConfig {
  onDemandPatchAfter?: string;
  patchOnBoot?: boolean;
  rebootIfRequired?: boolean;
  schedule?: string;
}

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

export interface PaletteClientOptions {
  baseUrl: string;
  apiKey: string;
  projectUid?: string | undefined;
  /** Default: the global fetch (undici). Tests pass their own to count or fail requests. */
  fetch?: FetchLike;
  timeoutMs?: number;
}

export type PaletteErrorKind = 'unauthorized' | 'forbidden' | 'not-found' | 'server' | 'network' | 'bad-response' | 'bad-input' | 'rejected';

export class PaletteError extends Error {
  override readonly name = 'PaletteError';
  readonly kind: PaletteErrorKind;
  /** HTTP status, or null when no answer came (network, timeout) or the input was refused before sending. */
  readonly status: number | null;
  readonly clusterUid: string | null;
  readonly hint: string;

  constructor(kind: PaletteErrorKind, message: string, options: { status?: number | null; clusterUid?: string | null; hint: string }) {
    super(message);
    this.kind = kind;
    this.status = options.status ?? null;
    this.clusterUid = options.clusterUid ?? null;
    this.hint = options.hint;
  }
}

/** Palette's way of writing "no time": Go's zero time.Time (Terraform sends it when os_patch_after is unset). */
export function isUnsetTimestamp(value: string | undefined | null): boolean {
  if (value === undefined || value === null || value.trim() === '') return true;
  return value.startsWith('0001-01-01');
}

export class PaletteClient {
  readonly baseUrl: string;
  readonly projectUid: string | undefined;
  readonly #apiKey: string;
  readonly #fetch: FetchLike;
  readonly #timeoutMs: number;

  constructor(options: PaletteClientOptions) {
    let url: URL;
    try {
      url = new URL(options.baseUrl);
    } catch {
      throw new PaletteError('bad-input', `Palette API URL "${options.baseUrl}" is not a URL`, { hint: `set PALETTE_API_URL to e.g. ${DEFAULT_PALETTE_API_URL}` });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new PaletteError('bad-input', `Palette API URL "${options.baseUrl}" must be http(s)`, { hint: `set PALETTE_API_URL to e.g. ${DEFAULT_PALETTE_API_URL}` });
    }
    if (options.apiKey.trim() === '') throw new PaletteError('bad-input', 'the Palette API key is empty', { hint: 'set PALETTE_API_KEY (Tenant Settings → API Keys in Palette)' });
    if (/[\r\n]/.test(options.apiKey)) throw new PaletteError('bad-input', 'the Palette API key contains a line break', { hint: 'set PALETTE_API_KEY to the key alone, without a trailing newline' });
    const projectUid = options.projectUid?.trim() || undefined;
    // It goes into a request header: a line break there fails deep in fetch with a message about headers.
    if (projectUid !== undefined && !/^[A-Za-z0-9-]+$/.test(projectUid)) {
      throw new PaletteError('bad-input', `the Palette project uid ${JSON.stringify(projectUid)} is not a uid (letters, digits and dashes)`, { hint: 'set PALETTE_PROJECT_UID to the project uid alone (Project Settings in Palette)' });
    }
    this.baseUrl = url.href.replace(/\/+$/, '');
    this.projectUid = projectUid;
    this.#apiKey = options.apiKey.trim();
    this.#fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  }

  /** The cluster's OS patch settings; `{}` when the cluster has none (Palette omits the whole object then). */
  async getOsPatchConfig(clusterUid: string): Promise<OsPatchConfig> {
    const path = `/v1/spectroclusters/${checkUid(clusterUid)}`;
    const body = await this.#request('GET', path, clusterUid);
    if (typeof body !== 'object' || body === null) {
      throw new PaletteError('bad-response', `Palette API: GET ${path} answered something that is not a SpectroCluster`, { clusterUid, hint: 'check PALETTE_API_URL points at the Palette API' });
    }
    const raw = dig(body, ['spec', 'clusterConfig', 'machineManagementConfig', 'osPatchConfig']);
    if (raw === undefined || raw === null) return {};
    if (typeof raw !== 'object') {
      throw new PaletteError('bad-response', `Palette API: cluster ${clusterUid}: osPatchConfig is not an object`, { clusterUid, hint: 'report this with the Palette version' });
    }
    return pickConfig(raw as Record<string, unknown>);
  }

  /** Writes the whole osPatchConfig (the SDK sends the full V1OsPatchConfig: read first to keep the other fields). */
  async setOsPatchConfig(clusterUid: string, config: OsPatchConfig): Promise<void> {
    await this.#request('PATCH', osPatchPath(checkUid(clusterUid)), clusterUid, osPatchUpdateBody(config));
  }

  /**
   * Clears `onDemandPatchAfter` as the seed's procedure does: the value "" (Palette then reads it back as the zero time
   * `0001-01-01T00:00:00.000Z`), inside the SDK's `{"osPatchConfig":{...}}` wrapper, with the schedule, patchOnBoot
   * and rebootIfRequired read just before and sent unchanged. Returns what was stored before; a value that was already
   * unset is left alone (no request is sent).
   */
  async clearOnDemandPatchAfter(clusterUid: string): Promise<{ previous: string | null; changed: boolean }> {
    const current = await this.getOsPatchConfig(clusterUid);
    const previous = isUnsetTimestamp(current.onDemandPatchAfter) ? null : (current.onDemandPatchAfter ?? null);
    if (previous === null) return { previous: null, changed: false };
    await this.setOsPatchConfig(clusterUid, clearedOnDemand(current));
    return { previous, changed: true };
  }

  async #request(method: 'GET' | 'PATCH', path: string, clusterUid: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { ApiKey: this.#apiKey, Accept: 'application/json' };
    if (this.projectUid) headers.ProjectUid = this.projectUid;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const what = `Palette API ${method} ${path}`;
    let response: Response;
    try {
      response = await this.#fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.#timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      const cause = err instanceof Error ? ((err.cause as { code?: string } | undefined)?.code ?? err.message) : String(err);
      throw new PaletteError('network', this.redact(`${what} (cluster ${clusterUid}): no answer from ${this.baseUrl}: ${cause}`), {
        clusterUid,
        hint: 'check PALETTE_API_URL and the network path to Palette',
      });
    }
    const text = await response.text().catch(() => '');
    if (response.ok) {
      if (text.trim() === '') return null;
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw new PaletteError('bad-response', `${what} (cluster ${clusterUid}): answered ${response.status} with a body that is not JSON`, {
          status: response.status,
          clusterUid,
          hint: 'check PALETTE_API_URL points at the Palette API, not its web UI',
        });
      }
    }
    const detail = this.redact(errorDetail(text));
    const status = response.status;
    const message = `${what} (cluster ${clusterUid}): HTTP ${status}${detail ? `: ${detail}` : ''}`;
    if (status === 401) throw new PaletteError('unauthorized', `${message} (the API key was not accepted)`, { status, clusterUid, hint: 'check PALETTE_API_KEY: a valid, unexpired key from Tenant Settings → API Keys' });
    if (status === 403) {
      throw new PaletteError('forbidden', `${message} (the key lacks permission${this.projectUid ? ` in project ${this.projectUid}` : ', or the cluster is project-scoped'})`, {
        status,
        clusterUid,
        hint: this.projectUid ? 'the key needs cluster.update (Cluster Admin or higher) in that project' : 'set PALETTE_PROJECT_UID: the ProjectUid header is required for project-scoped clusters',
      });
    }
    if (status === 404) throw new PaletteError('not-found', `${message} (no cluster with uid ${clusterUid})`, { status, clusterUid, hint: 'the cluster uid is in the Palette URL: …/clusters/<uid>/overview; check the project too' });
    if (status >= 500) throw new PaletteError('server', message, { status, clusterUid, hint: 'Palette had a problem; try again later' });
    throw new PaletteError('rejected', message, { status, clusterUid, hint: 'Palette refused the request' });
  }

  /** Removes the API key from text that may have come from elsewhere (a server's message, a network error). */
  redact(text: string): string {
    return text.split(this.#apiKey).join('[redacted]');
  }
}

/** Palette's error body is `{"code":"…","message":"…"}`; anything else is shown shortened. */
function errorDetail(text: string): string {
  try {
    const json = JSON.parse(text) as { message?: unknown; code?: unknown };
    if (typeof json.message === 'string') return typeof json.code === 'string' ? `${json.code}: ${json.message}` : json.message;
  } catch {
    // not JSON
  }
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

export function checkUid(uid: string): string {
  if (typeof uid !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(uid)) {
    throw new PaletteError('bad-input', `"${String(uid)}" is not a Palette cluster uid (letters, digits, - and _)`, {
      clusterUid: typeof uid === 'string' ? uid : null,
      hint: 'the cluster uid is in the Palette URL: …/clusters/<uid>/overview',
    });
  }
  return uid;
}

function dig(value: unknown, path: string[]): unknown {
  let current = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

/** The endpoint that updates a cluster's OS patch settings (palette-sdk-go's v1SpectroClustersUidOsPatchUpdate). */
export function osPatchPath(clusterUid: string): string {
  return `/v1/spectroclusters/${clusterUid}/clusterConfig/osPatch`;
}

/** The SDK's V1OsPatchEntity: the whole config inside `{"osPatchConfig": …}` (the seed's curl sends it bare). */
export function osPatchUpdateBody(config: OsPatchConfig): { osPatchConfig: OsPatchConfig } {
  return { osPatchConfig: pickConfig(config as Record<string, unknown>) };
}

/** What `unstick` writes to clear a stuck timestamp: the settings as read, `onDemandPatchAfter` emptied. */
export function clearedOnDemand(current: OsPatchConfig): OsPatchConfig {
  return { ...current, onDemandPatchAfter: '' };
}

function pickConfig(raw: Record<string, unknown>): OsPatchConfig {
  const config: OsPatchConfig = {};
  if (typeof raw.onDemandPatchAfter === 'string') config.onDemandPatchAfter = raw.onDemandPatchAfter;
  if (typeof raw.patchOnBoot === 'boolean') config.patchOnBoot = raw.patchOnBoot;
  if (typeof raw.rebootIfRequired === 'boolean') config.rebootIfRequired = raw.rebootIfRequired;
  if (typeof raw.schedule === 'string') config.schedule = raw.schedule;
  return config;
}

export interface PaletteSettings {
  baseUrl: string;
  apiKey: string;
  projectUid?: string;
}

/**
 * Palette settings from the environment: PALETTE_API_KEY (required to use Palette at all), PALETTE_API_URL (default
 * the SaaS endpoint), PALETTE_PROJECT_UID. null when no key is set: Palette is then not configured.
 */
export function paletteSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): PaletteSettings | null {
  const apiKey = env.PALETTE_API_KEY?.trim();
  if (!apiKey) return null;
  const projectUid = env.PALETTE_PROJECT_UID?.trim();
  return { baseUrl: env.PALETTE_API_URL?.trim() || DEFAULT_PALETTE_API_URL, apiKey, ...(projectUid ? { projectUid } : {}) };
}
