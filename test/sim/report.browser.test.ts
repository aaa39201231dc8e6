/**
 * The `sim --report` page as a person sees it: headless Chromium opens the file offline and takes a screenshot, and
 * the screenshot must show a drawn chart (phase colours, the red fault marker), not a blank or broken page.
 * Skips, saying why, where Chromium is not installed (scripts/setup-test-deps.sh installs it).
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../src/sim/report.ts';
import { runScenario } from '../../src/sim/runner.ts';
import { parseScenario } from '../../src/sim/scenario.ts';
import { scratchDirs } from '../helpers/scratch.ts';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
const SKIP_REASON = `chromium not installed (${CHROMIUM}): run scripts/setup-test-deps.sh`;
if (!hasChromium) console.warn(`report.browser.test.ts skipped: ${SKIP_REASON}`);

const YAML = `
name: report-browser
description: Four nodes one at a time; the keyserver is unreachable from worker-2, so it fails in its patch phase.
seed: 11
cluster:
  nodes:
    - { name: cp-1, os: ubuntu-22.04, role: control-plane }
    - { name: worker, os: ubuntu-22.04, count: 3 }
updates: { security: [openssl, linux-image], other: [vim] }
plan: { agent: legacy, rebootIfRequired: true, concurrency: 1, maxFailures: 1 }
faults:
  - { node: worker-2, kind: keyserver-unreachable }
`;

const scratch = scratchDirs('report-browser');

describe(hasChromium ? 'sim report in a browser' : `sim report in a browser (skipped: ${SKIP_REASON})`, () => {
  it.skipIf(!hasChromium)('renders a non-blank page with the chart drawn', { timeout: 90_000 }, async () => {
    const scenario = parseScenario(YAML, 'report.browser.test.ts');
    const result = await runScenario(scenario);
    const dir = scratch();
    const page = join(dir, 'report.html');
    const png = join(dir, 'report.png');
    writeFileSync(page, renderReport(result, scenario));

    await promisify(execFile)(
      CHROMIUM,
      [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        // Pixels must come out as the CSS says, for the colour checks below.
        '--force-color-profile=srgb',
        '--hide-scrollbars',
        `--user-data-dir=${join(dir, 'profile')}`,
        `--screenshot=${png}`,
        '--window-size=1400,1000',
        pathToFileURL(page).href,
      ],
      { timeout: 60_000 },
    );

    expect(existsSync(png), 'chromium wrote no screenshot').toBe(true);
    // A blank 1400×1000 page compresses to about 6 KB; this page is text, a chart and a table.
    expect(statSync(png).size).toBeGreaterThan(20_000);

    const image = decodePng(readFileSync(png));
    expect([image.width, image.height]).toEqual([1400, 1000]);
    const histogram = colourHistogram(image);
    const [background, backgroundCount] = [...histogram].sort((a, b) => b[1] - a[1])[0]!;
    expect(background, 'the page background is white').toBe(0xffffff);
    const inked = 1 - backgroundCount / (image.width * image.height);
    expect(inked, 'share of non-background pixels').toBeGreaterThan(0.03);
    expect(histogram.size, 'distinct colours').toBeGreaterThan(50);

    // Fault red (the marker, the legend, the fault list) must have rendered at all.
    expect(countNear(histogram, 0xd7191c), 'fault red pixels').toBeGreaterThan(20);
    // The bars: phase colours, or the neutral grey of the bookkeeping steps. The legend's swatches alone make about
    // 1,100 such pixels and the chart several thousand more, so this fails when the SVG chart does not render.
    const barPixels = [0xe69f00, 0x0072b2, 0xcc79a7, 0x009e73, 0xc4c4c4].reduce((sum, c) => sum + countNear(histogram, c), 0);
    expect(barPixels, 'bar pixels').toBeGreaterThan(2_000);
    expect(countNear(histogram, 0x0072b2), 'patch-blue pixels').toBeGreaterThan(1_000);
  });
});

interface Image {
  width: number;
  height: number;
  /** Bytes per pixel: 3 (RGB) or 4 (RGBA). */
  channels: number;
  pixels: Buffer;
}

/** Just enough PNG for a Chromium screenshot: 8-bit RGB or RGBA, not interlaced. */
function decodePng(file: Buffer): Image {
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
function colourHistogram(image: Image): Map<number, number> {
  const histogram = new Map<number, number>();
  for (let i = 0; i < image.pixels.length; i += image.channels) {
    const colour = (image.pixels[i]! << 16) | (image.pixels[i + 1]! << 8) | image.pixels[i + 2]!;
    histogram.set(colour, (histogram.get(colour) ?? 0) + 1);
  }
  return histogram;
}

/** Pixels within a small distance of a colour, so a renderer's rounding does not fail the test. */
function countNear(histogram: Map<number, number>, colour: number, tolerance = 3): number {
  const channel = (c: number, shift: number) => (c >> shift) & 0xff;
  let count = 0;
  for (const [c, n] of histogram) {
    if ([16, 8, 0].every((s) => Math.abs(channel(c, s) - channel(colour, s)) <= tolerance)) count += n;
  }
  return count;
}
