/**
 * Checks the layer arrows of ARCHITECTURE.md (the rules in .dependency-cruiser.cjs) with dependency-cruiser.
 * dependency-cruiser cannot read TypeScript through this project's TypeScript 7 (its API lacks what it needs), so the
 * sources are first turned into JavaScript by Node's own type stripping, the way Node runs them, and the copy is
 * cruised. Type-only imports would vanish in that step; they are kept as bare imports, so a layer that leans on
 * another's types breaks an arrow as an import of its code does.
 *
 *   node scripts/check-layers.ts [ROOT]   prints each violation, exit 1 if there is one
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire, stripTypeScriptTypes } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cruise, type IForbiddenRuleType } from 'dependency-cruiser';

export interface LayerViolation {
  rule: string;
  from: string;
  to: string;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The violations of `root`'s src/ against its .dependency-cruiser.cjs. */
export async function checkLayers(root: string): Promise<LayerViolation[]> {
  const config = createRequire(import.meta.url)(join(root, '.dependency-cruiser.cjs')) as { forbidden: IForbiddenRuleType[] };
  const copy = mkdtempSync(join(tmpdir(), 'patchpilot-layers-'));
  const cwd = process.cwd();
  try {
    for (const file of sources(join(root, 'src'))) {
      const ts = readFileSync(file, 'utf8');
      // Type-only imports vanish when types are stripped, but a layer may not lean on another's types either: each
      // one is kept as a bare import of its module, which dependency-cruiser follows like any other.
      const typeOnly = [...ts.matchAll(/^\s*(?:import|export)\s+type\s[^;]*?\sfrom\s+(['"][^'"]+['"])/gm)].map((m) => `import ${m[1]};`);
      const js = [stripTypeScriptTypes(ts, { mode: 'strip' }), ...typeOnly]
        .join('\n')
        // Relative imports name .ts files; in the copy they are .js.
        .replace(/(from\s+|import\s*\(\s*|import\s+)(['"])(\.{1,2}\/[^'"]+)\.ts\2/g, '$1$2$3.js$2');
      const target = join(copy, relative(root, file)).replace(/\.ts$/, '.js');
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, js);
    }
    process.chdir(copy);
    const result = await cruise(['src'], { ruleSet: { forbidden: config.forbidden }, validate: true, doNotFollow: { path: 'node_modules' } });
    const output = result.output;
    if (typeof output === 'string') throw new Error(`dependency-cruiser returned text: ${output.slice(0, 200)}`);
    return output.summary.violations.map((v) => ({ rule: v.rule.name, from: v.from.replace(/\.js$/, '.ts'), to: v.to.replace(/\.js$/, '.ts') }));
  } finally {
    process.chdir(cwd);
    rmSync(copy, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const root = resolve(process.argv[2] ?? '.');
  const violations = await checkLayers(root);
  for (const v of violations) process.stdout.write(`${v.rule}: ${v.from} -> ${v.to}\n`);
  process.stdout.write(violations.length === 0 ? 'layer arrows: no violation\n' : `layer arrows: ${violations.length} violation(s) (see ARCHITECTURE.md)\n`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}
