/**
 * The layer arrows of ARCHITECTURE.md hold (dependency-cruiser with .dependency-cruiser.cjs, through
 * scripts/check-layers.ts), and the check fails on a violation: a scratch tree with an engine file importing the CLI
 * and a store file importing the service.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkLayers } from '../scripts/check-layers.ts';
import { scratchDirs } from './helpers/scratch.ts';

const ROOT = resolve(import.meta.dirname, '..');
const scratch = scratchDirs('layers');

describe('layer arrows', () => {
  it('src follows ARCHITECTURE.md', async () => {
    expect(await checkLayers(ROOT)).toEqual([]);
  });

  it('a violation is found and named', async () => {
    const root = scratch();
    copyFileSync(join(ROOT, '.dependency-cruiser.cjs'), join(root, '.dependency-cruiser.cjs'));
    const file = (path: string, text: string) => {
      mkdirSync(join(root, path, '..'), { recursive: true });
      writeFileSync(join(root, path), text);
    };
    file('src/cli/main.ts', "export const main = (argv: string[]): number => argv.length;\n");
    file('src/service/orchestrator.ts', "import { plan } from '../engine/plan.ts';\nexport const run = () => plan;\n");
    file('src/engine/plan.ts', "import { main } from '../cli/main.ts';\nexport const plan = { cluster: 'c', main };\n");
    file('src/store/store.ts', "import { run } from '../service/orchestrator.ts';\nexport const store = run;\n");
    expect(await checkLayers(root)).toEqual(
      expect.arrayContaining([
        { rule: 'engine-is-pure', from: 'src/engine/plan.ts', to: 'src/cli/main.ts' },
        { rule: 'store-below-service', from: 'src/store/store.ts', to: 'src/service/orchestrator.ts' },
      ]),
    );
    expect(await checkLayers(root)).toHaveLength(2);
  });
});
