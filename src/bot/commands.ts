/**
 * The `/patch` command language, parsed from what Slack sends. Pure: no Slack, no cluster. Every mistake comes back as
 * a message saying what was wrong and the right form of the subcommand, never as an exception: a user who typed
 * `/patch rn prod` deserves "did you mean run?", not silence.
 */
import { PRESETS, presetToCron, scheduleSchema, type Preset } from '../engine/schedule.ts';

export type PatchCommand =
  | { kind: 'help' }
  | { kind: 'status' | 'scan' | 'doctor' | 'unstick' | 'history'; cluster?: string }
  | { kind: 'run'; cluster?: string; nodes?: string[]; noReboot: boolean; concurrency?: number }
  | { kind: 'approve' | 'reject' | 'pause' | 'resume' | 'cancel'; runId: string }
  | { kind: 'reset'; cluster?: string; nodes?: string[] }
  | { kind: 'schedule'; cluster?: string; schedule: ScheduleSpec };

/**
 * The presets are the engine's (Palette's): weekly (Sundays), biweekly (every second Sunday), monthly (the 1st) and
 * bimonthly (the 1st of odd months), all at 00:00 UTC. `cron` is the same schedule as a cron expression, for display;
 * null for biweekly, which cron cannot express (its fields cannot count weeks). A CRON is five fields or a descriptor
 * (`@daily`, `@weekly`, ...), validated by the engine (croner, without its L/W/# extensions, which Palette refuses).
 */
export type ScheduleSpec = { kind: 'preset'; preset: Preset; cron: string | null } | { kind: 'cron'; cron: string } | { kind: 'off' };

export type ParseResult = { ok: true; command: PatchCommand } | { ok: false; error: string; usage: string };

export const USAGE: Record<PatchCommand['kind'], string> = {
  help: '/patch help',
  status: '/patch status [cluster]',
  scan: '/patch scan [cluster]',
  run: '/patch run [cluster] [--nodes a,b] [--no-reboot] [--concurrency N]',
  approve: '/patch approve RUN',
  reject: '/patch reject RUN',
  pause: '/patch pause RUN',
  resume: '/patch resume RUN',
  cancel: '/patch cancel RUN',
  doctor: '/patch doctor [cluster]',
  unstick: '/patch unstick [cluster]',
  reset: '/patch reset [cluster] [--nodes a,b]',
  schedule: `/patch schedule [cluster] ${PRESETS.join('|')}|"CRON"|off`,
  history: '/patch history [cluster]',
};

const WHAT: Record<PatchCommand['kind'], string> = {
  help: 'this list',
  status: 'compliance (nodes behind on security updates or needing a reboot) and the active or last run; every cluster when none is named',
  scan: 'run the agent report-only on every Linux node (no cordon) and record what it finds',
  run: 'patch the cluster (or only some nodes); posts a card that someone else approves',
  approve: 'approve a run waiting for approval (not your own)',
  reject: 'reject a run waiting for approval',
  pause: 'finish the nodes in flight, start no new ones',
  resume: 'go on with a paused run',
  cancel: 'stop a run: nodes in flight finish their step and get their cordon back',
  doctor: 'why does an On-Demand Update do nothing? each cause checked, with evidence and the fix',
  unstick: 'clear what wedges patching (a stale Palette timestamp, an expired Lease, a run nobody drives)',
  reset: 'remove the patch labels so the next run patches the nodes again (asks to confirm)',
  schedule: 'patch on a schedule, each time after an approval: Palette\'s presets (weekly: Sundays; biweekly: every second Sunday; monthly: the 1st; bimonthly: the 1st of odd months; all at 00:00 UTC), a cron expression in UTC (`"0 3 * * 1"`, `@daily`), or off',
  history: 'the last runs and their outcomes',
};

export const HELP_TEXT = [
  '*patchpilot*: OS security patching, one node at a time.',
  ...(Object.keys(USAGE) as PatchCommand['kind'][]).map((kind) => `• \`${USAGE[kind]}\`: ${WHAT[kind]}`),
].join('\n');

const CLUSTER_COMMANDS = new Set(['status', 'scan', 'doctor', 'unstick', 'history']);
const OPTIONS: Partial<Record<PatchCommand['kind'], readonly string[]>> = { run: ['--nodes', '--no-reboot', '--concurrency'], reset: ['--nodes'] };
/** Cron's descriptors (robfig/cron and croner read them); @reboot is not a time. */
const DESCRIPTOR = /^@(yearly|annually|monthly|weekly|daily|midnight|hourly)$/;
const RUN_COMMANDS = new Set(['approve', 'reject', 'pause', 'resume', 'cancel']);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Slack's formatting undone: smart quotes, non-breaking spaces, `<http://x|x>` links, `<mailto:..|text>`. */
export function normalise(text: string): string {
  return text
    .replace(/<(?:https?:\/\/|mailto:)[^|>]*\|([^>]*)>/g, '$1')
    .replace(/<(?:https?:\/\/|mailto:)([^|>]*)>/g, '$1')
    // Slack escapes these three in the text it sends (after its own <...> markup, which is undone above).
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
    // Inline code: people paste `prod` or `0 3 * * 1` from a runbook.
    .replace(/`+([^`]*)`+/g, '$1')
    .replace(/[\u201C\u201D\u201E\u201F\u2033]/g, '"')
    .replace(/[\u2018\u2019\u201A\u201B\u2032]/g, "'")
    .replace(/[\u2012\u2013\u2014\u2015\u2212]/g, (dash, offset, whole: string) => (whole[offset + 1] === '-' || /\s/.test(whole[offset - 1] ?? ' ') ? '--' : dash))
    .replace(/[\s\u00A0\u2000-\u200B\u3000]+/g, ' ')
    .trim();
}

/** Splits on spaces, keeping "quoted strings" (a cron expression) whole. */
function tokens(text: string): string[] | { error: string } {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let match: RegExpExecArray | null;
  while ((match = re.exec(text)) !== null) out.push(match[1] ?? match[2] ?? match[3] ?? '');
  const quotes = (text.match(/"/g) ?? []).length;
  if (quotes % 2 === 1) return { error: 'a quote is not closed' };
  return out;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length]!;
}

/** The nearest of `candidates` to `word`, if it is a plausible typo of it. */
function nearest(word: string, candidates: readonly string[], within: number): string | undefined {
  const best = candidates.map((c) => ({ c, d: distance(word, c) })).sort((a, b) => a.d - b.d)[0];
  return best !== undefined && best.d <= within ? best.c : undefined;
}

function unknownOption(kind: PatchCommand['kind'], flag: string): ParseResult {
  const options = OPTIONS[kind] ?? [];
  const guess = nearest(flag.replace(/^-+/, '--').toLowerCase(), options, 3);
  const hint = guess !== undefined ? ` (did you mean \`${guess}\`?)` : options.length > 0 ? ` (${kind} takes ${options.join(', ')})` : ` (${kind} takes no options)`;
  return fail(kind, `unknown option "${short(flag)}"${hint}`);
}

/** Own keys only: `constructor` and `__proto__` are not subcommands. */
const isKind = (word: string): word is PatchCommand['kind'] => Object.hasOwn(USAGE, word);

const fail = (kind: PatchCommand['kind'], error: string): ParseResult => ({ ok: false, error, usage: USAGE[kind] });

function clusterName(kind: PatchCommand['kind'], value: string): string | ParseResult {
  const name = value.toLowerCase();
  if (!DNS_LABEL.test(name)) return fail(kind, `"${short(value)}" is not a cluster name (lower-case letters, digits and '-', at most 63)`);
  return name;
}

function nodeList(kind: PatchCommand['kind'], value: string | undefined): string[] | ParseResult {
  if (value === undefined || value === '') return fail(kind, '--nodes needs a comma-separated list of node names');
  const names = value.split(',').map((n) => n.trim().toLowerCase()).filter(Boolean);
  if (names.length === 0) return fail(kind, '--nodes needs a comma-separated list of node names');
  const bad = names.find((n) => !DNS_SUBDOMAIN.test(n));
  if (bad !== undefined) return fail(kind, `"${short(bad)}" is not a node name`);
  // As a plan file says of its `nodes`: a name twice is a typo for another node, which the run would leave out.
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) return fail(kind, `"${short(twice)}" is listed twice: a typo for another node?`);
  return names;
}

const short = (text: string) => (text.length > 40 ? `${text.slice(0, 37)}...` : text);
const isResult = (value: unknown): value is ParseResult => typeof value === 'object' && value !== null && 'ok' in value;

export function parsePatchCommand(text: string): ParseResult {
  const normalised = normalise(text);
  const split = tokens(normalised);
  if ('error' in split) {
    const verb = normalised.split(' ')[0]!.toLowerCase();
    return fail(isKind(verb) ? verb : 'help', `${split.error}: ${short(normalised)}`);
  }
  const [first, ...rest] = split;
  if (first === undefined) return { ok: true, command: { kind: 'help' } };
  const verb = first.toLowerCase();
  if (verb === 'help' || verb === '--help' || verb === '-h' || verb === '?') {
    return rest.length === 0 ? { ok: true, command: { kind: 'help' } } : fail('help', `help takes nothing after it, got "${short(rest.join(' '))}"`);
  }
  if (!isKind(verb)) {
    const guess = nearest(verb, Object.keys(USAGE), 2);
    const hint = guess !== undefined ? ` (did you mean \`${guess}\`?)` : '';
    return { ok: false, error: `unknown subcommand "${short(first)}"${hint}`, usage: USAGE.help };
  }
  const kind = verb;

  if (CLUSTER_COMMANDS.has(kind)) {
    if (rest.length > 1) return fail(kind, `too many words: "${short(rest.join(' '))}"`);
    if (rest[0]?.startsWith('-')) return unknownOption(kind, rest[0]);
    if (rest[0] === undefined) return { ok: true, command: { kind } as PatchCommand };
    const cluster = clusterName(kind, rest[0]);
    return isResult(cluster) ? cluster : { ok: true, command: { kind, cluster } as PatchCommand };
  }

  if (RUN_COMMANDS.has(kind)) {
    if (rest.length === 0) return fail(kind, `which run? ${kind} needs the run id (\`/patch status\` shows it)`);
    if (rest.length > 1) return fail(kind, `too many words: "${short(rest.join(' '))}"`);
    if (!RUN_ID.test(rest[0]!)) return fail(kind, `"${short(rest[0]!)}" is not a run id`);
    return { ok: true, command: { kind, runId: rest[0]! } as PatchCommand };
  }

  if (kind === 'run' || kind === 'reset') {
    let cluster: string | undefined;
    let nodes: string[] | undefined;
    let noReboot = false;
    let concurrency: number | undefined;
    for (let i = 0; i < rest.length; i++) {
      const word = rest[i]!;
      const [flag, inline] = word.startsWith('--') && word.includes('=') ? [word.slice(0, word.indexOf('=')), word.slice(word.indexOf('=') + 1)] : [word, undefined];
      if (flag === '--nodes') {
        if (nodes) return fail(kind, '--nodes is given twice');
        let value = inline ?? rest[++i];
        // `--nodes a, b` and `--nodes a ,b`: Slack users put spaces after commas; the list goes on.
        while (value !== undefined && rest[i + 1] !== undefined && (value.endsWith(',') || rest[i + 1]!.startsWith(',')) && !rest[i + 1]!.startsWith('-')) {
          value += rest[++i]!;
        }
        const list = nodeList(kind, value);
        if (isResult(list)) return list;
        nodes = list;
      } else if (kind === 'run' && flag === '--no-reboot') {
        if (inline !== undefined) return fail(kind, '--no-reboot takes no value');
        noReboot = true;
      } else if (kind === 'run' && flag === '--concurrency') {
        const value = inline ?? rest[++i];
        const n = Number(value);
        if (value === undefined || !/^\d+$/.test(value) || n < 1 || n > 100) return fail(kind, `--concurrency needs a whole number from 1 to 100${value === undefined ? '' : `, got "${short(value)}"`}`);
        concurrency = n;
      } else if (word.startsWith('-')) {
        return unknownOption(kind, flag);
      } else if (cluster === undefined) {
        const name = clusterName(kind, word);
        if (isResult(name)) return name;
        cluster = name;
      } else {
        return fail(kind, `unexpected "${short(word)}" (the cluster is already "${cluster}")`);
      }
    }
    const base = { ...(cluster ? { cluster } : {}), ...(nodes ? { nodes } : {}) };
    if (kind === 'reset') return { ok: true, command: { kind, ...base } };
    return { ok: true, command: { kind, ...base, noReboot, ...(concurrency !== undefined ? { concurrency } : {}) } };
  }

  // schedule [cluster] PRESET|CRON|off
  if (rest.length === 0) return fail('schedule', 'what schedule? a preset, a cron expression in quotes, or off');
  // The first word is the cluster when something follows it and either it cannot begin a schedule (a preset, off, a
  // descriptor such as @daily, or a cron field, which starts with a digit or '*') or what follows is a schedule by
  // itself (`schedule 1prod weekly`: a DNS label may start with a digit).
  const head = rest[0]!.toLowerCase();
  const beginsSchedule = head === 'off' || (PRESETS as readonly string[]).includes(head) || /^[\d*@]/.test(head) || /\s/.test(head);
  const tail = rest.length >= 2 ? scheduleOf(rest.slice(1).join(' ')) : undefined;
  if (tail !== undefined && (!beginsSchedule || !('error' in tail))) {
    const cluster = clusterName('schedule', rest[0]!);
    if (isResult(cluster)) return cluster;
    return 'error' in tail ? fail('schedule', tail.error) : { ok: true, command: { kind: 'schedule', cluster, schedule: tail } };
  }
  const schedule = scheduleOf(rest.join(' '));
  if ('error' in schedule && rest.length === 1 && !beginsSchedule && DNS_LABEL.test(head)) {
    return fail('schedule', `what schedule for "${short(head)}"? a preset (${PRESETS.join(', ')}), a cron expression in quotes, or off`);
  }
  return 'error' in schedule ? fail('schedule', schedule.error) : { ok: true, command: { kind: 'schedule', schedule } };
}

function scheduleOf(text: string): ScheduleSpec | { error: string } {
  const spec = text.trim();
  const lower = spec.toLowerCase();
  if (lower === 'off') return { kind: 'off' };
  if ((PRESETS as readonly string[]).includes(lower)) return { kind: 'preset', preset: lower as Preset, cron: presetToCron(lower as Preset) };
  const descriptor = DESCRIPTOR.test(lower);
  if (spec.split(' ').length !== 5 && !descriptor) {
    const guess = nearest(lower, [...PRESETS, 'off'], 2);
    const hint = guess !== undefined ? ` (did you mean \`${guess}\`?)` : '';
    return { error: `"${short(spec)}" is neither a preset (${PRESETS.join(', ')}), off, nor a cron expression of five fields${hint}` };
  }
  const cron = descriptor ? lower : spec;
  const parsed = scheduleSchema.safeParse({ kind: 'cron', expression: cron });
  if (!parsed.success) return { error: `"${short(spec)}" is not a valid cron expression: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  return { kind: 'cron', cron };
}

/** The text form of a command (for audit records and round-trip tests). */
export function formatPatchCommand(command: PatchCommand): string {
  switch (command.kind) {
    case 'help':
      return 'help';
    case 'status':
    case 'scan':
    case 'doctor':
    case 'unstick':
    case 'history':
      return [command.kind, command.cluster].filter(Boolean).join(' ');
    case 'approve':
    case 'reject':
    case 'pause':
    case 'resume':
    case 'cancel':
      return `${command.kind} ${command.runId}`;
    case 'run':
      return [
        'run',
        command.cluster,
        command.nodes ? `--nodes ${command.nodes.join(',')}` : undefined,
        command.noReboot ? '--no-reboot' : undefined,
        command.concurrency !== undefined ? `--concurrency ${command.concurrency}` : undefined,
      ].filter(Boolean).join(' ');
    case 'reset':
      return ['reset', command.cluster, command.nodes ? `--nodes ${command.nodes.join(',')}` : undefined].filter(Boolean).join(' ');
    case 'schedule': {
      const s = command.schedule;
      return ['schedule', command.cluster, s.kind === 'off' ? 'off' : s.kind === 'preset' ? s.preset : `"${s.cron}"`].filter(Boolean).join(' ');
    }
  }
}
