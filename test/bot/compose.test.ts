/**
 * docker-compose.yml fits what the code does (Docker is not on every machine that runs the tests, so it is checked as
 * data): the sandbox writes the kubeconfig and plan where the bot reads them, the bot reaches the sandbox's loopback
 * port by sharing its network namespace, every variable the bot requires is in .env.example, and the image holds the
 * scenario the sandbox is started with.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const compose = parse(readFileSync('docker-compose.yml', 'utf8')) as {
  services: Record<string, { command: string[]; network_mode?: string; env_file?: string; volumes?: string[]; ports?: string[] }>;
};

describe('docker-compose.yml', () => {
  const { sandbox, bot } = compose.services;
  const arg = (command: string[], flag: string) => command[command.indexOf(flag) + 1];

  it('runs the sandbox and a bot that reads the kubeconfig and plan it writes', () => {
    expect(sandbox!.command[0]).toBe('sandbox');
    expect(bot!.command[0]).toBe('bot');
    const kubeconfig = arg(sandbox!.command, '--kubeconfig')!;
    expect(arg(bot!.command, '--kubeconfig')).toBe(kubeconfig);
    // The sandbox writes its plan beside the kubeconfig (src/cli/sandbox.ts).
    expect(arg(bot!.command, '--plan')).toBe(kubeconfig.replace(/\.kubeconfig$/, '.plan.yaml'));
    expect(sandbox!.volumes).toEqual(bot!.volumes);
    expect(existsSync(arg(sandbox!.command, '--scenario')!)).toBe(true);
    expect(readFileSync('deploy/Dockerfile', 'utf8')).toContain('COPY fixtures/scenarios');
  });

  it('puts the bot in the sandbox\'s network namespace (the sandbox listens on loopback) and publishes its port', () => {
    expect(bot!.network_mode).toBe('service:sandbox');
    expect(sandbox!.ports).toContain(`${arg(bot!.command, '--port')}:${arg(bot!.command, '--port')}`);
  });

  it('passes the variables the bot requires through .env (documented in .env.example)', () => {
    expect(bot!.env_file).toBe('.env');
    const example = readFileSync('.env.example', 'utf8');
    for (const variable of ['SLACK_BOT_TOKEN', 'SLACK_SIGNING_SECRET']) expect(example).toMatch(new RegExp(`^${variable}=`, 'm'));
    expect(readFileSync('.gitignore', 'utf8')).toMatch(/^\.env$/m);
  });
});
