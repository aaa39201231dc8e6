/**
 * Just enough of Kubernetes' protobuf encoding to read the bodies kubectl will not send as JSON. kubectl's typed
 * clients (auth can-i, create namespace) always POST `application/vnd.kubernetes.protobuf` and do not retry with
 * JSON on a 415, whatever discovery says; they accept a JSON answer, so only requests need decoding. A body is the
 * `k8s\0` magic and a runtime.Unknown envelope (typeMeta, raw) whose raw bytes are the object's generated message;
 * the schemas below name the fields of the few messages decoded, by the numbers in k8s.io/api's generated.proto.
 */
import { badRequest } from './status.ts';

export const PROTOBUF_TYPE = 'application/vnd.kubernetes.protobuf';

const MAGIC = [0x6b, 0x38, 0x73, 0x00];

/** A field: its JSON name and how to read it. Unlisted fields are skipped, as an older server would. */
type Field = readonly [name: string, kind: 'string' | 'strings' | 'bool' | 'map' | 'bytesMap' | Schema];
type Schema = Readonly<Record<number, Field>>;

const OBJECT_META: Schema = {
  1: ['name', 'string'],
  2: ['generateName', 'string'],
  3: ['namespace', 'string'],
  11: ['labels', 'map'],
  12: ['annotations', 'map'],
  14: ['finalizers', 'strings'],
};

const RESOURCE_ATTRIBUTES: Schema = {
  1: ['namespace', 'string'],
  2: ['verb', 'string'],
  3: ['group', 'string'],
  4: ['version', 'string'],
  5: ['resource', 'string'],
  6: ['subresource', 'string'],
  7: ['name', 'string'],
};

const SCHEMAS: Readonly<Record<string, Schema>> = {
  'authorization.k8s.io/v1 SelfSubjectAccessReview': {
    1: ['metadata', OBJECT_META],
    2: ['spec', { 1: ['resourceAttributes', RESOURCE_ATTRIBUTES], 2: ['nonResourceAttributes', { 1: ['path', 'string'], 2: ['verb', 'string'] }] }],
  },
  'v1 Namespace': {
    1: ['metadata', OBJECT_META],
    2: ['spec', { 1: ['finalizers', 'strings'] }],
  },
  'v1 ConfigMap': {
    1: ['metadata', OBJECT_META],
    2: ['data', 'map'],
    3: ['binaryData', 'bytesMap'],
    4: ['immutable', 'bool'],
  },
  'v1 ServiceAccount': {
    1: ['metadata', OBJECT_META],
  },
};

class Reader {
  readonly bytes: Uint8Array;
  #at: number;
  readonly #end: number;
  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    this.bytes = bytes;
    this.#at = start;
    this.#end = end;
  }

  get done(): boolean {
    return this.#at >= this.#end;
  }

  varint(): number {
    let value = 0;
    for (let shift = 0; shift < 64; shift += 7) {
      if (this.#at >= this.#end) throw truncated();
      const byte = this.bytes[this.#at++]!;
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw truncated();
  }

  /** The next length-delimited field as a reader of its own. */
  sub(): Reader {
    const length = this.varint();
    if (this.#at + length > this.#end) throw truncated();
    const reader = new Reader(this.bytes, this.#at, this.#at + length);
    this.#at += length;
    return reader;
  }

  text(): string {
    return this.#rest().toString('utf8');
  }

  base64(): string {
    return this.#rest().toString('base64');
  }

  #rest(): Buffer {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.#at, this.#end - this.#at);
  }

  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 2) this.sub();
    else if (wireType === 1 || wireType === 5) this.#at += wireType === 1 ? 8 : 4;
    else throw badRequest(`unsupported protobuf wire type ${wireType}`);
  }
}

const truncated = () => badRequest('the protobuf body is truncated');

function fields(reader: Reader, each: (field: number, wireType: number) => void): void {
  while (!reader.done) {
    const tag = reader.varint();
    each(Math.floor(tag / 8), tag % 8);
  }
}

function decode(reader: Reader, schema: Schema): Record<string, unknown> {
  const object: Record<string, unknown> = {};
  fields(reader, (number, wireType) => {
    const field = schema[number];
    if (field === undefined || (wireType !== 2 && field[1] !== 'bool')) return reader.skip(wireType);
    const [name, kind] = field;
    if (kind === 'bool') object[name] = reader.varint() !== 0;
    else if (kind === 'string') {
      // The generated Go types omit empty strings from JSON; proto2 sends them. Absent is what JSON would say.
      const text = reader.sub().text();
      if (text !== '') object[name] = text;
    }
    else if (kind === 'strings') ((object[name] ??= []) as string[]).push(reader.sub().text());
    else if (kind === 'map' || kind === 'bytesMap') {
      const entry = reader.sub();
      let key = '';
      let value = '';
      fields(entry, (n, w) => {
        if (w !== 2) entry.skip(w);
        else if (n === 1) key = entry.sub().text();
        // JSON carries bytes as base64.
        else if (n === 2) value = kind === 'map' ? entry.sub().text() : entry.sub().base64();
        else entry.skip(w);
      });
      ((object[name] ??= {}) as Record<string, string>)[key] = value;
    } else object[name] = decode(reader.sub(), kind);
  });
  return object;
}

/** The JSON form of a protobuf-encoded object; a 415 names what the server can read when its kind is not one of them. */
export function decodeProtobufObject(bytes: Uint8Array, unsupported: () => Error): Record<string, unknown> {
  if (bytes.length < MAGIC.length || MAGIC.some((b, i) => bytes[i] !== b)) throw badRequest('the protobuf body does not start with the k8s magic number');
  let typeMeta: Record<string, unknown> = {};
  let raw: Reader | undefined;
  const envelope = new Reader(bytes, MAGIC.length);
  fields(envelope, (number, wireType) => {
    if (number === 1 && wireType === 2) typeMeta = decode(envelope.sub(), { 1: ['apiVersion', 'string'], 2: ['kind', 'string'] });
    else if (number === 2 && wireType === 2) raw = envelope.sub();
    else envelope.skip(wireType);
  });
  const apiVersion = String(typeMeta.apiVersion ?? '');
  const kind = String(typeMeta.kind ?? '');
  const schema = SCHEMAS[`${apiVersion} ${kind}`];
  if (schema === undefined || raw === undefined) throw unsupported();
  return { apiVersion, kind, ...decode(raw, schema) };
}
