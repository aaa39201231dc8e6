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
import { describe, expect, it } from 'vitest';
import { renderReport } from '../../src/sim/report.ts';
import { runScenario } from '../../src/sim/runner.ts';
import { parseScenario } from '../../src/sim/scenario.ts';
import { colourHistogram, countNear, decodePng } from '../helpers/png.ts';
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
