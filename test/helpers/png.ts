/** Reading Chromium's screenshots in the browser tests: a minimal PNG decoder and colour counts. */
import { inflateSync } from 'node:zlib';
import { expect } from 'vitest';

export interface Image {
  width: number;
  height: number;
  /** Bytes per pixel: 3 (RGB) or 4 (RGBA). */
  channels: number;
  pixels: Buffer;
}

/** Just enough PNG for a Chromium screenshot: 8-bit RGB or RGBA, not interlaced. */
export function decodePng(file: Buffer): Image {
  expect(file.subarray(0, 8).toString('hex'), 'PNG signature').toBe('89504e470d0a1a0a');
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < file.length) {
    const length = file.readUInt32BE(offset);
    const type = file.toString('latin1', offset + 4, offset + 8);
    const data = file.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [bitDepth, colourType, , , interlace] = [data[8], data[9], data[10], data[11], data[12]];
      expect({ bitDepth, interlace }, 'PNG format').toEqual({ bitDepth: 8, interlace: 0 });
      expect([2, 6], 'PNG colour type').toContain(colourType);
      channels = colourType === 6 ? 4 : 3;
    } else if (type === 'IDAT') {
      idat.push(data);
    } else if (type === 'IEND') {
      break;
    }
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = y * stride;
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[out + x - channels]! : 0;
      const b = y > 0 ? pixels[out - stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[out - stride + x - channels]! : 0;
      let predictor: number;
      switch (filter) {
        case 0:
          predictor = 0;
          break;
        case 1:
          predictor = a;
          break;
        case 2:
          predictor = b;
          break;
        case 3:
          predictor = (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c;
          const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
          predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`PNG filter type ${filter} on row ${y}`);
      }
      pixels[out + x] = (line[x]! + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** Pixel count per 0xRRGGBB colour (alpha ignored: a screenshot is opaque). */
export function colourHistogram(image: Image): Map<number, number> {
  const histogram = new Map<number, number>();
  for (let i = 0; i < image.pixels.length; i += image.channels) {
    const colour = (image.pixels[i]! << 16) | (image.pixels[i + 1]! << 8) | image.pixels[i + 2]!;
    histogram.set(colour, (histogram.get(colour) ?? 0) + 1);
  }
  return histogram;
}

/** Pixels within a small distance of a colour, so a renderer's rounding does not fail the test. */
export function countNear(histogram: Map<number, number>, colour: number, tolerance = 3): number {
  const channel = (c: number, shift: number) => (c >> shift) & 0xff;
  let count = 0;
  for (const [c, n] of histogram) {
    if ([16, 8, 0].every((s) => Math.abs(channel(c, s) - channel(colour, s)) <= tolerance)) count += n;
  }
  return count;
}
