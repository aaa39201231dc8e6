/** `patchpilot plan check FILE`: validates a plan file and shows what it resolves to. */
import { stringify as toYaml } from 'yaml';
import { DocumentError, parseYamlText } from '../engine/documents.ts';
import { deriveRunStart, describeStart } from '../engine/run-start.ts';
import { PlanError, parsePlan } from '../engine/plan.ts';
import { describeSchedule, fireTimes } from '../engine/schedule.ts';
import { MAX_PLAN_BYTES, readUserFile, UserFileError } from '../io/user-file.ts';

export function loadPlanFile(path: string) {
  let text: string;
  try {
    text = readUserFile(path, 'plan', MAX_PLAN_BYTES);
  } catch (err) {
    if (err instanceof UserFileError) throw new PlanError([err.message], path);
    throw err;
  }
  return parsePlanText(text, path);
}

/** A plan file's text (YAML or JSON) to a Plan; every mistake is a PlanError naming `source`. */
export function parsePlanText(text: string, source: string) {
  let data: unknown;
  try {
    data = parseYamlText(text).value;
  } catch (err) {
    if (err instanceof DocumentError) throw new PlanError([`${err.position}${err.message}`], source);
    throw err;
  }
  // A file with nothing in it is a render or a copy that went wrong, not a choice: every default (no approval, the
  // cluster named "default") would run silently. `{}` says it on purpose.
  if (data === null || data === undefined) throw new PlanError(['the file is empty (write {} to take every default)'], source);
  return parsePlan(data, source);
}

export function planCheck(path: string, options: { trigger?: string; now: number }): string {
  const plan = loadPlanFile(path);
  // What `run` would do if started now (an on-demand time already past is refused here, as Palette does).
  const start = deriveRunStart(plan, options.now, options.trigger === undefined ? {} : { triggerId: options.trigger });
  const next = plan.trigger.kind === 'on-demand' || plan.trigger.kind === 'on-boot' ? [] : fireTimes(plan.trigger, options.now, 3);
  const lines = [
    `${path}: valid`,
    `trigger: ${describeSchedule(plan.trigger)}`,
    `a run started now begins: ${describeStart(start.notBefore)}`,
    ...(next.length > 1 ? [`next fire times: ${next.map((t) => new Date(t).toISOString()).join(', ')}`] : []),
    `version hash for trigger "${start.triggerId}": ${start.hash}  (label ${plan.labelKey})`,
    '',
    '# resolved plan (every default filled in)',
    toYaml(plan).trimEnd(),
  ];
  return lines.join('\n');
}
