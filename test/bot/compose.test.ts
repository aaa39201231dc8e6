/**
 * docker-compose.yml fits what the code does (Docker is not on every machine that runs the tests, so it is checked as
 * data): the sandbox writes the kubeconfig and plan where the bot reads them, the bot reaches the sandbox's loopback
 * port by sharing its network namespace, every flag is one the CLI knows, every variable the bot's configuration
 * requires is in .env.example, the image holds the scenario the sandbox is started with, and the sandbox's healthcheck
 * (run here against a real sandbox on 127.0.0.1) says healthy only once the API answers.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { BotConfigError, loadBotConfig } from '../../src/bot/config.ts';
import { buildProgram } from '../../src/cli/main.ts';
import { sandboxCommand } from '../../src/cli/sandbox.ts';

interface Service {
  command: string[];
  network_mode?: string;
  env_file?: string;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as { services: Record<string, Service> };

/** The variables loadBotConfig reports missing when the environment is empty. */
function requiredVariables(socket: boolean): string[] {
  try {
    loadBotConfig({}, { socket });
  } catch (error) {
    if (!(error instanceof BotConfigError)) throw error;
    return [...new Set(error.message.match(/\b(?:SLACK|PATCHPILOT)_[A-Z_]+\b/g) ?? [])].sort();
  }
  return [];
}

describe('docker-compose.yml', () => {
  const { sandbox, bot } = compose.services;
  const arg = (command: string[], flag: string) => command[command.indexOf(flag) + 1];

  it('has the two services, sandbox and bot', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['bot', 'sandbox']);
    expect(sandbox!.command[0]).toBe('sandbox');
    expect(bot!.command[0]).toBe('bot');
  });

  it('runs the sandbox on port 6443 and a bot that reads the kubeconfig and plan it writes on the shared volume', () => {
    expect(arg(sandbox!.command, '--port')).toBe('6443');
    const kubeconfig = arg(sandbox!.command, '--kubeconfig')!;
    expect(kubeconfig).toBe('/shared/sandbox.kubeconfig');
    expect(arg(bot!.command, '--kubeconfig')).toBe(kubeconfig);
    // The sandbox writes its plan beside the kubeconfig (src/cli/sandbox.ts).
    expect(arg(bot!.command, '--plan')).toBe(kubeconfig.replace(/\.kubeconfig$/, '.plan.yaml'));
    expect(sandbox!.volumes).toEqual(['shared:/shared']);
    expect(bot!.volumes).toEqual(sandbox!.volumes);
    expect(existsSync(arg(sandbox!.command, '--scenario')!)).toBe(true);
    expect(readFileSync('deploy/Dockerfile', 'utf8')).toContain('COPY fixtures/scenarios');
  });

  it('gives each command only flags the CLI knows', () => {
    const program = buildProgram();
    for (const service of [sandbox!, bot!]) {
      const [name, ...args] = service.command;
      const known = program.commands.find((c) => c.name() === name)!.options.map((o) => o.long);
      for (const flag of args.filter((a) => a.startsWith('--'))) expect(known, `${name} ${flag}`).toContain(flag);
    }
  });

  it("puts the bot in the sandbox's network namespace (the sandbox listens on loopback) and publishes its port", () => {
    expect(readFileSync('src/sim/kube-api/server.ts', 'utf8')).toMatch(/listen\([^)]*'127\.0\.0\.1'/);
    expect(bot!.network_mode).toBe('service:sandbox');
    // With network_mode the bot has no ports of its own: they are published on the sandbox's namespace.
    expect(bot!.ports).toBeUndefined();
    expect(sandbox!.ports).toContain(`${arg(bot!.command, '--port')}:${arg(bot!.command, '--port')}`);
  });

  it('passes the variables the bot requires through .env (documented in .env.example, which is not ignored; .env is)', () => {
    expect(bot!.env_file).toBe('.env');
    const required = requiredVariables(bot!.command.includes('--socket'));
    expect(required).toEqual(['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET']);
    const example = readFileSync('.env.example', 'utf8');
    for (const variable of required) expect(example).toMatch(new RegExp(`^${variable}=\\S`, 'm'));
    // The example's values are placeholders the configuration accepts, so a copy fails only at Slack, not before.
    const values = Object.fromEntries(example.split('\n').filter((l) => /^[A-Z_]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(() => loadBotConfig(values)).not.toThrow();
    expect(readFileSync('.gitignore', 'utf8')).toMatch(/^\.env$/m);
  });

  it('starts the bot once the sandbox is healthy, and the healthcheck is healthy only once the API answers', async () => {
    expect(bot!.depends_on).toEqual({ sandbox: { condition: 'service_healthy' } });
    const [kind, ...check] = sandbox!.healthcheck!.test;
    expect(kind).toBe('CMD');
    expect(check.slice(0, 2)).toEqual(['node', '-e']);
    const dir = mkdtempSync(join(tmpdir(), 'patchpilot-compose-'));
    const run = (script: string, port: number) =>
      promisify(execFile)(process.execPath, ['-e', script.replaceAll('/shared/', `${dir}/`).replaceAll(':6443/', `:${port}/`)]).then(
        () => 'healthy',
        () => 'unhealthy',
      );
    let stop!: (reason: string) => void;
    const stopped = new Promise<string>((resolve) => (stop = resolve));
    const ready = Promise.withResolvers<{ url: string }>();
    const sink = new Writable({ write: (_chunk, _encoding, done) => done() });
    try {
      expect(await run(check[2]!, 9)).toBe('unhealthy');
      const done = sandboxCommand(
        { scenario: arg(sandbox!.command, '--scenario')!, port: 0, kubeconfig: join(dir, 'sandbox.kubeconfig'), quiet: true },
        { out: sink, stopped, onReady: ready.resolve },
      );
      const { url } = await ready.promise;
      expect(await run(check[2]!, Number(new URL(url).port))).toBe('healthy');
      stop('test');
      await done;
    } finally {
      stop('test');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
