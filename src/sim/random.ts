/**
 * Seeded randomness. Every node draws from its own streams, named by node and purpose (`worker-2/drain`), so what one
 * node does never depends on how many draws other nodes made before it: a different concurrency, a replay or a node
 * added later leaves every other node's behaviour unchanged. Same seed, same streams, same event log.
 */

/** sfc32: small, fast, good statistical quality, and fully determined by its 128-bit state. */
export class Random {
  // The state is kept as int32, which V8 stores in the object itself; uint32 words above 2^31 were boxed numbers, four
  // per stream, and a 100,000-node simulation keeps a few hundred thousand streams (issue 13).
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number | string) {
    const [a, b, c, d] = seedWords(String(seed));
    this.#a = a | 0;
    this.#b = b | 0;
    this.#c = c | 0;
    this.#d = d | 0;
    for (let i = 0; i < 12; i++) this.next();
  }

  /** Uniform in [0, 1). */
  next(): number {
    const a = this.#a >>> 0;
    const b = this.#b >>> 0;
    const c = this.#c >>> 0;
    let t = (a + b) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    const rotated = (c << 21) | (c >>> 11);
    this.#d = (this.#d + 1) | 0;
    t = (t + this.#d) | 0;
    this.#c = (rotated + t) | 0;
    return (t >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

/** A stream's purpose: what a node draws for. */
export type StreamPurpose = 'drain' | 'api' | 'scan' | 'prefetch' | 'patch' | 'reboot';

/** The stream for one node and purpose: `streams.of('worker-2', 'drain')`. Created on first use, then continued. */
export class RandomStreams {
  readonly #seed: number;
  // By node, then purpose: a key string per stream cost more than the stream.
  readonly #streams = new Map<string, Partial<Record<StreamPurpose, Random>>>();

  constructor(seed: number) {
    this.#seed = seed;
  }

  of(node: string, purpose: StreamPurpose): Random {
    let streams = this.#streams.get(node);
    if (!streams) this.#streams.set(node, (streams = {}));
    return (streams[purpose] ??= new Random(`${this.#seed}/${node}/${purpose}`));
  }
}

/** cyrb128: spreads a string over four 32-bit words. */
function seedWords(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i++) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  return [(h1 ^ h2 ^ h3 ^ h4) >>> 0, (h2 ^ h1) >>> 0, (h3 ^ h1) >>> 0, (h4 ^ h1) >>> 0];
}
