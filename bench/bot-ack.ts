/**
 * Slash-command acknowledgement latency: 50 concurrent, correctly signed `/patch status` and `/patch help` requests
 * to the bot over HTTP, a few rounds, against a fake Slack Web API and a simulated cluster. Slack allows 3,000 ms for
 * the ack; the target here is p99 <= 100 ms. `node bench/bot-ack.ts` prints one JSON line; bench/run.ts prints it.
 * The bot serves from a child process; the requests come from this one.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBot } from '../src/bot/app.ts';
import { parsePlan } from '../src/engine/plan.ts';
import { kubeTarget } from '../src/cli/targets.ts';
import { kubeconfig, startKubeApiServer } from '../src/sim/kube-api/index.ts';
import { createSandbox } from '../src/sim/sandbox/index.ts';
import { ScaledClock } from '../src/sim/scaled-clock.ts';
import { loadScenario } from '../src/sim/scenario.ts';
import { openStore } from '../src/store/index.ts';
import { FakeSlack, signedHeaders, SIGNING_SECRET, slashBody } from '../test/helpers/fake-slack.ts';

const CONCURRENT = 50;
const ROUNDS = 10;

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Starts the bot, its fake Slack and its simulated cluster; prints the bot's URL; runs until stdin closes. */
async function serve(): Promise<void> {
  const fake = new FakeSlack();
  await fake.start();
  const dir = mkdtempSync(join(tmpdir(), 'patchpilot-bench-bot-'));
  const scenario = loadScenario('fixtures/scenarios/sandbox-palette.yaml');
  const clock = new ScaledClock(60);
  const sandbox = createSandbox(scenario, clock);
  const api = await startKubeApiServer({ store: sandbox.store });
  writeFileSync(join(dir, 'kubeconfig'), kubeconfig(api.url));
  const store = openStore(':memory:');
  const target = kubeTarget({ kubeconfig: join(dir, 'kubeconfig'), plan: parsePlan({ ...scenario.planInput, cluster: scenario.clusterName }), db: store, clock, palette: null });
  const bot = createBot({
    config: { mode: 'http', signingSecret: SIGNING_SECRET, botToken: 'xoxb-bench', appToken: null, apiUrl: fake.apiUrl, approvers: [], channels: new Map(), port: 0 },
    clusters: [target],
    botUserId: 'UBOT',
    log: () => {},
  });
  const { url } = await bot.start(0);
  console.log(JSON.stringify({ url, fake: fake.url }));
  try {
    await new Promise<void>((resolve) => {
      process.stdin.on('data', () => {});
      process.stdin.on('end', () => resolve());
      process.stdin.on('close', () => resolve());
    });
  } finally {
    await bot.stop();
    sandbox.binding.close();
    clock.clearAll();
    await api.close();
    store.close();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The bot runs in a child process, as it would on its own host: the load generator's own work (50 fetches at once)
 * does not share the bot's event loop.
 */
export async function benchBotAck() {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--serve'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const ready = await new Promise<{ url: string; fake: string }>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve(JSON.parse(line) as { url: string; fake: string });
    });
    child.once('exit', (code) => reject(new Error(`the bot exited with ${code}`)));
  });
  const fake = { url: ready.fake } as FakeSlack;
  const latencies: number[] = [];
  const byCommand: Record<'status' | 'help', number[]> = { status: [], help: [] };
  try {
    // Round 0 warms the bot up (JIT, connection set-up) and is not counted.
    for (let round = 0; round <= ROUNDS; round++) {
      await Promise.all(
        Array.from({ length: CONCURRENT }, async (_, i) => {
          const command = i % 2 === 0 ? 'status' : 'help';
          const body = slashBody(fake, command, `U${i}`);
          const started = performance.now();
          const res = await fetch(`${ready.url}/slack/events`, { method: 'POST', body, headers: signedHeaders(body) });
          const answer = await res.text();
          const elapsed = performance.now() - started;
          if (res.status !== 200) throw new Error(`ack answered ${res.status}`);
          // The ack carries the answer itself (an ephemeral message): a timing of an empty or error ack would flatter.
          if (!/"text":"[^"]/.test(answer)) throw new Error(`the ack of /patch ${command} has no answer: ${answer.slice(0, 200)}`);
          if (round > 0) {
            latencies.push(elapsed);
            byCommand[command].push(elapsed);
          }
        }),
      );
    }
  } finally {
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
  }
  const ms = (value: number) => Math.round(value * 10) / 10;
  const summary = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { p50Ms: ms(percentile(sorted, 50)), p99Ms: ms(percentile(sorted, 99)) };
  };
  latencies.sort((a, b) => a - b);
  return {
    status: summary(byCommand.status),
    help: summary(byCommand.help),
    requests: latencies.length,
    concurrent: CONCURRENT,
    p50Ms: Math.round(percentile(latencies, 50) * 10) / 10,
    p99Ms: Math.round(percentile(latencies, 99) * 10) / 10,
    maxMs: Math.round((latencies.at(-1) ?? 0) * 10) / 10,
  };
}

if (import.meta.main) {
  if (process.argv.includes('--serve')) await serve();
  else console.log(JSON.stringify(await benchBotAck()));
}
