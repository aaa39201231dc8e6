/**
 * The store served over HTTP as a Kubernetes API server (node:http, 127.0.0.1 only): REST paths for every served
 * resource and subresource, legacy discovery, Tables for `kubectl get`, chunked watches, bearer tokens with RBAC
 * rules, and the request hook for fault injection. Real kubectl and @kubernetes/client-node work against it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { authenticate, authorize, reviewAccess, type Principal, type TokenGrant } from './auth.ts';
import { apiGroupDocument, apiGroupList, apiResourceList, apiVersions, versionInfo } from './discovery.ts';
import type { ApiChaos } from './chaos.ts';
import type { RequestInfo } from './hooks.ts';
import { isPlainObject, type KubeObject } from './objects.ts';
import { PATCH_TYPES, patchTypeOf } from './patch.ts';
import { checkGetOptions, checkWatchOptions, decodeDeleteOptions, fieldValidationOf, listReadOf, listTooOld, queryInt, warningHeader } from './options.ts';
import { decodeProtobufObject, PROTOBUF_TYPE } from './protobuf.ts';
import { apiVersionOf, ResourceRegistry, SELF_SUBJECT_ACCESS_REVIEWS, type ResourceType, type Verb } from './resources.ts';
import {
  asStatusError,
  badRequest,
  methodNotAllowed,
  notAcceptable,
  requestEntityTooLarge,
  StatusError,
  success,
  unsupportedMediaType,
} from './status.ts';
import { parseDryRun, type FieldValidation, type KubeStore } from './store.ts';
import { DocumentError, parseJsonText } from '../../engine/documents.ts';
import { toTable, type IncludeObject } from './tables.ts';
import type { WatchEvent, WatchHandle } from './watch.ts';

export interface KubeApiServerOptions {
  store: KubeStore;
  /** Bearer tokens and who they are; without it every request is anonymous with full access. */
  tokens?: Record<string, TokenGrant>;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** What /version reports. */
  gitVersion?: string;
  /** Transient failures on any resource endpoint and dropped watches (chaos.ts). */
  chaos?: ApiChaos;
  /** The API server's --max-request-body-bytes: a longer body is refused with 413, unread. 3 MiB by default. */
  maxRequestBodyBytes?: number;
}

export interface KubeApiServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Ends open watches and log streams, then closes every connection. */
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json';
/** kube-apiserver's default --max-request-body-bytes (MaxRequestBodyBytes in k8s.io/apiserver/pkg/server/config.go). */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;
const HEALTH_PATHS = new Set(['healthz', 'livez', 'readyz']);
const NOT_FOUND_MESSAGE = 'the server could not find the requested resource';
const ACCESS_REVIEW_PATH = 'apis/authorization.k8s.io/v1/selfsubjectaccessreviews';

/** Serialised objects, computed once per stored version: lists of a thousand nodes are mostly string joins. */
const jsonCache = new WeakMap<object, string>();

function toJson(object: object): string {
  if (!Object.isFrozen(object)) return JSON.stringify(object);
  let json = jsonCache.get(object);
  if (json === undefined) {
    json = JSON.stringify(object);
    jsonCache.set(object, json);
  }
  return json;
}

interface ResourceRoute {
  type: ResourceType;
  namespace?: string;
  name?: string;
  subresource?: string;
}

type Representation = { kind: 'json' } | { kind: 'table'; includeObject: IncludeObject };

/** Chooses what to answer from Accept, in the client's order: a Table, JSON, or nothing acceptable (406). */
function negotiate(accept: string | undefined, tableAllowed: boolean): Representation | undefined {
  if (accept === undefined || accept.trim() === '') return { kind: 'json' };
  for (const range of accept.split(',')) {
    const [media = '', ...paramParts] = range.split(';').map((p) => p.trim());
    const params = new Map(paramParts.map((p) => p.split('=').map((s) => s.trim()) as [string, string]));
    const type = media.toLowerCase();
    if (type !== JSON_TYPE && type !== 'application/*' && type !== '*/*') continue;
    const as = params.get('as');
    if (as === undefined) return { kind: 'json' };
    if (as === 'Table' && params.get('g') === 'meta.k8s.io' && tableAllowed) return { kind: 'table', includeObject: 'Metadata' };
  }
  return undefined;
}

function sendBytes(res: ServerResponse, code: number, body: Buffer, encoding?: 'gzip'): void {
  res.writeHead(code, { 'Content-Type': JSON_TYPE, 'Content-Length': body.length, ...(encoding ? { 'Content-Encoding': encoding, Vary: 'Accept-Encoding' } : {}) });
  res.end(body);
}

/** The API server gzips a response above 128 KiB for a client that accepts it (APIResponseCompression). */
const GZIP_THRESHOLD = 128 * 1024;

function acceptsGzip(req: IncomingMessage): boolean {
  const accepted = req.headers['accept-encoding'];
  return typeof accepted === 'string' && accepted.split(',').some((e) => e.split(';')[0]!.trim().toLowerCase() === 'gzip');
}

interface CachedList {
  resourceVersion: string;
  body: Buffer;
  /** Compressed once, when a client that accepts gzip first asks for it. */
  gzipped?: Buffer;
}

function sendList(req: IncomingMessage, res: ServerResponse, entry: CachedList): void {
  if (entry.body.length < GZIP_THRESHOLD || !acceptsGzip(req)) return sendBytes(res, 200, entry.body);
  entry.gzipped ??= gzipSync(entry.body, { level: 1 });
  sendBytes(res, 200, entry.gzipped, 'gzip');
}

/** Distinct lists (resource, namespace, selectors) whose bodies are kept; the oldest goes first. */
const LIST_CACHE_ENTRIES = 64;

function send(res: ServerResponse, code: number, body: string, contentType = JSON_TYPE): void {
  res.writeHead(code, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function sendStatus(res: ServerResponse, error: StatusError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const retryAfter = error.status.details?.retryAfterSeconds;
  if (retryAfter !== undefined && retryAfter > 0) res.setHeader('Retry-After', String(retryAfter));
  if (error.code === 413) closeAfterAnswer(res);
  send(res, error.code, JSON.stringify(error.status));
}

/** Go's net/http rstAvoidanceDelay: how long a connection half-closed after its answer waits before it is closed. */
const RST_AVOIDANCE_DELAY_MS = 500;

/**
 * The rest of a body refused as too large is left unread: the connection closes after the answer, as Go's server
 * closes one whose handler left more than a little of its body unread, so nothing more of it is taken in. Closed as
 * Go closes it: the answer and a FIN first, the socket half a second later; closing it at once, with the client's
 * bytes still arriving, would reset the connection and could lose the answer before the client reads it.
 */
function closeAfterAnswer(res: ServerResponse): void {
  res.setHeader('Connection', 'close');
  const socket = res.socket;
  if (!socket) return;
  // Node's server calls destroySoon() once an answer with "Connection: close" is sent; this one lingers instead.
  socket.destroySoon = function lingeringClose(this: typeof socket) {
    this.end();
    setTimeout(() => this.destroy(), RST_AVOIDANCE_DELAY_MS).unref();
  };
}

/**
 * A create, update or eviction body (`beforeDecoding` runs once it is read, before it is parsed): JSON, or protobuf for the few kinds kubectl will only send that way (see
 * protobuf.ts); any other protobuf or a YAML body is a 415.
 */
async function readJsonBody(req: IncomingMessage, limit: number, beforeDecoding: () => void = () => {}): Promise<unknown> {
  const contentType = req.headers['content-type'] ?? JSON_TYPE;
  const media = contentType.split(';')[0]!.trim().toLowerCase();
  if (media === PROTOBUF_TYPE) {
    const bytes = await readBytes(req, limit);
    beforeDecoding();
    return decodeProtobufObject(bytes, () => unsupportedMediaType(contentType, [JSON_TYPE]));
  }
  if (media !== JSON_TYPE && media !== '*/*' && media !== '') {
    req.resume();
    throw unsupportedMediaType(contentType, [JSON_TYPE]);
  }
  const text = await readBody(req, limit);
  // The handlers read the body, then check the request's options, then decode: a bad option is named first.
  beforeDecoding();
  const body = parseJson(text);
  if (!isPlainObject(body)) throw badRequest('the request body must be a JSON object');
  return body;
}

/**
 * The body, at most `limit` bytes of it, as limitedReadBody (apiserver's endpoints/handlers/rest.go) reads it: one
 * byte more is a 413 RequestEntityTooLarge, answered without reading the rest (a Content-Length above the limit is
 * refused before anything is read). What was read of a refused body is dropped at once.
 */
function readBytes(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = () => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const refuse = () => {
      stop();
      req.pause();
      chunks.length = 0;
      reject(requestEntityTooLarge(limit));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) return refuse();
      chunks.push(chunk);
    };
    const onEnd = () => {
      stop();
      resolve(Buffer.concat(chunks, size));
    };
    const onError = (error: Error) => {
      stop();
      reject(error);
    };
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) return refuse();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return (await readBytes(req, limit)).toString('utf8');
}

/** A syntax error, or nesting deep enough to overflow what walks the object later, is the client's 400. */
function parseJson(text: string): unknown {
  try {
    return parseJsonText(text);
  } catch (error) {
    if (error instanceof DocumentError) throw badRequest(`json parse error: ${error.message}`);
    throw error;
  }
}

/**
 * A boolean query parameter as apimachinery converts it (Convert_Slice_string_To_bool): absent is false, "0" and
 * "false" in any case are false, anything else (even empty) is true: python-kubernetes sends `watch=True`.
 */
function queryBool(value: string | null): boolean {
  return value !== null && value !== '0' && value.toLowerCase() !== 'false';
}

export async function startKubeApiServer(options: KubeApiServerOptions): Promise<KubeApiServer> {
  const { store } = options;
  const gitVersion = options.gitVersion ?? 'v1.32.4';
  const bodyLimit = options.maxRequestBodyBytes ?? DEFAULT_MAX_REQUEST_BODY_BYTES;
  const openStreams = new Set<() => void>();
  const discoverable = new ResourceRegistry([...store.resources.all, SELF_SUBJECT_ACCESS_REVIEWS]);
  let address = '127.0.0.1:0';

  /**
   * Serialised list bodies, as the real watch cache keeps them: a list asked again before anything changed (the
   * store's resourceVersion is the same) is the same bytes, sent without listing, filtering or joining again.
   */
  const listCache = new Map<string, CachedList>();
  const remember = (key: string, entry: CachedList) => {
    listCache.delete(key);
    listCache.set(key, entry);
    if (listCache.size > LIST_CACHE_ENTRIES) listCache.delete(listCache.keys().next().value!);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => sendStatus(res, asStatusError(error)));
  });
  // Requests Node's HTTP parser rejects (an unknown method, a malformed header) get a Status body as well, as the
  // real API server's do, instead of Node's bare "400 Bad Request".
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const body = JSON.stringify(badRequest(`malformed HTTP request: ${error.code ?? error.message}`).status);
    socket.end(`HTTP/1.1 400 Bad Request\r\nContent-Type: ${JSON_TYPE}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  });
  server.keepAliveTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const principal = authenticate(options.tokens, req.headers.authorization);
    if (principal instanceof StatusError) return sendStatus(res, principal);
    const segments = url.pathname.split('/').filter((s) => s !== '');
    if (segments.length === 1 && HEALTH_PATHS.has(segments[0]!)) return send(res, 200, 'ok', 'text/plain; charset=utf-8');
    const discovery = answerDiscovery(segments);
    if (discovery !== undefined) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendStatus(res, new StatusError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource'));
      return discovery === null ? sendStatus(res, new StatusError(404, 'NotFound', NOT_FOUND_MESSAGE, {})) : send(res, 200, JSON.stringify(discovery));
    }
    if (segments.join('/') === ACCESS_REVIEW_PATH) return serveAccessReview(req, res, url.pathname, principal);
    const route = parseResourcePath(segments);
    if (!route) return sendStatus(res, new StatusError(404, 'NotFound', NOT_FOUND_MESSAGE, {}));
    const verb = verbOf(req.method ?? 'GET', route, url.searchParams);
    if (!verb) return sendStatus(res, methodNotAllowed({ group: route.type.group, resource: route.type.plural }, req.method ?? ''));
    const info: RequestInfo = {
      verb,
      method: req.method ?? 'GET',
      path: url.pathname,
      group: route.type.group,
      version: route.type.version,
      resource: route.type.plural,
      user: principal.user,
    };
    if (route.subresource !== undefined) info.subresource = route.subresource;
    if (route.namespace !== undefined) info.namespace = route.namespace;
    if (route.name !== undefined) info.name = route.name;
    const denied = authorize(principal, info);
    if (denied) return sendStatus(res, denied);
    const injected = store.hooks.checkRequest(info) ?? options.chaos?.strike(info);
    if (injected) {
      req.resume();
      return sendStatus(res, injected);
    }
    await serveResource(req, res, url.searchParams, route, verb, principal);
  }

  async function serveAccessReview(req: IncomingMessage, res: ServerResponse, path: string, principal: Principal): Promise<void> {
    const type = SELF_SUBJECT_ACCESS_REVIEWS;
    if (req.method !== 'POST') return sendStatus(res, methodNotAllowed({ group: type.group, resource: type.plural }, req.method ?? ''));
    // Fault injection sees reviews like any request (an outage fails them too); RBAC does not: anyone may ask.
    const info: RequestInfo = { verb: 'create', method: 'POST', path, group: type.group, version: type.version, resource: type.plural, user: principal.user };
    const injected = store.hooks.checkRequest(info);
    if (injected) return sendStatus(res, injected);
    if (!negotiate(req.headers.accept, false)) throw notAcceptable([JSON_TYPE]);
    send(res, 201, JSON.stringify(reviewAccess(principal, await readJsonBody(req, bodyLimit))));
  }

  /** A discovery document for the path; null for a discovery path with nothing there; undefined for other paths. */
  function answerDiscovery(segments: string[]): unknown | null | undefined {
    const [first, second, third] = segments;
    if (segments.length === 1 && first === 'version') return versionInfo(gitVersion);
    if (first === 'openapi') return null;
    if (first === 'api' && segments.length === 1) return apiVersions(address);
    if (first === 'api' && segments.length === 2) return second === 'v1' ? (apiResourceList(discoverable, '', 'v1') ?? null) : null;
    if (first === 'apis' && segments.length === 1) return apiGroupList(discoverable);
    if (first === 'apis' && segments.length === 2) return apiGroupDocument(discoverable, second!) ?? null;
    if (first === 'apis' && segments.length === 3) return apiResourceList(discoverable, second!, third!) ?? null;
    return undefined;
  }

  function parseResourcePath(segments: string[]): ResourceRoute | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segments[0] === 'api') [group, version, rest] = ['', segments[1] ?? '', segments.slice(2)];
    else if (segments[0] === 'apis') [group, version, rest] = [segments[1] ?? '', segments[2] ?? '', segments.slice(3)];
    else return undefined;
    if (rest.length === 0 || rest.length > 5) return undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const type = store.resources.find(group, version, rest[2]!);
      if (type?.namespaced) return withParts({ type, namespace: rest[1]! }, rest.slice(3));
      if (group !== '') return undefined;
    }
    const type = store.resources.find(group, version, rest[0]!);
    if (!type || rest.length > 3) return undefined;
    return withParts({ type }, rest.slice(1));
  }

  function withParts(route: ResourceRoute, parts: string[]): ResourceRoute | undefined {
    const [name, subresource] = parts;
    if (name !== undefined) route.name = name;
    if (subresource !== undefined) {
      if (!route.type.subresources.some((s) => s.name === subresource)) return undefined;
      route.subresource = subresource;
    }
    if (route.namespace === undefined && route.type.namespaced && route.name !== undefined) return undefined;
    return route;
  }

  function verbOf(method: string, route: ResourceRoute, query: URLSearchParams): Verb | undefined {
    const { type, name, subresource } = route;
    let verb: Verb | undefined;
    if (subresource !== undefined) {
      const allowed = type.subresources.find((s) => s.name === subresource)!.verbs;
      verb = ({ GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch' } as Record<string, Verb>)[method];
      return verb !== undefined && allowed.includes(verb) ? verb : undefined;
    }
    if (method === 'GET') verb = queryBool(query.get('watch')) ? 'watch' : name === undefined ? 'list' : 'get';
    else if (method === 'POST') verb = name === undefined ? 'create' : undefined;
    else if (method === 'PUT') verb = name === undefined ? undefined : 'update';
    else if (method === 'PATCH') verb = name === undefined ? undefined : 'patch';
    else if (method === 'DELETE') verb = name === undefined ? 'deletecollection' : 'delete';
    if (verb === 'create' && type.namespaced && route.namespace === undefined) return undefined;
    return verb !== undefined && type.verbs.includes(verb) ? verb : undefined;
  }

  async function serveResource(
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    route: ResourceRoute,
    verb: Verb,
    principal: Principal,
  ): Promise<void> {
    const { type, namespace, name, subresource } = route;
    const ref = { name: name ?? '', ...(namespace === undefined ? {} : { namespace }) };
    const user = principal.user;
    const dryRun = parseDryRun(query.getAll('dryRun'));
    if (subresource === 'log') return servePodLog(res, query, { namespace: namespace!, name: name! });
    const representation = negotiate(req.headers.accept, verb === 'get' || verb === 'list' || verb === 'watch');
    if (!representation) throw notAcceptable([JSON_TYPE, 'application/json;as=Table;v=v1;g=meta.k8s.io']);
    const now = () => store.clock.now();
    const includeObject = (query.get('includeObject') as IncludeObject | null) ?? 'Metadata';
    // Warnings for the client (fieldValidation Warn), sent as Warning headers with the answer.
    const warnings: string[] = [];
    const sendWarnings = () => {
      if (warnings.length > 0) res.setHeader('Warning', warnings.map(warningHeader));
    };
    let fieldValidation: FieldValidation = 'Warn';
    const checkFieldValidation = (kind: 'CreateOptions' | 'UpdateOptions' | 'PatchOptions') => () => {
      fieldValidation = fieldValidationOf(query, kind);
    };
    const answerObject = (code: number, object: KubeObject) => {
      sendWarnings();
      if (representation.kind === 'table') {
        send(res, code, JSON.stringify(toTable(type, [object], { now: now(), includeObject, withColumns: true, resourceVersion: object.metadata.resourceVersion ?? '' })));
      } else {
        send(res, code, toJson(object));
      }
    };
    switch (verb) {
      case 'get':
        checkGetOptions(query, Number(store.resourceVersion));
        if (subresource === 'status' || subresource === undefined) return answerObject(200, store.get(resourceName(type), ref));
        break;
      case 'list': {
        // The sandbox answers every list whole, as a server may (the API lets it ignore `limit` and send no continue
        // token), but it refuses what a real server refuses, and reads at the resourceVersion an exact list names.
        const at = listReadOf(query, Number(store.resourceVersion));
        if (at !== undefined) {
          const past = store.listAt(resourceName(type), listOptions(query, namespace), at);
          if (past === undefined) throw listTooOld();
          if (representation.kind === 'table') {
            return send(res, 200, JSON.stringify(toTable(type, past.items, { now: now(), includeObject, withColumns: true, resourceVersion: past.resourceVersion })));
          }
          const pastHead = `{"kind":"${type.kind}List","apiVersion":"${apiVersionOf(type)}","metadata":{"resourceVersion":"${past.resourceVersion}"},"items":[`;
          return sendList(req, res, { resourceVersion: past.resourceVersion, body: Buffer.from(`${pastHead}${past.items.map(toJson).join(',')}]}`) });
        }
        const listKey = representation.kind === 'json' ? `${resourceName(type)}|${namespace ?? ''}|${query.get('labelSelector') ?? ''}|${query.get('fieldSelector') ?? ''}` : undefined;
        const cached = listKey === undefined ? undefined : listCache.get(listKey);
        if (cached !== undefined && cached.resourceVersion === store.resourceVersion) return sendList(req, res, cached);
        const result = store.list(resourceName(type), listOptions(query, namespace));
        if (representation.kind === 'table') {
          const table = toTable(type, result.items, { now: now(), includeObject, withColumns: true, resourceVersion: result.resourceVersion });
          return send(res, 200, JSON.stringify(table));
        }
        const head = `{"kind":"${type.kind}List","apiVersion":"${apiVersionOf(type)}","metadata":{"resourceVersion":"${result.resourceVersion}"},"items":[`;
        const entry: CachedList = { resourceVersion: result.resourceVersion, body: Buffer.from(`${head}${result.items.map(toJson).join(',')}]}`) };
        if (listKey !== undefined) remember(listKey, entry);
        return sendList(req, res, entry);
      }
      case 'watch':
        checkWatchOptions(query);
        return serveWatch(req, res, query, route, representation, includeObject);
      case 'create': {
        const body = await readJsonBody(req, bodyLimit, checkFieldValidation('CreateOptions'));
        if (subresource === 'eviction') {
          await store.evict({ namespace: namespace!, name: name! }, body as KubeObject, user, { dryRun, fieldValidation, warnings });
          sendWarnings();
          return send(res, 201, JSON.stringify(success(undefined, 201)));
        }
        const created = store.create(resourceName(type), body as KubeObject, { user, dryRun, fieldValidation, warnings, ...(namespace === undefined ? {} : { namespace }) });
        return answerObject(201, created);
      }
      case 'update': {
        const body = await readJsonBody(req, bodyLimit, checkFieldValidation('UpdateOptions'));
        const object = body as KubeObject;
        if (!isPlainObject(object.metadata)) object.metadata = {};
        if (object.metadata.name !== undefined && object.metadata.name !== name) {
          throw badRequest(`the name of the object (${object.metadata.name}) does not match the name on the URL (${name})`);
        }
        object.metadata.name = name;
        const updated = store.update(resourceName(type), object, { user, dryRun, fieldValidation, warnings, ...(namespace === undefined ? {} : { namespace }), ...(subresource === undefined ? {} : { subresource }) });
        return answerObject(200, updated);
      }
      case 'patch': {
        const contentType = req.headers['content-type'] ?? '';
        const patchType = patchTypeOf(contentType);
        if (!patchType) throw unsupportedMediaType(contentType, [PATCH_TYPES.json, PATCH_TYPES.merge, PATCH_TYPES.strategic]);
        const text = await readBody(req, bodyLimit);
        checkFieldValidation('PatchOptions')();
        const patch = parseJson(text);
        const patched = store.patch(resourceName(type), ref, patchType, patch, { user, dryRun, fieldValidation, warnings, ...(subresource === undefined ? {} : { subresource }) });
        return answerObject(200, patched);
      }
      case 'delete': {
        const text = await readBody(req, bodyLimit);
        const deleteOptions = decodeDeleteOptions(query, text.trim() === '' ? {} : parseJson(text));
        const result = store.delete(resourceName(type), ref, { ...deleteOptions, user });
        if (!result.removed || type.returnsDeletedObject) return send(res, 200, toJson(result.object));
        const details = { name: ref.name, ...(type.group === '' ? {} : { group: type.group }), kind: type.plural, uid: result.object.metadata.uid ?? '' };
        return send(res, 200, JSON.stringify(success(details)));
      }
      case 'deletecollection': {
        const text = await readBody(req, bodyLimit);
        const deleteOptions = decodeDeleteOptions(query, text.trim() === '' ? {} : parseJson(text));
        const deleted = store.deleteCollection(resourceName(type), listOptions(query, namespace), { ...deleteOptions, user });
        const head = `{"kind":"${type.kind}List","apiVersion":"${apiVersionOf(type)}","metadata":{"resourceVersion":"${store.resourceVersion}"},"items":[`;
        return send(res, 200, `${head}${deleted.map(toJson).join(',')}]}`);
      }
    }
    throw methodNotAllowed({ group: type.group, resource: type.plural }, verb);
  }

  function serveWatch(
    req: IncomingMessage,
    res: ServerResponse,
    query: URLSearchParams,
    route: ResourceRoute,
    representation: Representation,
    includeObject: IncludeObject,
  ): void {
    const { type, namespace, name } = route;
    let fieldSelector = query.get('fieldSelector') ?? undefined;
    if (name !== undefined) fieldSelector = [fieldSelector, `metadata.name=${name}`].filter(Boolean).join(',');
    let columnsSent = false;
    const begin = () => {
      if (res.headersSent) return;
      res.writeHead(200, { 'Content-Type': JSON_TYPE, 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
      res.flushHeaders();
    };
    const write = (event: WatchEvent) => {
      begin();
      let object: string;
      if (event.type === 'ERROR' || event.type === 'BOOKMARK' || representation.kind === 'json') {
        object = toJson(event.object as object);
      } else {
        object = JSON.stringify(toTable(type, [event.object], { now: store.clock.now(), includeObject, withColumns: !columnsSent }));
        columnsSent = true;
      }
      res.write(`{"type":"${event.type}","object":${object}}\n`);
    };
    let handle: WatchHandle | undefined;
    const finish = () => {
      openStreams.delete(finish);
      handle?.stop();
      begin();
      res.end();
    };
    const watchOptions = {
      ...listOptions(query, namespace),
      ...(fieldSelector === undefined ? {} : { fieldSelector }),
      allowWatchBookmarks: queryBool(query.get('allowWatchBookmarks')),
    };
    const resourceVersion = query.get('resourceVersion');
    const timeoutSeconds = queryInt(query, 'timeoutSeconds');
    handle = store.watch(
      resourceName(type),
      {
        ...watchOptions,
        ...(resourceVersion === null ? {} : { resourceVersion }),
        ...(timeoutSeconds === undefined ? {} : { timeoutSeconds }),
      },
      write,
      finish,
    );
    if (res.writableEnded) return;
    begin();
    openStreams.add(finish);
    // Chaos: the connection goes mid-stream, with no last event, as a restarting API server or a proxy drops it.
    const dropAfter = options.chaos?.watchDropAfter();
    const dropTimer = dropAfter === undefined ? undefined : store.clock.setTimeout(() => {
      options.chaos?.watchDropped();
      openStreams.delete(finish);
      handle?.stop();
      res.destroy();
    }, dropAfter);
    res.on('close', () => {
      openStreams.delete(finish);
      handle?.stop();
      if (dropTimer !== undefined) store.clock.clearTimeout(dropTimer);
    });
    req.resume();
  }

  async function servePodLog(res: ServerResponse, query: URLSearchParams, ref: { namespace: string; name: string }): Promise<void> {
    const abort = new AbortController();
    const tailLines = queryInt(query, 'tailLines');
    const sinceSeconds = queryInt(query, 'sinceSeconds');
    const container = query.get('container');
    const lines = await store.podLog(ref, {
      follow: queryBool(query.get('follow')),
      previous: queryBool(query.get('previous')),
      timestamps: queryBool(query.get('timestamps')),
      signal: abort.signal,
      ...(container === null ? {} : { container }),
      ...(tailLines === undefined ? {} : { tailLines }),
      ...(sinceSeconds === undefined ? {} : { sinceSeconds }),
    });
    const stop = () => {
      abort.abort();
      res.end();
    };
    openStreams.add(stop);
    res.on('close', () => {
      openStreams.delete(stop);
      abort.abort();
    });
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Transfer-Encoding': 'chunked' });
    try {
      for await (const line of lines) {
        if (abort.signal.aborted) break;
        res.write(line);
      }
    } finally {
      openStreams.delete(stop);
      res.end();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  address = `127.0.0.1:${port}`;

  return {
    url: `http://${address}`,
    port,
    close: async () => {
      for (const stop of [...openStreams]) stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Ended streams leave idle connections, which close() drops; whatever is still mid-request is cut after.
        setImmediate(() => server.closeAllConnections());
      });
    },
  };
}

/** The name the store resolves: `nodes`, `jobs.batch`. */
function resourceName(type: ResourceType): string {
  return type.group === '' ? type.plural : `${type.plural}.${type.group}`;
}

function listOptions(query: URLSearchParams, namespace: string | undefined): { namespace?: string; labelSelector?: string; fieldSelector?: string } {
  const options: { namespace?: string; labelSelector?: string; fieldSelector?: string } = {};
  if (namespace !== undefined) options.namespace = namespace;
  const labelSelector = query.get('labelSelector');
  if (labelSelector !== null) options.labelSelector = labelSelector;
  const fieldSelector = query.get('fieldSelector');
  if (fieldSelector !== null) options.fieldSelector = fieldSelector;
  return options;
}

