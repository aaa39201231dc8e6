/**
 * The GitHub Actions workflow is where the container suites actually run, and nothing else executes it before a push:
 * this reads it as YAML and checks that it still runs what those suites need, in an order that works.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { DEFAULT_AGENT_IMAGE } from '../../src/cluster/kube/job-manifest.ts';

const root = (path: string) => fileURLToPath(new URL(`../../${path}`, import.meta.url));

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  'runs-on': string;
  env?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  env?: Record<string, string>;
  jobs: Record<string, Job>;
}

const workflow = parse(readFileSync(root('.github/workflows/ci.yml'), 'utf8')) as Workflow;

/** Index of the first step whose `run` contains `command` (or whose `uses` starts with it); -1 when none. */
function stepIndex(job: Job, command: string): number {
  return job.steps.findIndex((s) => (s.run ?? '').split('\n').some((line) => line.trim().startsWith(command)) || s.uses?.startsWith(command));
}

function job(name: string): Job {
  const found = workflow.jobs[name];
  if (!found) throw new Error(`ci.yml has no job "${name}"`);
  return found;
}

describe('.github/workflows/ci.yml', () => {
  it('every npm script a step runs exists in package.json, the heavy suite among them', () => {
    const scripts = (JSON.parse(readFileSync(root('package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const steps = Object.values(workflow.jobs as Record<string, { steps: Array<{ run?: string }> }>).flatMap((j) => j.steps.map((s) => s.run ?? ''));
    const named = steps.flatMap((run) => [...run.matchAll(/\bnpm (?:run )?([\w:-]+)/g)].map((m) => m[1]!)).filter((n) => n !== 'ci');
    expect(named).toContain('test:full');
    for (const name of named) expect(scripts[name], `npm script ${name}`).toBeDefined();
    expect(scripts['test:full']).toContain('PATCHPILOT_FULL_SUITE=1');
  });

  it('runs on every push and pull request', () => {
    expect(Object.keys(workflow.on).sort()).toEqual(['pull_request', 'push']);
  });

  it('the test job installs, sets up the test packages, builds the node images, runs npm test and then the heavy suite, in that order', () => {
    const test = job('test');
    expect(test['runs-on']).toBe('ubuntu-latest');
    const order = ['actions/checkout', 'npm ci', 'sudo bash scripts/setup-test-deps.sh', 'docker build', 'npm test', 'npm run test:full'].map((c) => stepIndex(test, c));
    expect(order.every((i) => i >= 0), `steps found at ${order.join(', ')}`).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
  });

  it('the kind job installs kind (without a cluster: the tests make their own) and then runs the e2e suites', () => {
    const kind = job('kind');
    const install = kind.steps.find((s) => s.uses?.startsWith('helm/kind-action@'));
    expect(install?.with?.install_only).toBe(true);
    const e2e = stepIndex(kind, 'npx vitest run test/e2e');
    expect(e2e).toBeGreaterThan(kind.steps.indexOf(install!));
    expect(e2e).toBeGreaterThan(stepIndex(kind, 'npm ci'));
    // What that command picks up.
    expect(existsSync(root('test/e2e/kind.test.ts'))).toBe(true);
    expect(existsSync(root('test/e2e/k3s.test.ts'))).toBe(true);
  });

  it('only the test job skips kind, by the variable the kind suite reads', () => {
    expect(job('test').env?.PATCHPILOT_SKIP_KIND).toBeTruthy();
    expect(job('kind').env?.PATCHPILOT_SKIP_KIND).toBeUndefined();
    expect(readFileSync(root('test/e2e/kind.test.ts'), 'utf8')).toContain('process.env.PATCHPILOT_SKIP_KIND');
  });

  it('builds every node image in fixtures/images, with the tag the container suite uses', () => {
    const images = readdirSync(root('fixtures/images')).filter((d) => existsSync(root(`fixtures/images/${d}/Dockerfile`))).sort();
    expect(images.length).toBeGreaterThan(0);
    for (const name of ['test', 'kind']) {
      const build = job(name).steps.find((s) => s.run?.includes('docker build'));
      const loop = /for os in ([^;]+);/.exec(build?.run ?? '')?.[1]?.trim().split(/\s+/).sort();
      expect(loop, `${name}: the images built`).toEqual(images);
      expect(build?.run).toContain('--tag "patchpilot-test-node:$os"');
    }
    expect(readFileSync(root('test/e2e/containers.test.ts'), 'utf8')).toContain('`patchpilot-test-node:${node.os}`');
  });

  it("pulls the agent Job's own image", () => {
    expect(workflow.env?.AGENT_IMAGE).toBe(DEFAULT_AGENT_IMAGE);
    for (const name of ['test', 'kind']) expect(stepIndex(job(name), 'docker pull "$AGENT_IMAGE"')).toBeGreaterThanOrEqual(0);
  });

  it('uses a Node the project supports', () => {
    const engines = (JSON.parse(readFileSync(root('package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const minimum = Number(/>=\s*(\d+)/.exec(engines)?.[1]);
    for (const name of ['test', 'kind']) {
      const setup = job(name).steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
      expect(Number(setup?.with?.['node-version'])).toBeGreaterThanOrEqual(minimum);
    }
  });
});
